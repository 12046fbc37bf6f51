"""Every login confirmed on the phone. The IdP and the mock Nexus (relay and phones) serve HTTP on
loopback ports; phones are bound through the real protocol; answers are signed by the phones."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import select
from sqlalchemy import update

from idp.accounts.models import LoginFailure
from idp.audit.models import AuditEvent
from idp.mfa.models import Device
from idp.mfa.models import DeviceStatus
from mock_nexus.answering import dpop_proof
from mock_nexus.answering import sign_answer
from tests.nexus_server import confirm_link
from tests.nexus_server import confirm_state
from tests.nexus_server import match_number
from tests.push_stack import Login
from tests.push_stack import Stack
from tests.push_stack import push_stack


@pytest.fixture
def stack(settings, deps, tmp_path) -> Iterator[Stack]:
    with push_stack(settings, deps, tmp_path, users=("somchai", "malee")) as running:
        yield running


def events(stack: Stack, name: str) -> list[AuditEvent]:
    with stack.deps.sessions() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.event == name)))


def failures(stack: Stack) -> int:
    with stack.deps.sessions() as session:
        return sum(session.scalars(select(LoginFailure.failures)))


def post_answer(stack: Stack, phone_id: str, answer: str, *, proof: str | None = None):
    url = f"{stack.idp}/mfa/answers"
    phone = stack.nexus.phone(phone_id)
    return requests.post(
        url,
        json={"answer": answer},
        headers={"DPoP": proof or dpop_proof(phone, method="POST", url=url)},
        timeout=10,
    )


def answer_for(stack: Stack, phone_id: str, pushed: dict, **fields) -> str:
    """An answer made by ``phone_id``'s own key, as its app makes it."""
    values = {"decision": "approve", "number": 10, **fields}
    challenge_nonce = values.pop("nonce", None) or nonce_of(stack, pushed["id"])
    return sign_answer(
        stack.nexus.phone(phone_id),
        challenge_id=pushed["id"],
        nonce=challenge_nonce,
        authorization_details=pushed["authorization_details"],
        **values,
    )


def nonce_of(stack: Stack, challenge_id: str) -> str:
    challenge = stack.deps.challenges.get(challenge_id)
    assert challenge is not None
    return challenge.nonce


def number_of(stack: Stack, challenge_id: str) -> int:
    challenge = stack.deps.challenges.get(challenge_id)
    assert challenge is not None
    return challenge.number


# --- the happy paths ---------------------------------------------------------------------


def test_push_approved_with_the_number_from_the_page(stack):
    login = Login.start(stack, "somchai")
    assert confirm_state(login.page.text) == "pending"
    number = match_number(login.page.text)

    pushed = stack.nexus.wait_for_push("phone-somchai")
    # The phone sees who asks and from where, never the number (NIST SP 800-63B-4).
    assert pushed["client"] == "Demo confidential client"
    assert set(pushed["context"]) == {"ip", "browser", "time", "request_id"}
    assert pushed["context"]["ip"] == "127.0.0.1"
    assert "python-requests" in pushed["context"]["browser"]
    assert pushed["context"]["time"].endswith("+07:00")
    assert set(pushed) == {"id", "client", "context", "authorization_details", "expires_at",
                           "scanned", "number_matching", "binding_message"}  # fmt: skip
    # A browser's push asks for the number; only a backchannel (CIBA) request shows a binding
    # message instead.
    assert (pushed["number_matching"], pushed["binding_message"]) == (True, None)
    assert number not in pushed["context"].values()

    answered = stack.nexus.approve("phone-somchai", pushed["id"], number)
    assert answered.status_code == 200, answered.text
    assert answered.json()["outcome"] == "approved"

    login.reload()
    claims = login.id_token()
    assert claims["amr"] == ["pwd", "swk", "mca", "mfa"]
    assert claims["acr"] == f"{stack.idp}/acr/aal2-softtoken"
    assert events(stack, "mfa.push_approved")


def test_the_page_learns_the_answer_at_once_from_the_long_poll(settings, deps, tmp_path):
    with push_stack(settings, deps, tmp_path, users=("somchai",), mfa_long_poll=20.0) as stack:
        login = Login.start(stack, "somchai")
        wait_url = stack.idp + re.search(r'data-wait-url="([^"]+)"', login.page.text).group(1)
        pushed = stack.nexus.wait_for_push("phone-somchai")
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(
                login.browser.request, "GET", wait_url.replace("&amp;", "&"), timeout=30
            )
            time.sleep(0.3)  # the wait has begun
            stack.nexus.approve("phone-somchai", pushed["id"], match_number(login.page.text))
            started = time.monotonic()
            assert waiting.result().json() == {"state": "approved"}
        # Well before the 20 s the wait may be held: the answer ended it.
        assert time.monotonic() - started < 10


def test_reverse_path_scanning_the_code_on_the_page(stack):
    stack.nexus.knobs(drop_pushes=True)  # the notification never arrives
    login = Login.start(stack, "somchai")
    assert stack.nexus.inbox("phone-somchai") == []
    scanned = stack.nexus.scan("phone-somchai", confirm_link(login.page.text))
    assert scanned.status_code == 200, scanned.text
    # The app shows what it scanned (who asks, from where) before the user approves it.
    assert scanned.json()["client"] == "Demo confidential client"
    assert scanned.json()["scanned"] is True
    assert confirm_state(login.reload().text) == "pending"
    # The code carried no number: the person types the one the login page shows.
    number = match_number(login.page.text)
    answered = stack.nexus.approve("phone-somchai", scanned.json()["id"], number)
    assert answered.json()["outcome"] == "approved"
    login.reload()
    assert login.id_token()["amr"] == ["pwd", "swk", "mca", "mfa"]


def test_another_phone_cannot_fetch_a_scanned_challenge(stack):
    login = Login.start(stack, "somchai")
    scanned = stack.nexus.scan("phone-malee", confirm_link(login.page.text))
    assert scanned.status_code in (400, 404)
    assert confirm_state(login.reload().text) == "pending"


def test_totp_when_the_relay_is_down(stack):
    stack.nexus.knobs(outage=True)
    login = Login.start(stack, "somchai")
    assert confirm_state(login.page.text) == "push_unavailable"
    assert 'id="use-code"' in login.page.text
    login.use_code(stack.nexus.totp("phone-somchai"))
    claims = login.id_token()
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    assert claims["acr"] == f"{stack.idp}/acr/aal2-softtoken"


def test_a_slow_relay_is_treated_as_down(stack):
    stack.nexus.knobs(latency_ms=1500)  # the IdP waits 1 s (nexus_timeout)
    login = Login.start(stack, "somchai")
    assert confirm_state(login.page.text) == "push_unavailable"
    assert events(stack, "mfa.push_unavailable")


def test_user_without_a_phone_is_sent_to_register(stack):
    with stack.deps.sessions.begin() as session:
        session.execute(update(Device).values(status=DeviceStatus.SUSPENDED))
    login = Login.start(stack, "somchai")
    assert login.page.status_code == 403
    assert 'id="error-code">soft_token_required' in login.page.text
    assert not login.returned


# --- refusals ----------------------------------------------------------------------------


def test_wrong_number_fails_and_counts_as_a_failed_attempt(stack):
    login = Login.start(stack, "somchai")
    number = match_number(login.page.text)
    pushed = stack.nexus.wait_for_push("phone-somchai")
    answered = stack.nexus.approve("phone-somchai", pushed["id"], 10 + (number - 9) % 90)
    assert answered.json()["outcome"] == "wrong_number"
    assert confirm_state(login.reload().text) == "wrong_number"
    assert failures(stack) == 1
    assert events(stack, "mfa.push_wrong_number")
    # A new request carries a new challenge, and the right number then passes.
    login.send_again()
    again = stack.nexus.wait_for_push("phone-somchai")
    assert again["id"] != pushed["id"]
    stack.nexus.approve("phone-somchai", again["id"], match_number(login.page.text))
    login.reload()
    assert login.returned
    assert failures(stack) == 0  # the whole login succeeded


def test_denied_on_the_phone(stack):
    login = Login.start(stack, "somchai")
    pushed = stack.nexus.wait_for_push("phone-somchai")
    assert stack.nexus.deny("phone-somchai", pushed["id"]).json()["outcome"] == "denied"
    assert confirm_state(login.reload().text) == "denied"
    assert not login.returned


def test_this_was_not_me_blocks_the_login(stack):
    login = Login.start(stack, "somchai")
    pushed = stack.nexus.wait_for_push("phone-somchai")
    reported = stack.nexus.deny("phone-somchai", pushed["id"], report=True)
    assert reported.json()["outcome"] == "reported"
    page = login.reload()
    assert page.status_code == 403
    assert confirm_state(page.text) == "reported"
    # The attempt is over: neither the page nor the TOTP path continues it.
    assert 'id="error-code">login_expired' in login.reload().text
    totp = login.go(login.url.replace("/login/confirm", "/login/totp"))
    assert 'id="error-code">login_expired' in totp.text
    assert events(stack, "mfa.push_reported")


def test_expired_challenge_cannot_be_answered(settings, deps, tmp_path):
    with push_stack(settings, deps, tmp_path, users=("somchai",), mfa_challenge_ttl=30) as stack:
        login = Login.start(stack, "somchai")
        pushed = stack.nexus.wait_for_push("phone-somchai")
        number = match_number(login.page.text)
        stack.deps.clock.advance(31)  # past the challenge, within the proof's freshness
        answered = stack.nexus.approve("phone-somchai", pushed["id"], number)
        assert answered.status_code == 409
        assert answered.json()["error"] == "invalid_answer"
        assert confirm_state(login.reload().text) == "expired"
        assert events(stack, "mfa.answer_rejected")


def test_a_challenge_is_answered_once(stack):
    login = Login.start(stack, "somchai")
    pushed = stack.nexus.wait_for_push("phone-somchai")
    number = match_number(login.page.text)
    deny = answer_for(stack, "phone-somchai", pushed, decision="deny")
    approve = answer_for(stack, "phone-somchai", pushed, number=number)
    assert post_answer(stack, "phone-somchai", deny).json()["outcome"] == "denied"
    second = post_answer(stack, "phone-somchai", approve)
    assert second.status_code == 400
    assert post_answer(stack, "phone-somchai", deny).status_code == 400  # a replay
    assert confirm_state(login.reload().text) == "denied"


def test_a_dpop_proof_is_used_once(stack):
    Login.start(stack, "somchai")
    pushed = stack.nexus.wait_for_push("phone-somchai")
    proof = dpop_proof(stack.nexus.phone("phone-somchai"), method="POST",
                       url=f"{stack.idp}/mfa/answers")  # fmt: skip
    first = answer_for(stack, "phone-somchai", pushed, decision="deny")
    assert post_answer(stack, "phone-somchai", first, proof=proof).status_code == 200
    # A second call with the same proof is refused before anything else is looked at.
    replayed = post_answer(stack, "phone-somchai", first, proof=proof)
    assert replayed.status_code == 401
    assert replayed.json()["error"] == "invalid_dpop_proof"
    assert 'error="invalid_dpop_proof"' in replayed.headers["WWW-Authenticate"]


def test_another_users_phone_cannot_answer(stack):
    login = Login.start(stack, "somchai")
    pushed = stack.nexus.wait_for_push("phone-somchai")
    number = number_of(stack, pushed["id"])
    # malee's phone signs an approval of somchai's challenge, with its own proof ...
    forged = answer_for(stack, "phone-malee", pushed, number=number)
    assert post_answer(stack, "phone-malee", forged).status_code == 400
    # ... or with somchai's key proving possession but malee's key signing.
    somchai_proof = dpop_proof(
        stack.nexus.phone("phone-somchai"), method="POST", url=f"{stack.idp}/mfa/answers"
    )
    assert post_answer(stack, "phone-malee", forged, proof=somchai_proof).status_code == 400
    assert confirm_state(login.reload().text) == "pending"


def test_bad_signature_or_a_changed_answer_is_refused(stack):
    login = Login.start(stack, "somchai")
    pushed = stack.nexus.wait_for_push("phone-somchai")
    good = answer_for(stack, "phone-somchai", pushed, decision="deny")
    header, payload, signature = good.split(".")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    assert post_answer(stack, "phone-somchai", f"{header}.{payload}.{flipped}").status_code == 400
    # Same key, but the nonce is not the challenge's: the signature does not cover it.
    stale = answer_for(stack, "phone-somchai", pushed, decision="deny", nonce="not-the-nonce")
    assert post_answer(stack, "phone-somchai", stale).status_code == 400
    assert confirm_state(login.reload().text) == "pending"


def test_a_suspended_phone_confirms_nothing(stack):
    login = Login.start(stack, "somchai")
    pushed = stack.nexus.wait_for_push("phone-somchai")
    with stack.deps.sessions.begin() as session:
        session.execute(update(Device).values(status=DeviceStatus.SUSPENDED))
    answered = stack.nexus.approve("phone-somchai", pushed["id"], match_number(login.page.text))
    assert answered.status_code == 409
    page = login.reload()
    assert confirm_state(page.text) == "pending"
    login.use_code(stack.nexus.totp("phone-somchai"))
    assert not login.returned
    assert 'data-problem="no_device"' in login.page.text


def test_one_pending_challenge_per_user(stack):
    first = Login.start(stack, "somchai")
    second = Login.start(stack, "somchai")
    assert confirm_state(second.page.text) == "challenge_pending"
    pushed = stack.nexus.wait_for_push("phone-somchai")
    stack.nexus.approve("phone-somchai", pushed["id"], match_number(first.page.text))
    first.reload()
    assert first.returned
    second.send_again()
    assert confirm_state(second.page.text) == "pending"


# --- the TOTP fallback -----------------------------------------------------------------------


def test_a_totp_code_is_accepted_once(stack):
    stack.nexus.knobs(outage=True)
    code = stack.nexus.totp("phone-somchai")
    first = Login.start(stack, "somchai")
    first.use_code(code)
    assert first.returned
    second = Login.start(stack, "somchai")
    second.use_code(code)
    assert not second.returned
    assert 'data-problem="wrong_code"' in second.page.text


def test_totp_guessing_is_throttled(stack):
    stack.nexus.knobs(outage=True)
    login = Login.start(stack, "somchai")
    right = stack.nexus.totp("phone-somchai")
    wrong = f"{(int(right) + 500_000) % 1_000_000:06d}"
    for _ in range(stack.deps.settings.login_throttle_after):
        login.use_code(wrong)
        assert not login.returned
    assert failures(stack) == stack.deps.settings.login_throttle_after
    # Throttled now: even the right code is not looked at until the delay has passed.
    login.use_code(right)
    assert not login.returned
    assert 'data-problem="throttled"' in login.page.text


def test_using_the_code_withdraws_the_pending_push(stack):
    stack.nexus.knobs(drop_answers=True)  # the phone's answer never reaches the IdP
    login = Login.start(stack, "somchai")
    pushed = stack.nexus.wait_for_push("phone-somchai")
    stack.nexus.approve("phone-somchai", pushed["id"], match_number(login.page.text))
    assert confirm_state(login.reload().text) == "pending"
    login.use_code(stack.nexus.totp("phone-somchai"))
    assert login.returned
    # The push no longer blocks the next login.
    stack.nexus.knobs(drop_answers=False)
    assert confirm_state(Login.start(stack, "somchai").page.text) == "pending"


def test_trying_again_in_the_same_browser_replaces_its_own_push(stack):
    login = Login.start(stack, "somchai")
    first = stack.nexus.wait_for_push("phone-somchai")
    login.authorize(prompt="login")
    login.submit({"username": "somchai", "password": "Demo-Pass-2025!"})
    assert confirm_state(login.page.text) == "pending"
    second = stack.nexus.inbox("phone-somchai")[-1]
    assert second["id"] != first["id"]
    # The abandoned push can no longer be answered.
    assert stack.nexus.approve("phone-somchai", first["id"], 10).status_code == 409
    stack.nexus.approve("phone-somchai", second["id"], match_number(login.page.text))
    login.reload()
    assert login.returned
