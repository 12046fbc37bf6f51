"""The fast paths answer exactly what the Flask views and hooks answer, request by request."""

from __future__ import annotations

import io
import logging
import re
from typing import Any

import pytest
from prometheus_client import REGISTRY
from werkzeug.test import EnvironBuilder

from idp import create_app
from idp.deps import build_deps
from idp.oidc.keys import rotate_keys
from idp.web.fastpath import DISCOVERY_PATH
from idp.web.fastpath import JWKS_PATH
from idp.web.fastpath import FastPaths

Answer = tuple[str, list[tuple[str, str]], bytes]
FRESH_ID = re.compile(r"^[0-9a-f]{16}$")


@pytest.fixture(params=["development", "production"])
def fast_paths(request, settings, pg_engine, redis_store, clock, clean_state) -> FastPaths:
    # Production adds HSTS to every answer: both modes are compared.
    mode_settings = settings.model_copy(update={"mode": request.param})
    deps = build_deps(mode_settings, clock=clock, store=redis_store, engine=pg_engine)
    app = create_app(deps=deps, background=False)
    layer = app.extensions["idp.fast_paths"]
    assert app.wsgi_app is layer
    return layer  # type: ignore[no-any-return]


def call(wsgi: Any, method: str, path: str, **headers: str) -> Answer:
    path, _, query = path.partition("?")
    environ = EnvironBuilder(
        path=path, query_string=query, method=method, headers=headers, data=b""
    ).get_environ()
    environ["wsgi.input"] = io.BytesIO(b"")
    started: list[Any] = []
    chunks = wsgi(environ, lambda status, hdrs, exc=None: started.extend([status, hdrs]))
    try:
        body = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    status, raw_headers = started
    return status, [(k, v) for k, v in raw_headers], body


def both(layer: FastPaths, method: str, path: str, **headers: str) -> tuple[Answer, Answer]:
    """The layer's answer and Flask's, noting whether the layer passed the request on."""
    flask = layer.behind
    passed_on: list[bool] = []

    def behind(environ: Any, start_response: Any) -> Any:
        passed_on.append(True)
        return flask(environ, start_response)

    layer.behind = behind
    try:
        fast = call(layer, method, path, **headers)
    finally:
        layer.behind = flask
    layer.passed_on = bool(passed_on)  # type: ignore[attr-defined]
    return fast, call(flask, method, path, **headers)


def without_fresh_id(answer: Answer) -> Answer:
    """The request id a caller did not give is random: check its shape, then leave it out."""
    status, headers, body = answer
    ids = [v for k, v in headers if k == "X-Request-Id"]
    assert len(ids) == 1, headers
    assert FRESH_ID.match(ids[0]), headers
    return status, [(k, v) for k, v in headers if k != "X-Request-Id"], body


def etag_of(layer: FastPaths, path: str) -> str:
    _status, headers, _body = call(layer.behind, "GET", path)
    return dict(headers)["ETag"]


@pytest.mark.parametrize("path", [JWKS_PATH, DISCOVERY_PATH])
def test_documents_and_revalidation_answer_as_flask_does(fast_paths, path):
    etag = etag_of(fast_paths, path)
    variants: list[dict[str, str]] = [
        {},
        {"If-None-Match": etag},
        {"If-None-Match": f'"other", {etag}'},
        {"If-None-Match": "W/" + etag},
        {"If-None-Match": '"stale"'},
        {"If-None-Match": "*"},
        {"Cookie": "idp_session=unknown-session"},
        {"Accept-Encoding": "gzip", "Accept": "application/jwk-set+json"},
    ]
    for headers in variants:
        fast, flask = both(fast_paths, "GET", path, **headers)
        assert not fast_paths.passed_on, headers
        assert without_fresh_id(fast) == without_fresh_id(flask), headers
    statuses = {call(fast_paths, "GET", path, **h)[0] for h in variants}
    assert statuses == {"200 OK", "304 NOT MODIFIED"}


@pytest.mark.parametrize("path", [JWKS_PATH, DISCOVERY_PATH])
def test_a_callers_request_id_is_echoed_as_flask_does(fast_paths, path):
    fast, flask = both(fast_paths, "GET", path, **{"X-Request-Id": "trace-1234.abc_DEF"})
    assert fast == flask
    assert ("X-Request-Id", "trace-1234.abc_DEF") in fast[1]
    # One that is not plausible (too short, or with other characters) is replaced.
    for bad in ("short", "a b c d e f g h", "x" * 65, "ตัวอักษรไทย12"):
        fast, flask = both(fast_paths, "GET", path, **{"X-Request-Id": bad})
        assert without_fresh_id(fast) == without_fresh_id(flask), bad


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("HEAD", JWKS_PATH),
        ("POST", JWKS_PATH),
        ("GET", JWKS_PATH + "?x=1"),
        ("GET", JWKS_PATH + "?x=%00"),  # refused by the input hygiene, as before
        ("GET", JWKS_PATH + "/"),
        ("GET", "/JWKS.JSON"),
        ("OPTIONS", DISCOVERY_PATH),
        ("DELETE", DISCOVERY_PATH),
        ("GET", "/.well-known/oauth-authorization-server"),
    ],
)
def test_everything_else_goes_to_flask_unchanged(fast_paths, method, path):
    fast, flask = both(fast_paths, method, path)
    assert fast_paths.passed_on
    assert without_fresh_id(fast) == without_fresh_id(flask)


def test_the_jwks_follows_a_key_rotation(fast_paths, deps, clock):
    before, _ = both(fast_paths, "GET", JWKS_PATH)
    with deps.sessions.begin() as session:
        rotate_keys(session, deps.cipher, now=clock.now(), overlap=0, algs=("ES256",), force=True)
    fast_paths._keyring.reload()  # what the key-change announcement does in each process
    after_fast, after_flask = both(fast_paths, "GET", JWKS_PATH)
    assert without_fresh_id(after_fast) == without_fresh_id(after_flask)
    assert after_fast[2] != before[2]
    # The old ETag no longer matches: a cache holding the old set gets the new one.
    old_etag = dict(before[1])["ETag"]
    fast, flask = both(fast_paths, "GET", JWKS_PATH, **{"If-None-Match": old_etag})
    assert fast[0] == "200 OK"
    assert without_fresh_id(fast) == without_fresh_id(flask)


def test_the_access_log_and_the_latency_metric_see_fast_answers(fast_paths, caplog):
    caplog.set_level(logging.INFO, logger="idp.access")
    labels = {"endpoint": "oidc.jwks", "method": "GET", "status": "200"}
    before = _observed(labels)
    for wsgi in (fast_paths, fast_paths.behind):
        call(wsgi, "GET", JWKS_PATH, **{"X-Request-Id": "trace-5678.xyz"})
    entries = [r for r in caplog.records if r.getMessage() == "idp.http.request"]
    fields = ("request_id", "method", "path", "status", "client_ip")
    assert len(entries) == 2
    assert {k: getattr(entries[0], k) for k in fields} == {
        k: getattr(entries[1], k) for k in fields
    }
    assert _observed(labels) == before + 2


def _observed(labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value("idp_request_duration_seconds_count", labels) or 0.0
