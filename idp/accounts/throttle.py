"""Brute-force protection of the password step: growing delays, lock-out, a hard cap.

Counted per account (the case-folded username, known or not) in the database, so the count
survives a Redis restart and is shared by every instance, and per client IP in the ephemeral
store. NIST SP 800-63B-4 §3.2.2: never more than 100 consecutive failed attempts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta


@dataclass(frozen=True)
class ThrottlePolicy:
    throttle_after: int = 5
    base_delay: int = 2
    max_delay: int = 900
    lockout_after: int = 10
    lockout_seconds: int = 1800
    max_failures: int = 100
    ip_failure_limit: int = 300
    ip_window: int = 900

    def blocked_until(self, failures: int, last_failure_at: datetime) -> datetime | None:
        """When the next attempt may be made after ``failures`` consecutive failures.

        ``datetime.max`` means locked until an administrator resets the account.
        """
        if failures >= self.max_failures:
            return datetime.max.replace(tzinfo=last_failure_at.tzinfo)
        if failures >= self.lockout_after:
            return last_failure_at + timedelta(seconds=self.lockout_seconds)
        if failures >= self.throttle_after:
            exponent = min(failures - self.throttle_after, 30)
            delay = min(self.base_delay * 2**exponent, self.max_delay)
            return last_failure_at + timedelta(seconds=delay)
        return None

    def is_blocked(self, failures: int, last_failure_at: datetime, now: datetime) -> bool:
        until = self.blocked_until(failures, last_failure_at)
        return until is not None and now < until
