"""The token endpoint: code redemption rules and standard error answers (RFC 6749 §5.2)."""

from __future__ import annotations

import base64
import threading

import pytest
from sqlalchemy import select

from idp.audit.models import AuditEvent
from tests.factories import add_client
from tests.factories import seed
from tests.rp import RP
from tests.rp import basic


@pytest.fixture
def rp(client, deps):
    seed(deps, "somchai")
    return RP(client)


def introspect(client, token: str) -> dict:
    response = client.post(
        "/introspect", data={"token": token}, headers=basic("demo-service", "demo-service-secret")
    )
    assert response.status_code == 200
    return response.get_json()


def test_code_is_usable_once_and_reuse_revokes_what_it_issued(rp, client, deps):
    params = rp.login()
    first = rp.exchange(params["code"])
    assert first.status_code == 200
    access_token = first.get_json()["access_token"]
    assert introspect(client, access_token)["active"] is True

    replay = rp.exchange(params["code"])
    assert replay.status_code == 400
    assert replay.get_json()["error"] == "invalid_grant"
    assert introspect(client, access_token) == {"active": False}


def test_parallel_redemptions_of_one_code_yield_one_token(rp, app, deps):
    params = rp.login()
    results: list[int] = []

    def redeem() -> None:
        with app.test_client() as other:
            response = RP(other, verifier=rp.verifier).token(
                grant_type="authorization_code",
                code=params["code"],
                redirect_uri=rp.redirect_uri,
                code_verifier=rp.verifier,
            )
            results.append(response.status_code)

    threads = [threading.Thread(target=redeem) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [200, 400, 400, 400]


def test_expired_code_is_refused(rp, clock):
    params = rp.login()
    clock.advance(61)
    response = rp.exchange(params["code"])
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_code_issued_to_another_client_is_refused(rp, client, deps):
    params = rp.login()
    add_client(deps, "other-rp", redirect_uris=[rp.redirect_uri])
    other = RP(client, client_id="other-rp", secret="s" * 40)
    other.verifier = rp.verifier
    response = other.token(
        grant_type="authorization_code",
        code=params["code"],
        redirect_uri=rp.redirect_uri,
        code_verifier=rp.verifier,
    )
    assert response.get_json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"code_verifier": "x" * 43}, "invalid_grant"),
        ({"code_verifier": None}, "invalid_request"),
        ({"code_verifier": "short"}, "invalid_request"),
        ({"redirect_uri": "http://127.0.0.1:9999/callback2"}, "invalid_grant"),
        ({"code": "not-a-code"}, "invalid_grant"),
        ({"code": None}, "invalid_request"),
    ],
)
def test_bad_redemption_is_refused(rp, change, error):
    params = rp.login()
    data = {
        "grant_type": "authorization_code",
        "code": params["code"],
        "redirect_uri": rp.redirect_uri,
        "code_verifier": rp.verifier,
    }
    data.update(change)
    response = rp.token(**{k: v for k, v in data.items() if v is not None})
    assert response.status_code == 400
    assert response.get_json()["error"] == error


def test_wrong_secret_is_401_with_www_authenticate_and_audited(rp, deps):
    rp.secret = "wrong-secret"
    response = rp.token(grant_type="client_credentials")
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    with deps.sessions() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.event == "client.authentication_failed")
        ).all()
    assert [(e.client_id, e.outcome) for e in events] == [("demo-confidential", "failure")]


def test_unknown_client_is_401(client, deps):
    seed(deps)
    response = client.post(
        "/token", data={"grant_type": "client_credentials"}, headers=basic("nobody", "x" * 40)
    )
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_public_client_cannot_pose_as_confidential_without_pkce(client, deps):
    seed(deps, "somchai")
    response = client.post(
        "/token",
        data={"grant_type": "client_credentials", "client_id": "demo-public"},
    )
    assert response.status_code in (400, 401)
    assert response.get_json()["error"] in ("invalid_client", "unauthorized_client")


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"grant_type": "password", "username": "a", "password": "b"}, "unsupported_grant_type"),
        ({"grant_type": "implicit"}, "unsupported_grant_type"),
        ({}, "invalid_request"),
    ],
)
def test_unsupported_or_missing_grant_type(rp, client, data, error):
    response = client.post(
        "/token", data=data, headers=basic("demo-confidential", "demo-confidential-secret")
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == error


def test_json_body_is_refused_as_invalid_request(rp, client):
    response = client.post(
        "/token",
        json={"grant_type": "client_credentials"},
        headers=basic("demo-service", "demo-service-secret"),
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_parameters_in_the_query_string_are_not_read(rp, client):
    response = client.post(
        "/token?grant_type=client_credentials",
        data={"scope": "helpdesk"},
        headers=basic("demo-service", "demo-service-secret"),
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_oversized_body_gets_a_json_error(rp, client):
    response = client.post(
        "/token",
        data={"grant_type": "client_credentials", "pad": "x" * 70_000},
        headers=basic("demo-service", "demo-service-secret"),
    )
    assert response.status_code == 413
    assert response.get_json()["error"] == "invalid_request"


def test_token_responses_are_never_cached(rp, client):
    response = client.post(
        "/token",
        data={"grant_type": "client_credentials"},
        headers=basic("demo-service", "demo-service-secret"),
    )
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"


@pytest.mark.parametrize(
    "body",
    [
        "grant_type=client_credentials&grant_type=refresh_token",
        "grant_type=client_credentials&scope=helpdesk&scope=helpdesk",
    ],
)
def test_repeated_parameters_are_refused(rp, client, body):
    response = client.post(
        "/token",
        data=body,
        content_type="application/x-www-form-urlencoded",
        headers=basic("demo-service", "demo-service-secret"),
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_two_client_authentication_methods_at_once_are_refused(rp, client):
    response = client.post(
        "/token",
        data={"grant_type": "client_credentials", "client_id": "demo-service",
              "client_secret": "demo-service-secret"},
        headers=basic("demo-service", "demo-service-secret"),
    )  # fmt: skip
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


@pytest.mark.parametrize("path", ["/token", "/introspect", "/revoke"])
def test_control_characters_get_invalid_request_not_a_crash(rp, client, path):
    response = client.post(path, data={"grant_type": "client_credentials", "client_id": "a\x00b",
                                       "token": "x"})  # fmt: skip
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_undecodable_basic_credentials_are_invalid_client(rp, client):
    response = client.post(
        "/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic /w=="},  # one byte, not UTF-8
    )
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_percent_encoded_control_characters_in_basic_are_invalid_client(rp, client):
    raw = base64.b64encode(b"%00demo:secret").decode()
    response = client.post(
        "/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {raw}"},
    )
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_a_malformed_basic_header_elsewhere_is_not_a_client_error(rp, client):
    for path in ("/healthz", "/jwks.json", "/.well-known/openid-configuration"):
        assert client.get(path, headers={"Authorization": "Basic /w=="}).status_code == 200
    userinfo = client.get("/userinfo", headers={"Authorization": "Basic /w=="})
    assert userinfo.status_code == 401
    assert userinfo.headers["WWW-Authenticate"].startswith("Bearer")
