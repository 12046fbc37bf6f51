"""Pages (language, security headers, errors) and the operations endpoints."""

from __future__ import annotations

import pytest

from idp import create_app
from idp.deps import build_deps
from idp.settings import Settings
from idp.store.ephemeral import RedisStore
from tests.factories import seed
from tests.rp import RP
from tests.rp import form_action
from tests.rp import form_fields


@pytest.fixture
def rp(client, deps):
    seed(deps, "somchai")
    return RP(client)


def test_pages_are_thai_by_default_and_english_on_request(rp, client):
    page = rp.authorize().get_data(as_text=True)
    assert '<html lang="th">' in page
    assert "รหัสผู้ใช้งาน" in page
    english = rp.authorize(ui_locales="en-US th").get_data(as_text=True)
    assert '<html lang="en">' in english
    assert ">Sign in</h1>" in english


def test_language_switch_sticks_and_returns_to_the_page(rp, client):
    response = client.get("/lang/en?next=/")
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    home = client.get("/").get_data(as_text=True)
    assert '<html lang="en">' in home
    assert "Soft Token sign-in service" in home


# Browsers read a backslash in a path as a slash: "/\\evil.example" is "//evil.example".
@pytest.mark.parametrize("target", ["http://evil.example/", "//evil.example/", "javascript:x",
                                    "/\\evil.example/", "/\\/evil.example/"])  # fmt: skip
def test_language_switch_is_not_an_open_redirector(client, deps, target):
    response = client.get("/lang/th", query_string={"next": target})
    assert response.headers["Location"] == "/"


def test_pages_carry_strict_security_headers(rp):
    response = rp.authorize()
    headers = response.headers
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"


def test_production_cookies_are_host_prefixed_secure_httponly_samesite(settings, deps, redis_store):
    # model_construct skips the refusal of demo secrets: the signing keys of the test
    # database are encrypted with the demo data key, and only the cookies are under test.
    production = Settings.model_construct(
        **{**dict(settings), "mode": "production", "issuer": "https://login.example.go.th"}
    )
    local = build_deps(production, clock=deps.clock, store=redis_store, engine=deps.engine)
    app = create_app(deps=local, background=False)
    client = app.test_client()
    seed(local, "somchai")
    rp = RP(client)
    # The issuer is https: tell the test client so, as a TLS-terminating proxy would.
    response = client.get(
        "/authorize",
        query_string=rp.authorize_params(),
        base_url="https://login.example.go.th",
    )
    assert response.status_code == 303
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-idp_session=")
    for flag in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert flag in cookie
    assert "Domain" not in cookie
    assert "max-age=31536000" in response.headers["Strict-Transport-Security"]


def test_unexpected_errors_never_show_a_stack_trace(client, deps, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(deps.signer, "issue_access_token", explode)
    seed(deps)
    response = client.post(
        "/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic ZGVtby1zZXJ2aWNlOmRlbW8tc2VydmljZS1zZWNyZXQ="},
    )
    assert response.status_code == 500
    assert response.get_json() == {"error": "server_error"}
    monkeypatch.setattr("idp.web.pages.current_login", explode)
    page = client.get("/")
    assert page.status_code == 500
    body = page.get_data(as_text=True)
    assert "secret internals" not in body
    assert "Traceback" not in body


def test_unknown_path_and_wrong_method(client, deps):
    assert client.get("/nope").status_code == 404
    response = client.get("/token")
    assert response.status_code == 405
    assert response.get_json() == {"error": "method_not_allowed"}


def test_health_readiness_and_metrics(rp, client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"database": "ok", "redis": "ok"}
    rp.login_and_exchange()
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'idp_tokens_issued_total{grant_type="authorization_code"}' in metrics
    assert 'idp_login_total{outcome="success"}' in metrics
    assert "idp_request_duration_seconds_bucket" in metrics


def test_readiness_reports_redis_down(settings, deps):
    broken = build_deps(
        settings, clock=deps.clock, store=RedisStore("redis://127.0.0.1:1/0"), engine=deps.engine
    )
    response = create_app(deps=broken, background=False).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["redis"] == "unavailable"


def test_request_id_is_echoed_or_made(client, deps):
    assert (
        client.get("/healthz", headers={"X-Request-Id": "abc12345"}).headers["X-Request-Id"]
        == "abc12345"
    )
    made = client.get("/healthz", headers={"X-Request-Id": "bad id!"}).headers["X-Request-Id"]
    assert made != "bad id!"
    assert len(made) == 16


def test_control_characters_on_pages_get_a_clear_page(rp, client):
    response = client.get("/authorize", query_string={"client_id": "a\x00b"})
    assert response.status_code == 400
    assert "invalid_request" in response.get_data(as_text=True)
    page = rp.authorize()
    html = page.get_data(as_text=True)
    fields = form_fields(html)
    fields.update(username="som\x00chai", password="x")
    assert client.post(form_action(html), data=fields).status_code == 400
