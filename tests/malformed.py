"""Malformed requests to every route: generated from the Flask URL map and the admin API's
OpenAPI document, so that a route added later is swept without anyone listing it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from urllib.parse import quote

from flask import Flask

API = "/api/admin/v1"
# Deeper than any recursive parser goes (Python's stops near 1,000), short enough to fit in
# a URL.
_DEEP = 1500

# Values a form or URL can carry, percent-encoded as a client would send them.
BAD_VALUES = {
    "nul": quote("a\x00b"),
    "surrogate": "%ED%A0%80",  # U+D800 encoded as if it were a character: not UTF-8
    "invalid-utf8": "%FF%FE",
    "deep-array": quote("[" * _DEEP + "]" * _DEEP),
    "deep-object": quote('{"a":' * _DEEP + "1" + "}" * _DEEP),
}
BAD_BODIES = {
    "json-nul": b'{"reason": "a\\u0000b", "x": ["\\u0000"]}',
    "json-surrogate": b'{"reason": "\\ud800"}',
    "json-invalid-utf8": b'{"reason": "\xff\xfe"}',
    "json-deep-array": b"[" * _DEEP + b"]" * _DEEP,
    "json-deep-object": b'{"a":' * _DEEP + b"1" + b"}" * _DEEP,
}
# The parameters of the protocol endpoints and login pages (the admin API's come from its
# document).
PROTOCOL_PARAMETERS = (
    "client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "prompt",
    "max_age", "claims", "authorization_details", "acr_values", "code_challenge",
    "code_challenge_method", "id_token_hint", "login_hint", "ui_locales", "grant_type", "code",
    "code_verifier", "refresh_token", "token", "token_type_hint", "client_secret",
    "client_assertion", "client_assertion_type", "post_logout_redirect_uri", "username",
    "password", "csrf", "number", "otp", "tx", "lang", "next", "reason",
)  # fmt: skip
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_VARIABLE = re.compile(r"<(?:[a-z_]+:)?([a-z_]+)>|\{([a-z_]+)\}")


@dataclass(frozen=True)
class Probe:
    name: str
    method: str
    path: str  # percent-encoded
    query: str = ""
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    refused: bool = True  # a 400 is due; otherwise anything but a 5xx

    @property
    def target(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path


def _routes(app: Flask) -> Iterator[tuple[str, str]]:
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield rule.rule, method


def _documented(document: dict[str, Any]) -> Iterator[tuple[str, str, list[str]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield API + path, method.upper(), sorted(_properties(document, operation))


def _properties(document: dict[str, Any], operation: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for content in operation.get("requestBody", {}).get("content", {}).values():
        schema = content.get("schema", {})
        if "$ref" in schema:
            schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        names.update(schema.get("properties", {}))
    return names


def _fill(rule: str, value: str) -> str:
    return _VARIABLE.sub(value, rule)


def probes(app: Flask, document: dict[str, Any], *, bearer: str | None = None) -> list[Probe]:
    """Every malformed request to every route of ``app`` and every documented operation."""
    found: list[Probe] = []
    auth = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    targets = [(rule, method, list(PROTOCOL_PARAMETERS), {}) for rule, method in _routes(app)]
    targets += [(path, method, names or ["reason"], auth)
                for path, method, names in _documented(document)]  # fmt: skip
    for rule, method, names, headers in targets:
        plain = _fill(rule, "x1")
        found.append(Probe("plain", method, plain, headers=headers, refused=False))
        if _VARIABLE.search(rule):
            for kind, value in BAD_VALUES.items():
                found.append(Probe(f"path-{kind}", method, _fill(rule, value), headers=headers))
        for kind, value in BAD_VALUES.items():
            # Deep values go where JSON is parsed (the admin API: its first field).
            parsed = [name for name in names if name in ("claims", "authorization_details")]
            spread = (parsed or names[:1]) if "deep" in kind else names
            query = "&".join(f"{name}={value}" for name in dict.fromkeys(spread))
            found.append(Probe(f"query-{kind}", method, plain, query=query, headers=headers))
            if method in _BODY_METHODS:
                found.append(Probe(f"form-{kind}", method, plain, body=query.encode(),
                                   content_type="application/x-www-form-urlencoded",
                                   headers=headers))  # fmt: skip
        found.append(Probe("query-huge", method, plain, query="state=" + "a" * 40_000,
                           headers=headers))  # fmt: skip
        if method in _BODY_METHODS:
            for kind, body in BAD_BODIES.items():
                found.append(Probe(kind, method, plain, body=body,
                                   content_type="application/json", headers=headers))  # fmt: skip
            fields = json.dumps({name: "a\x00b" for name in names}).encode()
            found.append(Probe("json-fields-nul", method, plain, body=fields,
                               content_type="application/json", headers=headers))  # fmt: skip
        found.append(Probe("header-nul", method, plain,
                           headers={**headers, "User-Agent": "a\x00b"}))  # fmt: skip
        found.append(Probe("cookie-nul", method, plain,
                           headers={**headers, "Cookie": "idp_session=a\x00b"}))  # fmt: skip
    return found


def speaks_json(path: str) -> bool:
    """Where errors are JSON: the protocol endpoints for programs and the admin API."""
    return path.startswith(("/token", "/par", "/bc-authorize", "/introspect", "/revoke",
                            "/userinfo", "/api/", "/mfa/", "/evidence/"))  # fmt: skip
