"""The schema registry's aiohttp app: the Confluent Schema Registry REST API over a
:class:`registry.store.SchemaStore`, plus ``/asyncapi.json`` and ``/healthz``.

What stock clients call (confluent-kafka's ``SchemaRegistryClient``, Java's ``KafkaAvroDeserializer``,
libserdes, ClickHouse's ``format_avro_schema_registry_url``) is answered as Confluent's registry does:
``GET /schemas/ids/{id}`` (``?subject=`` names any subject of the default context: deserializers send
``<topic>-value``; ``?format=``, ``?fetchMaxId=``), ``/schemas/ids/{id}/schema|subjects|versions``,
``/subjects``, ``/subjects/{s}/versions[/{v}[/schema]]``, ``POST /subjects/{s}`` (lookup),
``POST /compatibility/subjects/{s}/versions[/{v}]``, ``/config``, ``/mode``, ``/schemas/types``.
Responses are ``application/vnd.schemaregistry.v1+json``; every error is
``{"error_code": N, "message": "..."}`` (40401 subject, 40402 version, 40403 schema not found,
42201 invalid schema, 42202 invalid version, 409 incompatible, 40101/40301 auth), never a 500 page.

Reads are open. Registration (``POST /subjects/{s}/versions``) needs an operator token: a bearer
token of ``playlog token`` (signed with PLAYLOG_TOKEN_SECRET) carrying the scope
:data:`WRITE_SCOPE`, as ``Authorization: Bearer`` or as the password of HTTP Basic auth (so a
registry URL ``http://operator:TOKEN@host:8702`` works with every stock client).
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from playback.auth import Secret, verify_token
from registry.store import COMPATIBILITY, RegistryError, SchemaStore, canonical, parse_schema

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
WRITE_SCOPE = "schemas:write"
MAX_BODY = 1 << 20
STORE_KEY = web.AppKey("store", SchemaStore)
ASYNCAPI_KEY = web.AppKey("asyncapi", dict)
SECRET_KEY = web.AppKey("secret", object)  # the token key ring (playback.auth.key_ring)


def answer(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type=CONTENT_TYPE)


def error(status: int, error_code: int, message: str) -> web.Response:
    resp = answer({"error_code": error_code, "message": message}, status)
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="playlog schema registry"'
    return resp


def _flag(request: web.Request, name: str) -> bool:
    """A boolean query parameter as Java reads one: ``true`` in any case is true, anything else false."""
    return request.query.get(name, "").strip().lower() == "true"


def _int(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise RegistryError(400, 400, f"query parameter {name} must be an integer, got {raw[:40]!r}") from None


def _page(request: web.Request, items: list) -> list:
    offset, limit = max(0, _int(request, "offset", 0)), _int(request, "limit", -1)
    return items[offset:] if limit < 0 else items[offset:offset + limit]


def _schema_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 10:
        raise RegistryError(404, 40403, f"Schema {raw[:40]} not found (an id is a positive integer)")
    return int(raw)


def _context_ok(subject: str | None) -> None:
    """Only the default context exists here: ``?subject=:.ctx:name`` of another context finds nothing."""
    if subject and subject.startswith(":.") and not subject.startswith(":.:"):
        raise RegistryError(404, 40403, f"Schema not found in the context of subject '{subject[:200]}'")


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RegistryError(400, 400, f"the request body is not JSON: {exc}") from None


def _operator(request: web.Request) -> None:
    """Refuse (40101 / 40301) a request without an operator token."""
    header = request.headers.get("Authorization", "").strip()
    scheme, _, cred = header.partition(" ")
    token = None
    if scheme.lower() == "bearer":
        token = cred.strip()
    elif scheme.lower() == "basic":
        try:
            token = base64.b64decode(cred.strip(), validate=True).decode().partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            token = None
    how = f"an operator token is needed: 'playlog token operator --scope {WRITE_SCOPE}'"
    if not token:
        raise RegistryError(401, 40101, f"Unauthorized: {how}")
    check = verify_token(token, request.app[SECRET_KEY], now=time.time())
    if not check.ok:
        raise RegistryError(401, 40101, f"Unauthorized: {check.reason}; {how}")
    if WRITE_SCOPE not in check.scopes:
        raise RegistryError(403, 40301, f"User {check.user_id} is not allowed to register schemas "
                                        f"(the token lacks the scope {WRITE_SCOPE})")


# -- routes ----------------------------------------------------------------------------------------
routes = web.RouteTableDef()


@routes.get("/")
async def root(request: web.Request) -> web.Response:
    return answer({})


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    return answer({"status": "ok", "subjects": len(store.subjects()), "max_id": store.max_id})


@routes.get("/asyncapi.json")
async def asyncapi(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(request.app[ASYNCAPI_KEY]), content_type="application/json")


@routes.get("/schemas/types")
async def schema_types(request: web.Request) -> web.Response:
    return answer(["AVRO"])


@routes.get("/schemas")
async def list_schemas(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    prefix, latest_only = request.query.get("subjectPrefix", ""), _flag(request, "latestOnly")
    out = []
    for s in store.subjects():
        if s.startswith(prefix):
            versions = store.versions(s)
            out += [{**e.to_json(), "schemaType": "AVRO"} for e in (versions[-1:] if latest_only else versions)]
    return answer(_page(request, out))


@routes.get("/schemas/ids/{id}")
async def schema_by_id(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    _context_ok(request.query.get("subject"))
    schema_id = _schema_id(request)
    out: dict[str, Any] = {"schema": canonical(store.by_id(schema_id))}
    if _flag(request, "fetchMaxId"):
        out["maxId"] = store.max_id
    return answer(out)


@routes.get("/schemas/ids/{id}/schema")
async def raw_schema_by_id(request: web.Request) -> web.Response:
    _context_ok(request.query.get("subject"))
    return answer(request.app[STORE_KEY].by_id(_schema_id(request)))


@routes.get("/schemas/ids/{id}/subjects")
async def subjects_of_id(request: web.Request) -> web.Response:
    uses = request.app[STORE_KEY].uses_of(_schema_id(request))
    only = request.query.get("subject")
    return answer(_page(request, sorted({e.subject for e in uses if not only or e.subject == only})))


@routes.get("/schemas/ids/{id}/versions")
async def versions_of_id(request: web.Request) -> web.Response:
    uses = request.app[STORE_KEY].uses_of(_schema_id(request))
    only = request.query.get("subject")
    return answer(_page(request, [{"subject": e.subject, "version": e.version} for e in uses
                                  if not only or e.subject == only]))


@routes.get("/subjects")
async def list_subjects(request: web.Request) -> web.Response:
    if _flag(request, "deleted_only"):  # nothing is ever deleted here
        return answer([])
    prefix = request.query.get("subjectPrefix", "")
    return answer(_page(request, [s for s in request.app[STORE_KEY].subjects() if s.startswith(prefix)]))


@routes.get("/subjects/{subject}/versions")
async def subject_versions(request: web.Request) -> web.Response:
    versions = request.app[STORE_KEY].versions(request.match_info["subject"])
    return answer([] if _flag(request, "deleted_only") else _page(request, [e.version for e in versions]))


@routes.get("/subjects/{subject}/versions/{version}")
async def subject_version(request: web.Request) -> web.Response:
    e = request.app[STORE_KEY].version(request.match_info["subject"], request.match_info["version"])
    return answer(e.to_json())


@routes.get("/subjects/{subject}/versions/{version}/schema")
async def subject_version_schema(request: web.Request) -> web.Response:
    e = request.app[STORE_KEY].version(request.match_info["subject"], request.match_info["version"])
    return answer(e.schema)


@routes.get("/subjects/{subject}/versions/{version}/referencedby")
async def referenced_by(request: web.Request) -> web.Response:
    request.app[STORE_KEY].version(request.match_info["subject"], request.match_info["version"])
    return answer([])


@routes.post("/subjects/{subject}")
async def lookup(request: web.Request) -> web.Response:
    schema = parse_schema(await _body(request))
    return answer(request.app[STORE_KEY].lookup(request.match_info["subject"], schema).to_json())


@routes.post("/subjects/{subject}/versions")
async def register(request: web.Request) -> web.Response:
    _operator(request)
    schema = parse_schema(await _body(request))
    return answer({"id": request.app[STORE_KEY].register(request.match_info["subject"], schema).id})


async def _compatibility(request: web.Request, version: str | None) -> web.Response:
    schema = parse_schema(await _body(request))
    problems = request.app[STORE_KEY].problems(request.match_info["subject"], schema, version)
    out: dict[str, Any] = {"is_compatible": not problems}
    if _flag(request, "verbose"):
        out["messages"] = problems
    return answer(out)


@routes.post("/compatibility/subjects/{subject}/versions/{version}")
async def compatibility(request: web.Request) -> web.Response:
    return await _compatibility(request, request.match_info["version"])


@routes.post("/compatibility/subjects/{subject}/versions")
async def compatibility_all(request: web.Request) -> web.Response:
    return await _compatibility(request, None)


@routes.get("/config")
async def config(request: web.Request) -> web.Response:
    return answer({"compatibilityLevel": COMPATIBILITY})


@routes.get("/config/{subject}")
async def subject_config(request: web.Request) -> web.Response:
    subject = request.match_info["subject"]
    if _flag(request, "defaultToGlobal"):
        return answer({"compatibilityLevel": COMPATIBILITY})
    raise RegistryError(404, 40408, f"Subject '{subject[:200]}' does not have subject-level compatibility "
                                    "configured (the global level applies: GET /config)")


@routes.get("/mode")
async def mode(request: web.Request) -> web.Response:
    return answer({"mode": "READWRITE"})


@routes.get("/mode/{subject}")
async def subject_mode(request: web.Request) -> web.Response:
    return answer({"mode": "READWRITE"})


@routes.get("/contexts")
async def contexts(request: web.Request) -> web.Response:
    return answer(["."])


# -- the app ----------------------------------------------------------------------------------------
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure as Confluent's error body; an unexpected one is logged and answered 500/50001."""
    try:
        return await handler(request)
    except RegistryError as exc:
        return error(exc.status, exc.error_code, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status == 405:
            return error(405, 405, f"HTTP 405 Method Not Allowed: {request.method} {request.path[:200]} (this "
                                   "registry never deletes and its compatibility level is fixed)")
        return error(exc.status, exc.status, f"HTTP {exc.status} {exc.reason}")
    except Exception:  # noqa: BLE001 - the error model, never a stack trace
        log.exception("registry: %s %s failed", request.method, request.path)
        return error(500, 50001, "Error in the backend data store")


def build_app(store: SchemaStore, token_secret: Secret, asyncapi_doc: dict) -> web.Application:
    app = web.Application(middlewares=[errors], client_max_size=MAX_BODY)
    app[STORE_KEY] = store
    app[SECRET_KEY] = token_secret
    app[ASYNCAPI_KEY] = asyncapi_doc
    app.add_routes(routes)
    return app
