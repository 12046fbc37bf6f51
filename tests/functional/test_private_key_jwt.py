"""private_key_jwt client authentication (RFC 7523, OIDC Core §9) at the token, introspection
and revocation endpoints: what a stolen, replayed or forged assertion gets."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from idp import create_app
from idp.audit.models import AuditEvent
from idp.deps import build_deps
from idp.store.ephemeral import RedisStore
from tests.conftest import REDIS_URL
from tests.factories import add_client
from tests.fapi import ASSERTION_TYPE
from tests.fapi import FapiClient
from tests.fapi import new_key
from tests.fapi import public_jwks
from tests.fapi import signed
from tests.fapi import unsigned
from tests.rp import ISSUER
from tests.rp import RP


@pytest.fixture
def service(client, deps, clock):
    key = new_key()
    add_client(
        deps,
        "pkj-service",
        secret="s" * 40,
        auth_methods=["client_secret_basic", "private_key_jwt"],
        jwks=public_jwks(key),
        grant_types=["client_credentials"],
        scope="helpdesk",
        may_introspect=True,
    )
    return FapiClient(RP(client, client_id="pkj-service", secret=None), key, clock.now)


def token_with(client: FlaskClient, assertion: str):
    return client.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        },
    )


def refused(response) -> None:
    assert response.status_code in (400, 401), response.status_code
    assert response.get_json()["error"] == "invalid_client"


def test_valid_assertion_gets_a_token(service, client):
    response = token_with(client, service.assertion())
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["scope"] == "helpdesk"


def test_the_issuer_alone_is_the_accepted_audience(service, client):
    assert token_with(client, service.assertion(aud=[ISSUER])).status_code == 200
    refused(token_with(client, service.assertion(aud=ISSUER + "/token")))


def test_replayed_assertion_is_refused(service, client):
    assertion = service.assertion()
    assert token_with(client, assertion).status_code == 200
    refused(token_with(client, assertion))


def test_replay_is_refused_by_another_instance(service, client, settings, clock, pg_engine):
    """Two app instances share only Redis and PostgreSQL, as two servers do."""
    other = create_app(
        deps=build_deps(settings, clock=clock, store=RedisStore(REDIS_URL), engine=pg_engine),
        background=False,
    ).test_client()
    assertion = service.assertion()
    assert token_with(client, assertion).status_code == 200
    refused(token_with(other, assertion))


def test_wrong_audience_is_refused(service, client):
    refused(token_with(client, service.assertion(aud="https://other-op.example/token")))


def test_expired_assertion_is_refused(service, client, clock):
    assertion = service.assertion()
    clock.advance(120)
    refused(token_with(client, assertion))


def test_long_lived_assertion_is_refused(service, client, clock):
    refused(token_with(client, service.assertion(exp=int(clock.now().timestamp()) + 3600)))


def test_assertion_without_jti_or_with_other_subject_is_refused(service, client):
    refused(token_with(client, service.assertion(jti=None)))
    refused(token_with(client, service.assertion(iss="demo-service")))


def test_hmac_with_the_client_secret_is_refused(service, client):
    from joserfc.jwk import OctKey

    forged = signed(service.assertion_claims(), OctKey.import_key("s" * 40), alg="HS256")
    refused(token_with(client, forged))


def test_unsigned_and_unknown_key_assertions_are_refused(service, client):
    refused(token_with(client, unsigned(service.assertion_claims())))
    refused(token_with(client, service.assertion(key=new_key(kid=service.key.kid))))


def test_assertion_with_a_second_method_is_refused(service, client):
    response = client.post(
        "/token",
        data={"grant_type": "client_credentials", **service.auth()},
        headers={"Authorization": "Basic cGtqLXNlcnZpY2U6c3Nzcw=="},
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_refused_assertion_is_in_the_audit_trail(service, client, deps):
    refused(token_with(client, service.assertion(aud="https://other-op.example")))
    with deps.sessions() as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.event == "client.authentication_failed")
        ).one()
    assert event.outcome == "failure"
    assert event.client_id == "pkj-service"
    assert event.details["method"] == "private_key_jwt"
    assert event.details["endpoint"] == "/token"


def test_introspection_and_revocation_accept_assertions(service, client):
    access = token_with(client, service.assertion()).get_json()["access_token"]
    introspected = client.post("/introspect", data={"token": access, **service.auth()})
    assert introspected.status_code == 200
    assert introspected.get_json()["active"] is True
    revoked = client.post("/revoke", data={"token": access, **service.auth()})
    assert revoked.status_code == 200
    again = client.post("/introspect", data={"token": access, **service.auth()})
    assert again.get_json() == {"active": False}


def test_client_without_private_key_jwt_cannot_use_an_assertion(client, deps, clock):
    key = new_key()
    add_client(deps, "secret-only", jwks=public_jwks(key), grant_types=["client_credentials"],
               scope="helpdesk")  # fmt: skip
    secret_only = FapiClient(RP(client, client_id="secret-only", secret=None), key, clock.now)
    refused(token_with(client, secret_only.assertion()))


def test_keys_from_a_jwks_uri_follow_the_clients_rotation(app, client, deps, clock):
    import json

    from werkzeug.wrappers import Request
    from werkzeug.wrappers import Response

    from idp.oidc.client_keys import ClientKeys
    from tests.servers import serving

    old, new = new_key("old"), new_key("new")
    published = {"jwks": public_jwks(old)}

    @Request.application
    def jwks_endpoint(request: Request) -> Response:
        return Response(json.dumps(published["jwks"]), mimetype="application/json")

    # Refetch at once on an unknown kid (30 s apart in service), so the test need not wait.
    app.extensions["idp.oauth"].client_keys = ClientKeys(refetch_after=0)
    with serving(jwks_endpoint) as url:
        add_client(deps, "rotating", secret=None, auth_methods=["private_key_jwt"],
                   jwks_uri=url + "/jwks.json", grant_types=["client_credentials"],
                   scope="helpdesk")  # fmt: skip
        rotating = FapiClient(RP(client, client_id="rotating", secret=None), old, clock.now)
        assert token_with(client, rotating.assertion()).status_code == 200
        published["jwks"] = public_jwks(new)
        assert token_with(client, rotating.assertion(key=new)).status_code == 200
        # The old key is gone from the client's set: what it signs is refused now.
        refused(token_with(client, rotating.assertion(key=old)))
        refused(token_with(client, rotating.assertion(key=new_key("stranger"))))
    # Keys that cannot be fetched authenticate nobody.
    refused(token_with(client, rotating.assertion(key=new_key("elsewhere"))))
