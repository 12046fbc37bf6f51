"""The in-process store and Redis keep one contract (Redis part needs a server)."""

from __future__ import annotations

import secrets
import threading

import pytest

from idp.store.ephemeral import EphemeralStoreError
from idp.store.ephemeral import MemoryStore
from idp.store.ephemeral import RedisStore


class Ticker:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
def store(request):
    if request.param == "memory":
        return MemoryStore()
    return request.getfixturevalue("redis_store")


@pytest.fixture
def key() -> str:
    return f"test-contract:{secrets.token_hex(8)}"


def test_set_get_and_only_if_new(store, key):
    assert store.set(key, b"a", ttl=60)
    assert store.get(key) == b"a"
    assert not store.set(key, b"b", ttl=60, only_if_new=True)
    assert store.get(key) == b"a"


def test_consume_is_single_use(store, key):
    store.set(key, b"once", ttl=60)
    assert store.consume(key) == b"once"
    assert store.consume(key) is None


def test_incr_counts_in_a_window(store, key):
    assert [store.incr(key, ttl=60) for _ in range(3)] == [1, 2, 3]


def test_mget_and_set_many(store, key):
    store.set_many([(key + ":1", b"x", 60), (key + ":2", b"y", 60)])
    assert store.mget([key + ":1", key + ":missing", key + ":2"]) == [b"x", None, b"y"]


def test_guarded_set_many_lands_only_while_the_guard_holds(store, key):
    store.set(key + ":epoch", b"e1", ttl=60)
    assert store.set_many([(key + ":1", b"x", 60)], guard=(key + ":epoch", b"e1"))
    store.delete(key + ":epoch")  # a flush in between
    assert not store.set_many([(key + ":2", b"y", 60)], guard=(key + ":epoch", b"e1"))
    store.set(key + ":epoch", b"e2", ttl=60)  # a new epoch, after the flush
    assert not store.set_many([(key + ":2", b"y", 60)], guard=(key + ":epoch", b"e1"))
    assert store.mget([key + ":1", key + ":2"]) == [b"x", None]


def test_concurrent_only_if_new_has_one_winner(store, key):
    wins = []
    barrier = threading.Barrier(8)

    def race() -> None:
        barrier.wait()
        wins.append(store.set(key, b"w", ttl=60, only_if_new=True))

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wins.count(True) == 1


def test_memory_store_expires_entries():
    ticker = Ticker()
    store = MemoryStore(clock=ticker)
    store.set("k", b"v", ttl=10)
    ticker.now += 11
    assert store.get("k") is None


def test_unreachable_redis_raises_a_store_error():
    with pytest.raises(EphemeralStoreError):
        RedisStore("redis://127.0.0.1:1/0").get("k")
