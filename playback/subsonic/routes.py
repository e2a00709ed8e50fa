"""``/rest/*``: the dispatcher of the Subsonic methods, mounted on the playback API by :func:`setup`.

Order for every request (the answer is always a ``subsonic-response`` in the asked format ``f``,
XML by default, except a binary ``stream``/``download``/``getCoverArt`` that succeeds):

1. the method: ``/rest/<name>`` or ``/rest/<name>.view``, any case (unknown: code 0, HTTP 404);
   ``GET``, ``HEAD`` and ``POST`` (a form body's parameters join the query's: ``formPost``); any
   other HTTP method: code 0, HTTP 405;
2. the parameters (playback/subsonic/params.py; a body that is no form, too large or unreadable:
   code 0) and the protocol version ``v`` (codes 20/30 on another major version);
3. readiness: until the replicas caught up with the log (README "Ready means caught up"), code 0
   with HTTP 503 and ``Retry-After``, so a gateway passes over this process as it does for ``/v1``;
4. the credentials (playback/subsonic/auth.py; codes 10, 40, 43, 44), except for a public method
   (``getOpenSubsonicExtensions``);
5. the method's handler. A write Kafka did not acknowledge: code 0 with HTTP 503 and ``Retry-After``.

Everything else that goes wrong in a handler is logged and answered with code 0 (HTTP 500): a bug,
never a malformed request, which always gets its Subsonic error.
"""

from __future__ import annotations

import logging

from aiohttp import web

from playback.parsing import ApiError
from playback.service import API_KEY, WRITE_RETRY_S, PlaybackApi
from playback.subsonic import browse, library, playlists, plays, stream, system  # noqa: F401 - they register
from playback.subsonic.auth import Authenticator
from playback.subsonic.context import METHODS, Ctx
from playback.subsonic.params import Params, check_version, method_key
from playback.subsonic.render import API_VERSION, Code, SubsonicError, envelope, render, response_format

log = logging.getLogger(__name__)

PREFIX = "/rest"
CATCHING_UP_RETRY_S = 5
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
AUTH_KEY = web.AppKey("subsonic_auth", Authenticator)


def _answer(document: dict, fmt: str, callback: str | None, status: int = 200,
            headers: dict[str, str] | None = None) -> web.Response:
    body, content_type = render(document, fmt, callback)
    return web.Response(body=body, status=status, headers={"Content-Type": f"{content_type}; charset=utf-8",
                                                           "Cache-Control": "no-store", **(headers or {})})


async def _params(request: web.Request) -> Params:
    if request.method == "POST" and request.content_type in FORM_TYPES:
        try:
            form = await request.post()
        except web.HTTPRequestEntityTooLarge:
            raise SubsonicError(Code.GENERIC, "The request body is too large") from None
        except (ValueError, UnicodeDecodeError, web.HTTPException) as exc:
            raise SubsonicError(Code.GENERIC, f"Cannot read the form body: {exc}") from None
        return Params.of(request.query, form)
    return Params.of(request.query)


async def dispatch(request: web.Request) -> web.StreamResponse:
    api: PlaybackApi = request.app[API_KEY]
    fmt, callback = response_format(request.query.get("f")), request.query.get("callback")
    try:
        params = await _params(request)
        fmt, callback = response_format(params.str("f")), params.str("callback")
        name = request.match_info.get("method", "")
        found = METHODS.get(method_key(name)) if "/" not in name else None
        if found is None:
            return _answer(envelope(error=SubsonicError(Code.GENERIC, f"Unknown method {name[:80]!r}")), fmt,
                           callback, status=404)
        if request.method not in ("GET", "HEAD", "POST"):
            return _answer(envelope(error=SubsonicError(Code.GENERIC, f"Method {request.method} not allowed")),
                           fmt, callback, status=405, headers={"Allow": "GET, HEAD, POST"})
        check_version(params.str("v"), API_VERSION)
        if not api.replica.ready:
            return _answer(envelope(error=SubsonicError(Code.GENERIC, "The server is catching up with the log, "
                                                                      "retry shortly")), fmt, callback,
                           status=503, headers={"Retry-After": str(CATCHING_UP_RETRY_S)})
        anonymous = found.public and not any(k in params for k in ("u", "apiKey"))
        user = "" if anonymous else request.app[AUTH_KEY].authenticate(params)
        ctx = Ctx(api, request, params, user, (params.str("c") or "subsonic").strip() or "subsonic")
        result = await found.handler(ctx)
        if isinstance(result, web.StreamResponse):
            return result
        return _answer(envelope(result), fmt, callback)
    except SubsonicError as exc:
        return _answer(envelope(error=exc), fmt, callback)
    except ApiError as exc:  # the shared steps (a write Kafka did not acknowledge: 503)
        retry = exc.extra.get("retry_after")
        headers = {"Retry-After": str(retry if retry is not None else WRITE_RETRY_S)} if exc.status == 503 else {}
        return _answer(envelope(error=SubsonicError(Code.GENERIC, exc.message)), fmt, callback,
                       status=503 if exc.status == 503 else 200, headers=headers)
    except ConnectionError:
        raise  # the client went away mid-stream
    except Exception:
        log.exception("Subsonic %s %s failed", request.method, request.path)
        return _answer(envelope(error=SubsonicError(Code.GENERIC, "Internal server error")), fmt, callback,
                       status=500)


def is_subsonic(path: str) -> bool:
    """True for the paths this module answers (the API's middleware leaves them alone)."""
    return path == PREFIX or path.startswith(PREFIX + "/")


def setup(app: web.Application) -> None:
    """Mount ``/rest/*`` on the API application (``app[API_KEY]`` must be set)."""
    api: PlaybackApi = app[API_KEY]
    app[AUTH_KEY] = Authenticator(api.replica, api.settings.pii_master_key)
    app.router.add_route("*", PREFIX + "/{method:.*}", dispatch)
    app.router.add_route("*", PREFIX, dispatch)
