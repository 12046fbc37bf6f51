from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

from idp.accounts.throttle import ThrottlePolicy

T0 = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = ThrottlePolicy(throttle_after=5, base_delay=2, max_delay=900, lockout_after=10,
                        lockout_seconds=1800, max_failures=100)  # fmt: skip


@pytest.mark.parametrize(
    ("failures", "wait"),
    [(0, None), (4, None), (5, 2), (6, 4), (9, 32), (10, 1800), (99, 1800)],
)
def test_delays_grow_then_lock(failures, wait):
    until = POLICY.blocked_until(failures, T0)
    assert until == (None if wait is None else T0 + timedelta(seconds=wait))


def test_delay_is_capped():
    policy = ThrottlePolicy(throttle_after=1, base_delay=2, max_delay=60, lockout_after=50)
    assert policy.blocked_until(40, T0) == T0 + timedelta(seconds=60)


def test_hard_cap_locks_until_reset():
    assert POLICY.is_blocked(100, T0, T0 + timedelta(days=3650))


def test_not_blocked_once_the_delay_has_passed():
    assert POLICY.is_blocked(5, T0, T0 + timedelta(seconds=1))
    assert not POLICY.is_blocked(5, T0, T0 + timedelta(seconds=2))
