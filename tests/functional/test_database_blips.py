"""A dropped database connection (a PostgreSQL restart, a failover): reads and the protocol
requests run again once on a fresh connection and succeed; other requests get a 503 with
Retry-After; nobody gets a bare 500."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine
from sqlalchemy import text

from idp import create_app
from idp.deps import build_deps
from idp.store.db import make_engine
from tests.conftest import postgres_server_url
from tests.factories import seed
from tests.rp import RP
from tests.rp import basic
from tests.rp import form_action
from tests.rp import form_fields

SERVICE = basic("demo-service", "demo-service-secret")


@pytest.fixture
def blip(settings, pg_url, redis_store, clock, clean_state) -> Iterator:
    name = f"idp-blip-{secrets.token_hex(4)}"
    engine = make_engine(pg_url + f"&application_name={name}", pool_size=3)
    deps = build_deps(settings, clock=clock, store=redis_store, engine=engine)
    client = create_app(deps=deps, background=False).test_client()
    seed(deps, "somchai")

    def drop_connections() -> int:
        admin = create_engine(postgres_server_url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            dropped = connection.execute(
                text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                     "WHERE application_name = :name"), {"name": name},
            ).scalar_one()  # fmt: skip
        admin.dispose()
        return int(dropped)

    yield client, drop_connections
    engine.dispose()


def test_protocol_requests_meeting_a_dropped_connection_succeed(blip):
    client, drop_connections = blip
    rp = RP(client)
    tokens = rp.login_and_exchange()
    assert drop_connections() >= 1  # the pool now holds only dead connections
    refreshed = client.post(
        "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert refreshed.status_code == 200, refreshed.get_data(as_text=True)
    assert refreshed.get_json()["sub"]
    drop_connections()
    params = rp.login()
    assert rp.exchange(params["code"]).status_code == 200
    drop_connections()
    answer = client.post("/introspect", data={"token": tokens["access_token"]}, headers=SERVICE)
    assert answer.status_code == 200
    assert answer.get_json()["active"] is True


def test_a_form_post_meeting_a_dropped_connection_gets_a_503_with_retry_after(blip):
    client, drop_connections = blip
    page = RP(client).authorize()
    html = page.get_data(as_text=True)
    fields = form_fields(html)
    fields.update(username="somchai", password="Demo-Pass-2025!")
    drop_connections()
    response = client.post(form_action(html), data=fields)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert 'id="error-code">temporarily_unavailable' in response.get_data(as_text=True)


def test_client_assertion_survives_the_run_again(blip, clock):
    """The request runs again on a fresh connection: its assertion's jti, marked used by the
    first run, must not make the second one refuse the client."""
    from tests.factories import add_client
    from tests.fapi import ASSERTION_TYPE
    from tests.fapi import FapiClient
    from tests.fapi import new_key
    from tests.fapi import public_jwks

    client, drop_connections = blip
    deps = client.application.extensions["idp.oauth"].deps
    key = new_key()
    add_client(deps, "pkj-service", secret=None, auth_methods=["private_key_jwt"],
               jwks=public_jwks(key), grant_types=["client_credentials"],
               scope="helpdesk")  # fmt: skip
    service = FapiClient(RP(client, client_id="pkj-service", secret=None), key, clock.now)

    def token(assertion: str):
        return client.post("/token", data={"grant_type": "client_credentials",
                                           "client_assertion_type": ASSERTION_TYPE,
                                           "client_assertion": assertion})  # fmt: skip

    assert token(service.assertion()).status_code == 200  # the client is cached now
    assert drop_connections() >= 1
    answer = token(service.assertion())
    assert answer.status_code == 200, answer.get_json()
    # Replay from another request is still refused.
    replay = service.assertion()
    assert token(replay).status_code == 200
    assert token(replay).get_json()["error"] == "invalid_client"
