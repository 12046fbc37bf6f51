from __future__ import annotations

import pytest
from pydantic import ValidationError

from idp.settings import Settings

PRODUCTION = {
    "mode": "production",
    "issuer": "https://login.example.go.th",
    "database_url": "postgresql+psycopg://idp@db/idp",
    "redis_url": "redis://cache:6379/0",
    "secret_key": "s" * 48,
    "data_key": "cHJvZHVjdGlvbi1kYXRhLWtleS0wMTIzNDU2Nzg5YWI",
    "paotang_client_secret": "production-paotang-client-secret",
    "nexus_api_key": "production-nexus-relay-api-key",
}


def test_production_settings_are_accepted():
    assert Settings(**PRODUCTION).is_production


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"secret_key": None}, "IDP_SECRET_KEY is the published demo key"),
        ({"data_key": None}, "IDP_DATA_KEY is the published demo key"),
        ({"database_url": "sqlite:///x.db"}, "PostgreSQL"),
        ({"redis_url": None}, "IDP_REDIS_URL is required"),
        ({"issuer": "http://login.example.go.th"}, "https"),
        ({"wait_url": "http://wait.example.go.th"}, "IDP_WAIT_URL must use https"),
        # A public issuer's pages would send their tickets to each user's own machine.
        ({"wait_url": "http://127.0.0.1:8001"}, "IDP_WAIT_URL must use https"),
    ],
)
def test_production_refuses_demo_secrets_and_missing_services(change, message):
    values = dict(PRODUCTION)
    for key, value in change.items():
        if value is None:
            values.pop(key)
        else:
            values[key] = value
    with pytest.raises(ValidationError, match=message):
        Settings(**values)


@pytest.mark.parametrize("issuer", ["http://127.0.0.1:8000/", "ftp://x", "https://x/?a=b"])
def test_issuer_must_be_exact(issuer):
    with pytest.raises(ValidationError):
        Settings(issuer=issuer)


def test_session_limits_cannot_exceed_nist_aal2():
    with pytest.raises(ValidationError):
        Settings(session_max_age=86401)
    with pytest.raises(ValidationError):
        Settings(login_max_consecutive_failures=101)


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("IDP_ACCESS_TOKEN_TTL", "120")
    assert Settings().access_token_ttl == 120


@pytest.mark.parametrize(
    "url",
    [
        "https://wait.example.go.th/",
        "javascript:alert(1)",
        "https://w.example/?x",
        "w.example",
        # It goes into the page's Content-Security-Policy: nothing that could end a directive.
        "https://w.example;script-src",
        "https://w.example,x",
        "https://u@w.example",
    ],
)
def test_the_waiters_url_is_an_origin_and_path_without_a_trailing_slash(url):
    with pytest.raises(ValidationError):
        Settings(wait_url=url)
