"""The Subsonic response envelope and error model, rendered as JSON, JSONP or XML (pure, no aiohttp).

Every answer is a ``subsonic-response`` with ``status`` ("ok" | "failed"), ``version`` (the REST
protocol version we speak, :data:`API_VERSION`) and the OpenSubsonic fields ``type``,
``serverVersion`` and ``openSubsonic: true``. A failed one carries ``error: {code, message}`` with the
Subsonic codes (:class:`Code`). Subsonic answers errors with HTTP 200 and the error in the body;
so do we (the one exception, a replica still catching up, is 503: see playback/subsonic/routes.py).

A payload is a plain dict in the JSON shape of the Subsonic documentation. Its XML form follows the
rule Subsonic's own JSON was derived by: a scalar value is an attribute, a dict a child element, a
list repeated child elements of that name (a list of scalars: elements with the value as text), and
a dict's ``"value"`` key the element's text (``<genre songCount="3">Rock</genre>``). ``None`` values
are left out in both forms; booleans are ``true``/``false``.
"""

from __future__ import annotations

import re
from enum import IntEnum
from importlib import metadata
from typing import Any
from xml.etree import ElementTree

import orjson

API_VERSION = "1.16.1"
SERVER_TYPE = "playlog"
XML_NAMESPACE = "http://subsonic.org/restapi"
JSON_TYPE = "application/json"
XML_TYPE = "application/xml"
JSONP_TYPE = "application/javascript"
_CALLBACK = re.compile(r"[A-Za-z_$][A-Za-z0-9_$.]{0,99}")
# characters XML 1.0 cannot carry at all (control characters but tab, newline, carriage return)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def server_version() -> str:
    try:
        return metadata.version("playlog")
    except metadata.PackageNotFoundError:
        return "dev"


SERVER_VERSION = server_version()


class Code(IntEnum):
    """The Subsonic / OpenSubsonic error codes."""

    GENERIC = 0
    MISSING_PARAMETER = 10
    CLIENT_TOO_OLD = 20
    SERVER_TOO_OLD = 30
    WRONG_CREDENTIALS = 40
    TOKEN_AUTH_NOT_SUPPORTED = 41
    AUTH_MECHANISM_NOT_SUPPORTED = 42
    CONFLICTING_AUTH = 43
    INVALID_API_KEY = 44
    NOT_AUTHORIZED = 50
    TRIAL_EXPIRED = 60
    NOT_FOUND = 70


DEFAULT_MESSAGES = {
    Code.GENERIC: "A generic error",
    Code.MISSING_PARAMETER: "Required parameter is missing",
    Code.CLIENT_TOO_OLD: "Incompatible Subsonic REST protocol version. Client must upgrade",
    Code.SERVER_TOO_OLD: "Incompatible Subsonic REST protocol version. Server must upgrade",
    Code.WRONG_CREDENTIALS: "Wrong username or password",
    Code.TOKEN_AUTH_NOT_SUPPORTED: "Token authentication not supported",
    Code.AUTH_MECHANISM_NOT_SUPPORTED: "Provided authentication mechanism not supported",
    Code.CONFLICTING_AUTH: "Multiple conflicting authentication mechanisms provided",
    Code.INVALID_API_KEY: "Invalid API key",
    Code.NOT_AUTHORIZED: "User is not authorized for the given operation",
    Code.TRIAL_EXPIRED: "The trial period for the Subsonic server is over",
    Code.NOT_FOUND: "The requested data was not found",
}


class SubsonicError(Exception):
    """An error answered in the Subsonic error model: ``code`` (:class:`Code`) and a message."""

    def __init__(self, code: Code, message: str | None = None):
        self.code = Code(code)
        self.message = message or DEFAULT_MESSAGES[self.code]
        super().__init__(self.message)


def envelope(payload: dict[str, Any] | None = None, error: SubsonicError | None = None) -> dict[str, Any]:
    """The ``subsonic-response`` dict (the JSON form) of a payload or of an error."""
    body: dict[str, Any] = {"status": "failed" if error else "ok", "version": API_VERSION, "type": SERVER_TYPE,
                            "serverVersion": SERVER_VERSION, "openSubsonic": True}
    if error is not None:
        body["error"] = {"code": int(error.code), "message": error.message}
    elif payload:
        body.update(payload)
    return {"subsonic-response": body}


def _xml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value))


def _xml_fill(element: ElementTree.Element, obj: dict[str, Any]) -> None:
    for key, value in obj.items():
        if value is None:
            continue
        if key == "value" and not isinstance(value, dict | list):
            element.text = _xml_text(value)
        elif isinstance(value, dict):
            _xml_fill(ElementTree.SubElement(element, key), value)
        elif isinstance(value, list):
            for item in value:
                if item is None:
                    continue
                child = ElementTree.SubElement(element, key)
                if isinstance(item, dict):
                    _xml_fill(child, item)
                else:
                    child.text = _xml_text(item)
        else:
            element.set(key, _xml_text(value))


def to_xml(document: dict[str, Any]) -> bytes:
    """The XML form of an :func:`envelope` (UTF-8, with the XML declaration)."""
    body = document["subsonic-response"]
    root = ElementTree.Element("subsonic-response", {"xmlns": XML_NAMESPACE})
    _xml_fill(root, body)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root, encoding="utf-8",
                                                                              xml_declaration=False)


def _drop_none(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _drop_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_drop_none(v) for v in obj if v is not None]
    return obj


def to_json(document: dict[str, Any]) -> bytes:
    return orjson.dumps(_drop_none(document))


def response_format(f: str | None) -> str:
    """``json`` | ``jsonp`` | ``xml`` for the ``f`` parameter (XML, Subsonic's default, for anything else)."""
    f = (f or "").strip().lower()
    return f if f in ("json", "jsonp") else "xml"


def render(document: dict[str, Any], fmt: str, callback: str | None = None) -> tuple[bytes, str]:
    """(body, content type) of an envelope in format ``fmt`` (:func:`response_format`). JSONP needs a
    JavaScript identifier as ``callback``; without a usable one the JSON form is sent."""
    if fmt == "xml":
        return to_xml(document), XML_TYPE
    body = to_json(document)
    if fmt == "jsonp" and callback and _CALLBACK.fullmatch(callback):
        return f"{callback}(".encode() + body + b");", JSONP_TYPE
    return body, JSON_TYPE
