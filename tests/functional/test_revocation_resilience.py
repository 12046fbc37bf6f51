"""Revocations hold through Redis outages, restarts and failed rebuilds (the
database is the truth; Redis may lose everything at any moment)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import redis

from idp import create_app
from idp.deps import build_deps
from idp.revocation.models import RevokedKind
from idp.store.ephemeral import EphemeralStoreError
from tests.conftest import _delete_namespace
from tests.conftest import redis_server_url
from tests.factories import seed
from tests.rp import RP
from tests.rp import basic

SERVICE = basic("demo-service", "demo-service-secret")
CONFIDENTIAL = basic("demo-confidential", "demo-confidential-secret")


class FlakyStore:
    """The real Redis store, with chosen operations failing as a network outage would."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.failing: set[str] = set()

    def fail(self, *operations: str) -> None:
        self.failing = set(operations) or {"*"}

    def heal(self) -> None:
        self.failing = set()

    def __getattr__(self, name: str):
        attribute = getattr(self.inner, name)
        if not callable(attribute) or name in ("subscribe", "start_listening"):
            return attribute

        def call(*args, **kwargs):
            if "*" in self.failing or name in self.failing:
                raise EphemeralStoreError("down")
            return attribute(*args, **kwargs)

        return call

    @property
    def is_shared(self) -> bool:
        return True


@pytest.fixture
def flaky(settings, pg_engine, redis_store, clock, clean_state):
    store = FlakyStore(redis_store)
    deps = build_deps(settings, clock=clock, store=store, engine=pg_engine)
    client = create_app(deps=deps, background=False).test_client()
    seed(deps, "somchai")
    return store, deps, client


def active(client, token: str) -> bool:
    return bool(
        client.post("/introspect", data={"token": token}, headers=SERVICE).get_json()["active"]
    )


def reconcile(deps) -> None:
    with deps.sessions() as session:
        deps.revocations.reconcile(session, deps.clock.now())


def test_revocation_made_while_redis_was_unreachable_survives_its_return(flaky):
    store, deps, client = flaky
    token = RP(client).login_and_exchange()["access_token"]
    assert active(client, token)
    store.fail()
    assert client.post("/revoke", data={"token": token}, headers=CONFIDENTIAL).status_code == 200
    assert not active(client, token)  # answered by the database
    deps.clock.advance(90)
    store.heal()  # Redis is back, with its old contents and its "complete" marker
    reconcile(deps)
    assert not active(client, token)
    assert client.get("/userinfo", headers={"Authorization": "Bearer " + token}).status_code == 401


def test_a_failed_rebuild_is_not_trusted(flaky):
    store, deps, client = flaky
    token = RP(client).login_and_exchange()["access_token"]
    client.post("/revoke", data={"token": token}, headers=CONFIDENTIAL)
    assert not active(client, token)
    _delete_namespace(redis.Redis.from_url(redis_server_url()))  # Redis restarts empty
    store.fail("set_many")  # ... and the rebuild's write fails once
    assert not active(client, token)
    store.heal()
    deps.clock.advance(61)
    reconcile(deps)
    assert not active(client, token)
    assert not active(client, token)


def test_logout_holds_when_redis_is_down_at_the_time(flaky):
    store, deps, client = flaky
    tokens = RP(client).login_and_exchange()
    assert active(client, tokens["access_token"])  # the mirror is complete and trusted
    store.fail()
    client.get("/logout", query_string={"id_token_hint": tokens["id_token"]})
    assert not active(client, tokens["access_token"])  # Redis down: the database answers
    store.heal()
    reconcile(deps)  # every instance does this each second
    assert not active(client, tokens["access_token"])
    deps.clock.advance(30)
    reconcile(deps)
    assert not active(client, tokens["access_token"])


def second_instance(flaky_store, deps):
    """Another IdP instance sharing the database and the (same) Redis."""
    other = build_deps(deps.settings, clock=deps.clock, store=flaky_store, engine=deps.engine)
    return other, create_app(deps=other, background=False).test_client()


def test_redis_that_reads_but_refuses_writes_is_not_trusted(flaky):
    store, deps, client = flaky
    other, other_client = second_instance(store, deps)
    token = RP(client).login_and_exchange()["access_token"]
    assert active(client, token)
    assert active(other_client, token)  # both instances trust a complete mirror
    store.fail("set_many")  # a read-only replica after a failover
    client.post("/revoke", data={"token": token}, headers=CONFIDENTIAL)
    assert not active(client, token)  # the instance that failed to write distrusts at once
    reconcile(other)  # the other one sees the dirty mark within a second
    assert not active(other_client, token)
    deps.clock.advance(30)
    reconcile(other)
    assert not active(other_client, token)
    store.heal()
    reconcile(other)  # a successful rebuild: the mirror is trusted again, and complete
    assert not active(other_client, token)


def test_a_stale_mirror_is_repaired_by_the_next_reconcile(flaky):
    _store, deps, client = flaky
    token = RP(client).login_and_exchange()["access_token"]
    client.post("/revoke", data={"token": token}, headers=CONFIDENTIAL)
    assert not active(client, token)
    # A replica that never got the write: the key is gone, the marker is not.
    r = redis.Redis.from_url(redis_server_url())
    r.delete(*[k for k in r.scan_iter(match=f"{deps.keys.prefix}revocation:jti:*")])
    deps.clock.advance(61)
    reconcile(deps)
    assert not active(client, token)


def test_simultaneous_failed_mirrors_both_keep_their_revocation(flaky):
    store, deps, client = flaky
    first = RP(client).login_and_exchange()["access_token"]
    second = RP(client).login_and_exchange()["access_token"]
    store.fail("set_many")
    barrier = threading.Barrier(2)
    statuses = []

    def revoke(token: str) -> None:
        with create_app(deps=deps, background=False).test_client() as own:
            barrier.wait()
            statuses.append(
                own.post("/revoke", data={"token": token}, headers=CONFIDENTIAL).status_code
            )

    threads = [threading.Thread(target=revoke, args=(t,)) for t in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200, 200]
    store.heal()
    reconcile(deps)
    assert not active(client, first)
    assert not active(client, second)


def flush_namespace() -> None:
    """What FLUSHDB does to this run's keys (the shared test Redis serves other runs too)."""
    _delete_namespace(redis.Redis.from_url(redis_server_url()))


def revoked(deps, jti: str) -> bool:
    return deps.revocations.is_revoked(jti=jti, sid=None, now=deps.clock.now(),
                                       open_session=deps.sessions)  # fmt: skip


def revoke_uncommitted(deps, jti: str):
    session = deps.sessions()
    now = deps.clock.now()
    expires_at = now + timedelta(minutes=5)
    deps.revocations.revoke(
        session, RevokedKind.ACCESS_TOKEN, jti, expires_at=expires_at, now=now, reason="test"
    )
    return session


def test_a_rebuild_from_a_snapshot_older_than_a_revocation_does_not_hide_it(flaky):
    # The race measured from outside: the revocation's mirror write is flushed before its
    # commit, and a rebuild takes its snapshot before that commit and then declares the
    # mirror complete.
    _store, deps, _client = flaky
    assert not revoked(deps, "jti-raced")  # a complete, trusted mirror
    session = revoke_uncommitted(deps, "jti-raced")
    flush_namespace()
    with deps.sessions() as other:
        assert deps.revocations.reload(other, deps.clock.now())  # snapshot without it
    session.commit()  # /revoke answers 200 after this
    session.close()
    assert revoked(deps, "jti-raced")


def test_a_flush_between_the_snapshot_and_the_marker_refuses_the_marker(flaky):
    store, deps, _client = flaky
    assert not revoked(deps, "jti-raced")
    session = revoke_uncommitted(deps, "jti-raced")
    real_set_many = store.inner.set_many

    def commit_and_flush_first(items, **kwargs):
        if kwargs.get("guard"):
            # Between the rebuild's snapshot and its write: the revocation commits (and is
            # mirrored again), then Redis loses everything.
            session.commit()
            flush_namespace()
        return real_set_many(items, **kwargs)

    store.inner.set_many = commit_and_flush_first
    try:
        with deps.sessions() as other:
            assert not deps.revocations.reload(other, deps.clock.now())
    finally:
        store.inner.set_many = real_set_many
        session.close()
    assert revoked(deps, "jti-raced")


def test_a_revocation_rolled_back_is_not_mirrored_after_commit(flaky):
    _store, deps, _client = flaky
    session = revoke_uncommitted(deps, "jti-rolled-back")
    session.rollback()
    session.close()
    flush_namespace()
    assert not revoked(deps, "jti-rolled-back")
