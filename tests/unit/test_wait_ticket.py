"""The wait ticket: only the IdP's key makes one, for one challenge, login and user, for a
while."""

from __future__ import annotations

import base64
import json

from idp.mfa.challenges import Outcome
from idp.mfa.challenges import outcome_of
from idp.web import wait_ticket

KEY = "a-secret-key-of-the-idp-0123456789abcdef"
TICKET = wait_ticket.Ticket("challenge-1", "tx-1", "user-1", expires_at=1_000.0)


def test_a_ticket_reads_back_until_shortly_after_the_challenge_expires():
    text = wait_ticket.issue(KEY, TICKET)
    read = wait_ticket.read(KEY, text, now=1_000.0 + wait_ticket.GRACE - 1)
    assert read is not None
    assert (read.challenge_id, read.login_tx, read.user_id) == ("challenge-1", "tx-1", "user-1")
    assert wait_ticket.read(KEY, text, now=1_000.0 + wait_ticket.GRACE) is None


def test_another_key_or_a_changed_payload_is_refused():
    text = wait_ticket.issue(KEY, TICKET)
    assert wait_ticket.read(KEY + "x", text, now=0) is None
    payload, _, mac = text.partition(".")
    fields = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    fields["c"] = "challenge-2"
    changed = base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")
    assert wait_ticket.read(KEY, f"{changed}.{mac}", now=0) is None
    for junk in ("", ".", "a.b.c", "x" * 1000, f"{payload}.", f".{mac}", "é.é"):
        assert wait_ticket.read(KEY, junk, now=0) is None


def test_the_ticket_key_is_not_the_secret_key_itself():
    """A ticket's MAC made with the raw secret key (as a session cookie is) does not verify."""
    import hashlib
    import hmac

    payload = wait_ticket.issue(KEY, TICKET).partition(".")[0]
    raw = hmac.new(KEY.encode(), payload.encode(), hashlib.sha256).digest()
    forged = f"{payload}.{base64.urlsafe_b64encode(raw).decode().rstrip('=')}"
    assert wait_ticket.read(KEY, forged, now=0) is None


def test_both_ways_of_waiting_read_an_outcome_by_one_rule():
    assert outcome_of(None, expires_at=10, now=9.9) == Outcome.PENDING
    assert outcome_of(None, expires_at=10, now=10) == Outcome.EXPIRED
    assert outcome_of(b"denied", expires_at=10, now=1) == Outcome.DENIED
