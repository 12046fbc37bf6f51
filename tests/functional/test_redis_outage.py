"""Signing in while Redis is unreachable: the database takes over the interaction session,
rate-limit counters, push challenges and answers and one-time markers (idp.store.durable),
so that push and TOTP logins work through an outage, and what was written during it still
holds once Redis is back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from idp.deps import build_deps
from idp.store.db import make_engine
from idp.store.durable import FallbackStore
from idp.store.ephemeral import Keys
from tests.conftest import NAMESPACE
from tests.functional.test_revocation_resilience import FlakyStore
from tests.nexus_server import match_number
from tests.push_stack import Login
from tests.push_stack import Stack
from tests.push_stack import push_stack


@pytest.fixture
def outage(settings, pg_engine, redis_store, clock, clean_state, tmp_path) -> Iterator:
    flaky = FlakyStore(redis_store)
    store = FallbackStore(flaky, pg_engine, shared_prefix=Keys(NAMESPACE).revocations_prefix,
                          now=clock.now)  # fmt: skip
    deps = build_deps(settings, clock=clock, store=store, engine=pg_engine)
    with push_stack(settings, deps, tmp_path, users=("somchai", "malee")) as stack:
        yield stack, flaky


def introspect(stack: Stack, token: str) -> bool:
    response = requests.post(f"{stack.idp}/introspect", data={"token": token},
                             auth=("demo-service", "demo-service-secret"), timeout=10)  # fmt: skip
    assert response.status_code == 200
    return bool(response.json()["active"])


def test_push_sign_in_while_redis_is_down(outage):
    stack, redis = outage
    redis.fail()
    login = Login.start(stack, "somchai")
    assert login.page.status_code == 200, login.page.text
    pushed = stack.nexus.wait_for_push("phone-somchai")
    answered = stack.nexus.approve("phone-somchai", pushed["id"], match_number(login.page.text))
    assert answered.status_code == 200, answered.text
    login.reload()
    tokens = login.tokens()
    assert introspect(stack, tokens["access_token"])  # revocation checks ask the database
    confidential = ("demo-confidential", "demo-confidential-secret")
    revoked = requests.post(f"{stack.idp}/revoke", data={"token": tokens["access_token"]},
                            auth=confidential, timeout=10)  # fmt: skip
    assert revoked.status_code == 200
    assert not introspect(stack, tokens["access_token"])


def test_totp_sign_in_while_redis_is_down_and_its_code_stays_used(outage):
    stack, redis = outage
    stack.nexus.knobs(outage=True)
    redis.fail()
    code = stack.nexus.totp("phone-somchai")
    first = Login.start(stack, "somchai")
    first.use_code(code)
    assert first.returned
    assert first.id_token()["amr"] == ["pwd", "otp", "mfa"]
    again = Login.start(stack, "somchai")
    again.use_code(code)
    assert not again.returned  # the one-time marker lives in the database
    redis.heal()  # Redis is back, without that marker
    after = Login.start(stack, "somchai")
    after.use_code(code)
    assert not after.returned
    assert 'data-problem="wrong_code"' in after.page.text


def test_a_login_started_during_the_outage_finishes_after_it(outage):
    stack, redis = outage
    redis.fail()
    login = Login.start(stack, "malee")
    pushed = stack.nexus.wait_for_push("phone-malee")
    redis.heal()
    stack.nexus.approve("phone-malee", pushed["id"], match_number(login.page.text))
    login.reload()
    assert login.id_token()["acr"].endswith("/acr/aal2-softtoken")


def test_redis_alone_serves_while_the_database_is_away(redis_store, clean_state):
    unreachable = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/none")
    store = FallbackStore(
        redis_store, unreachable, shared_prefix=Keys(NAMESPACE).revocations_prefix
    )
    key = Keys(NAMESPACE).push_challenge("db-away")
    assert store.set(key, b"x", ttl=60)
    assert store.get(key) == b"x"
    assert store.consume(key) == b"x"
    unreachable.dispose()


def test_a_code_used_before_the_outage_is_refused_during_it(outage):
    # The attacker has the password and saw the owner type a code; Redis then fails (or is
    # made to), and its one-time marker with it: the database alone must still know the code
    # was used.
    stack, redis = outage
    stack.nexus.knobs(outage=True)
    code = stack.nexus.totp("phone-somchai")
    owner = Login.start(stack, "somchai")
    owner.use_code(code)
    assert owner.returned
    redis.fail()
    replay = Login.start(stack, "somchai")
    replay.use_code(code)
    assert not replay.returned
    assert 'data-problem="wrong_code"' in replay.page.text


@pytest.fixture
def two_instances(redis_store, pg_engine, clean_state):
    """Two instances' stores on one Redis and one database: ``a`` has just seen Redis fail
    (and goes to the database for a while), Redis is back, ``b`` uses it."""
    flaky = FlakyStore(redis_store)
    prefix = Keys(NAMESPACE).revocations_prefix
    a = FallbackStore(flaky, pg_engine, shared_prefix=prefix)
    b = FallbackStore(flaky, pg_engine, shared_prefix=prefix)
    flaky.fail()
    a.get(Keys(NAMESPACE).push_challenge("any"))
    flaky.heal()
    return a, b


def test_an_instance_still_avoiding_redis_finds_what_another_wrote_there(two_instances):
    a, b = two_instances
    challenge = Keys(NAMESPACE).push_challenge("written-at-b")
    assert b.set(challenge, b"challenge", ttl=60)
    assert a.get(challenge) == b"challenge"
    assert b.set(Keys(NAMESPACE).push_challenge("taken"), b"x", ttl=60)
    assert a.consume(Keys(NAMESPACE).push_challenge("taken")) == b"x"


def test_a_marker_set_at_one_instance_is_not_set_again_at_one_avoiding_redis(two_instances):
    a, b = two_instances
    marker = Keys(NAMESPACE).push_answer("answered-at-b")
    assert b.set(marker, b"approved", ttl=60, only_if_new=True)
    assert not a.set(marker, b"denied", ttl=60, only_if_new=True)
    assert b.get(marker) == b"approved"
