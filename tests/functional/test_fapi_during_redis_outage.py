"""Pushed requests and single-use client assertions while Redis is unreachable: the database
takes over (idp.store.durable), and an assertion used during the outage stays used after it."""

from __future__ import annotations

import pytest

from idp import create_app
from idp.deps import build_deps
from idp.store.durable import FallbackStore
from idp.store.ephemeral import Keys
from tests.conftest import NAMESPACE
from tests.factories import PASSWORD
from tests.factories import add_client
from tests.factories import seed
from tests.fapi import FapiClient
from tests.fapi import new_key
from tests.fapi import public_jwks
from tests.functional.test_revocation_resilience import FlakyStore
from tests.rp import RP
from tests.rp import callback_params


@pytest.fixture
def outage(settings, pg_engine, redis_store, clock, clean_state):
    flaky = FlakyStore(redis_store)
    keys = Keys(NAMESPACE)
    store = FallbackStore(flaky, pg_engine, shared_prefix=keys.revocations_prefix,
                          database_prefixes=(keys.client_assertion_jti_prefix,))  # fmt: skip
    deps = build_deps(settings, clock=clock, store=store, engine=pg_engine)
    client = create_app(deps=deps, background=False).test_client()
    seed(deps, "somchai")
    key = new_key()
    add_client(deps, "fapi-rp", secret=None, auth_methods=["private_key_jwt"],
               jwks=public_jwks(key), require_pushed_authorization_requests=True)  # fmt: skip
    return FapiClient(RP(client, client_id="fapi-rp", secret=None), key, clock.now), flaky


def test_pushed_request_and_assertions_while_redis_is_down(outage):
    fapi, redis = outage
    redis.fail()
    params = fapi.rp.authorize_params()
    assertion = fapi.assertion()
    pushed = fapi.push(params, **fapi.auth(assertion))
    assert pushed.status_code == 201, pushed.get_json()
    # The same assertion again: its jti is marked in the database.
    replayed = fapi.push(params, **fapi.auth(assertion))
    assert replayed.get_json()["error"] == "invalid_client"

    request_uri = pushed.get_json()["request_uri"]
    page = fapi.authorize_with(request_uri)
    assert page.status_code == 200
    callback = callback_params(fapi.rp.submit(page, username="somchai", password=PASSWORD))
    assert "invalid_request_uri" in fapi.authorize_with(request_uri).get_data(as_text=True)

    redis.heal()  # back, without what was written during the outage
    assert fapi.push(params, **fapi.auth(assertion)).get_json()["error"] == "invalid_client"
    tokens = fapi.token(
        grant_type="authorization_code",
        code=callback["code"],
        redirect_uri=params["redirect_uri"],
        code_verifier=fapi.rp.verifier,
    )
    assert tokens.status_code == 200, tokens.get_json()
