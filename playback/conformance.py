"""Conformance of the playback API with the Spotify Web API's OpenAPI document.

The reference is the fixed Spotify OpenAPI 3.0 document of the ``sonallux/spotify-web-api`` project (MIT),
vendored as a subset (music routes and every component they reference) in
``tests/data/spotify_openapi/spotify-web-api.subset.json`` by ``python -m playback.conformance vendor FULL.yml``.

Pure functions: the subset is read, OpenAPI 3.0 schemas are turned into JSON Schema (``nullable``,
discriminated ``oneOf``), one response body is checked against the schema Spotify documents for its route,
and the outcome of every route is rendered as a markdown table. tests/unit/test_spotify_conformance.py calls
our routes in process and writes the report (``make conformance`` -> ``build/conformance.md``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

DATA_DIR = Path(__file__).resolve().parents[1] / "tests" / "data" / "spotify_openapi"
SUBSET = DATA_DIR / "spotify-web-api.subset.json"
#: operations about podcasts and audiobooks are left out of the subset: the catalog has music only
EXCLUDED_TAGS = frozenset({"Audiobooks", "Chapters", "Episodes", "Shows"})
METHODS = ("get", "put", "post", "delete")


# --- the vendored subset -------------------------------------------------------------------------------


def _refs(node: Any) -> set[str]:
    out: set[str] = set()
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            out.add(node["$ref"])
        for v in node.values():
            out |= _refs(v)
    elif isinstance(node, list):
        for v in node:
            out |= _refs(v)
    return out


def _pointer(doc: dict, ref: str) -> Any:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def vendor(full: dict) -> dict:
    """The subset of the full Spotify document: every operation not only about podcasts/audiobooks
    (``operationId``, ``summary``, ``tags``, ``parameters``, ``responses``) and every component they
    reference, transitively."""
    paths: dict[str, dict] = {}
    for path, ops in full["paths"].items():
        kept = {m: {k: op[k] for k in ("operationId", "summary", "tags", "parameters", "responses") if k in op}
                for m, op in ops.items() if m in METHODS and not EXCLUDED_TAGS & set(op.get("tags", []))}
        if kept:
            paths[path] = kept
    components: dict[str, dict] = {}
    todo, seen = _refs(paths), set()
    while todo:
        ref = todo.pop()
        if ref in seen:
            continue
        seen.add(ref)
        _, _, kind, name = ref.split("/", 3)
        target = _pointer(full, ref)
        components.setdefault(kind, {})[name] = target
        todo |= _refs(target) - seen
    return {"openapi": full["openapi"], "info": {"title": full["info"]["title"], "version": full["info"]["version"]},
            "paths": paths, "components": {k: dict(sorted(v.items())) for k, v in sorted(components.items())}}


def load(path: Path = SUBSET) -> dict:
    return json.loads(path.read_text())


# --- OpenAPI 3.0 schema -> JSON Schema -----------------------------------------------------------------


def _type_const(doc: dict, schema: dict) -> str | None:
    """The single ``type`` enum value of a (referenced, possibly allOf-composed) object schema."""
    if "$ref" in schema:
        return _type_const(doc, _pointer(doc, schema["$ref"]))
    enum = (schema.get("properties", {}).get("type") or {}).get("enum")
    if enum and len(enum) == 1:
        return enum[0]
    for part in schema.get("allOf", []):
        found = _type_const(doc, part)
        if found:
            return found
    return None


def _prose_nullable(prop: Any) -> Any:
    """A property whose description says it can be `` `null` `` ("Can be `null`.", "`null` if not available")
    is nullable: the document says so in prose only (e.g. CurrentlyPlayingContextObject.context)."""
    if isinstance(prop, dict) and "`null`" in str(prop.get("description", "")) and not prop.get("nullable"):
        return {**prop, "nullable": True}
    return prop


def to_json_schema(doc: dict, node: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema (draft 7): ``nullable: true`` (or `` `null` `` in a property's
    description) admits null; a ``oneOf`` with a
    ``type`` discriminator becomes if/then branches, so a track is checked as a TrackObject only and its
    errors are precise; the ``x-`` extensions, ``example`` and ``discriminator`` are dropped."""
    if isinstance(node, list):
        return [to_json_schema(doc, v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(doc, v) for k, v in node.items()
           if not k.startswith("x-") and k not in ("example", "discriminator", "nullable", "deprecated")}
    if "properties" in node:
        out["properties"] = {k: to_json_schema(doc, _prose_nullable(v)) for k, v in node["properties"].items()}
    disc = (node.get("discriminator") or {}).get("propertyName")
    if disc == "type" and "oneOf" in node:
        consts = [_type_const(doc, s) for s in node["oneOf"]]
        if all(consts):
            del out["oneOf"]
            out["allOf"] = out.get("allOf", []) + [
                {"if": {"properties": {"type": {"const": c}}, "required": ["type"]}, "then": to_json_schema(doc, s)}
                for c, s in zip(consts, node["oneOf"], strict=True)]
            out["required"] = sorted({*out.get("required", []), "type"})
            out.setdefault("properties", {})["type"] = {"enum": consts}
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


# --- checking one response -----------------------------------------------------------------------------


def normalize(path: str) -> str:
    """``/v1/playlists/{id}/tracks`` and ``/playlists/{playlist_id}/tracks`` -> ``/playlists/{}/tracks``."""
    return re.sub(r"\{[^}]+\}", "{}", path.removeprefix("/v1"))


def operations(doc: dict) -> list[tuple[str, str]]:
    """Every (method, path) of the subset, in document order."""
    return [(m, p) for p, ops in doc["paths"].items() for m in ops]


def responses(doc: dict, method: str, path: str) -> dict[str, Any]:
    """status -> JSON Schema of the body (None when the response has no JSON body)."""
    out: dict[str, Any] = {}
    for status, resp in doc["paths"][path][method]["responses"].items():
        if "$ref" in resp:
            resp = _pointer(doc, resp["$ref"])
        schema = ((resp.get("content") or {}).get("application/json") or {}).get("schema")
        out[status] = None if schema is None else schema
    return out


@dataclass
class Issue:
    """One way a response differs from Spotify's: ``missing`` (a required field), ``type`` (a wrong type or
    value), ``status`` (an undocumented status) or ``other``."""

    kind: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind} {self.where}: {self.message}"


def _flatten(err: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    if err.validator in ("anyOf", "oneOf") and err.context:
        # the branch that got furthest (the non-null one for nullable fields)
        best = jsonschema.exceptions.best_match(err.context)
        return _flatten(best) if best is not None else [err]
    return [err]


def _issue(err: jsonschema.ValidationError) -> Issue:
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path) or "."
    if err.validator == "required":
        missing = re.match(r"'([^']+)' is a required property", err.message)
        name = missing.group(1) if missing else err.message
        return Issue("missing", f"{where.rstrip('.')}.{name}" if where != "." else name, "required field absent")
    if err.validator in ("type", "enum", "const", "format", "minimum", "maximum"):
        return Issue("type", where, err.message[:160])
    return Issue("other", where, err.message[:160])


def check_body(doc: dict, schema: dict, body: Any) -> list[Issue]:
    """Every difference of ``body`` from the (OpenAPI 3.0) ``schema``, by field path, deduplicated with list
    indices folded to ``[]``."""
    root = {"allOf": [to_json_schema(doc, schema)],
            "components": {"schemas": {k: to_json_schema(doc, v) for k, v in doc["components"]["schemas"].items()}}}
    validator = jsonschema.Draft7Validator(root)
    issues: dict[tuple[str, str], Issue] = {}
    for err in validator.iter_errors(body):
        for leaf in _flatten(err):
            issue = _issue(leaf)
            issue.where = re.sub(r"\[\d+\]", "[]", issue.where)
            issues.setdefault((issue.kind, issue.where), issue)
    return sorted(issues.values(), key=lambda i: (i.kind, i.where))


def _branch(doc: dict, options: list[dict], value: Any) -> dict | None:
    if isinstance(value, dict):
        for option in options:
            if _type_const(doc, option) == value.get("type"):
                return option
    return options[0] if options else None


#: present only when they apply: ``restrictions`` (a restricted item), the ids of ExternalIdObject (the
#: ones known), the flags of DisallowsObject (only the disallowed actions, as true)
CONDITIONAL_FIELDS = frozenset({"restrictions"})
CONDITIONAL_SCHEMAS = frozenset({"ExternalIdObject", "DisallowsObject"})


def absent(doc: dict, schema: dict, value: Any, where: str = "") -> set[str]:
    """The documented, not deprecated properties ``value`` leaves out (Spotify marks few fields required,
    so this is the fuller picture of what a client may miss), by field path with list indices as ``[]``;
    the conditional ones (CONDITIONAL_FIELDS, CONDITIONAL_SCHEMAS) are not counted."""
    if "$ref" in schema:
        if schema["$ref"].rsplit("/", 1)[-1] in CONDITIONAL_SCHEMAS:
            return set()
        return absent(doc, _pointer(doc, schema["$ref"]), value, where)
    if value is None:
        return set()
    out: set[str] = set()
    for part in schema.get("allOf", []):
        out |= absent(doc, part, value, where)
    for key in ("oneOf", "anyOf"):
        if key in schema and (chosen := _branch(doc, schema[key], value)) is not None:
            out |= absent(doc, chosen, value, where)
    if isinstance(value, list) and "items" in schema:
        for v in value:
            out |= absent(doc, schema["items"], v, f"{where}[]")
    if isinstance(value, dict):
        for name, prop in (schema.get("properties") or {}).items():
            if prop.get("deprecated") or name in CONDITIONAL_FIELDS:
                continue
            if name not in value:
                out.add(f"{where}.{name}")
            else:
                out |= absent(doc, prop, value[name], f"{where}.{name}")
    return out


def check(doc: dict, method: str, path: str, status: int, body: Any) -> list[Issue]:
    """The differences of one response of ours from what Spotify documents for ``method path``."""
    documented = responses(doc, method, path)
    if str(status) not in documented:
        return [Issue("status", str(status), f"Spotify documents {', '.join(documented)}")]
    schema = documented[str(status)]
    if schema is None:
        return [] if body is None else [Issue("other", ".", f"Spotify sends no JSON body with {status}")]
    if body is None:
        return [Issue("other", ".", "no JSON body")]
    return check_body(doc, schema, body)


# --- the report ----------------------------------------------------------------------------------------


@dataclass
class RouteResult:
    method: str
    path: str  # Spotify's path (without /v1)
    ours: bool
    calls: list[tuple[int, list[Issue]]] = field(default_factory=list)
    absent: set[str] = field(default_factory=set)

    @property
    def checked(self) -> bool:
        return bool(self.calls)

    @property
    def issues(self) -> list[Issue]:
        seen: dict[str, Issue] = {}
        for _, found in self.calls:
            for i in found:
                seen.setdefault(str(i), i)
        return list(seen.values())

    @property
    def conforms(self) -> bool:
        return self.checked and not self.issues


def results(doc: dict, our_paths: dict[str, dict], calls: dict[tuple[str, str], list[tuple[int, Any]]]) -> list[RouteResult]:
    """One result per Spotify operation; ``our_paths`` is our OpenAPI ``paths``; ``calls`` maps
    (method, normalized path) to the (status, JSON body) responses we got."""
    ours = {(m, normalize(p)) for p, ops in our_paths.items() for m in ops}
    out = []
    for method, path in operations(doc):
        key = (method, normalize(path))
        res = RouteResult(method, path, key in ours)
        for status, body in calls.get(key, []):
            res.calls.append((status, check(doc, method, path, status, body)))
            schema = responses(doc, method, path).get(str(status))
            if schema is not None and body is not None:
                left_out = absent(doc, schema, body)
                if path == "/search":  # one page per requested type only
                    left_out = {f for f in left_out if f.count(".") > 1}
                res.absent |= left_out
        out.append(res)
    return out


def markdown(doc: dict, rows: list[RouteResult]) -> str:
    shared = [r for r in rows if r.ours]
    lines = [
        "# Spotify Web API conformance",
        "",
        f"Reference: {doc['info']['title']}, version {doc['info']['version']} (subset in "
        "tests/data/spotify_openapi/). Produced by tests/unit/test_spotify_conformance.py (`make conformance`).",
        "",
        f"{len(shared)} of {len(rows)} Spotify operations are ours; "
        f"{sum(r.conforms for r in shared)} of them conform.",
        "",
        "Conforms: every response we got validates against Spotify's schema for the route and status (required",
        "fields, types, enums; `nullable` and \"can be `null`\" honoured). The last column lists the documented,",
        "not deprecated fields our responses leave out (Spotify marks few fields required).",
        "",
        "| route | ours | conforms | missing required fields | other differences | documented fields left out |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        missing = ", ".join(f"`{i.where}`" for i in r.issues if i.kind == "missing")
        other = "; ".join(f"`{i.where}` {i.message}".replace("|", "\\|") for i in r.issues if i.kind != "missing")
        verdict = ("yes" if r.conforms else "**no**") if r.checked else ("not exercised" if r.ours else "")
        left_out = ", ".join(f"`{f}`" for f in sorted(r.absent))
        lines.append(f"| {r.method.upper()} {r.path} | {'yes' if r.ours else 'no'} | {verdict} | {missing} | {other} "
                     f"| {left_out} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m playback.conformance", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("vendor", help="cut the subset out of the full fixed-spotify-open-api.yml")
    v.add_argument("full", type=Path)
    v.add_argument("--out", type=Path, default=SUBSET)
    args = parser.parse_args(argv)
    try:
        import yaml  # dev extra: only the vendoring step reads YAML
        full = yaml.safe_load(args.full.read_text())
    except (OSError, ImportError) as exc:
        sys.stderr.write(f"error: cannot read {args.full}: {exc}\n")
        return 2
    subset = vendor(full)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(subset, indent=1, default=str) + "\n")
    sys.stdout.write(f"{args.out}: {len(subset['paths'])} paths, {len(subset['components'].get('schemas', {}))} "
                     "schemas\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
