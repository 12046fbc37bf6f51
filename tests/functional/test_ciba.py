"""CIBA (OpenID Connect Client-Initiated Backchannel Authentication Core 1.0), poll and ping
modes: an application asks for a user by name, the user's phone (the mock Nexus, over real
HTTP) shows the binding message and the transaction, and its signed answer settles the request
the application polls for or is pinged about."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from joserfc import jws
from joserfc import jwt
from joserfc.jwk import ECKey
from joserfc.jwk import KeySet
from sqlalchemy import select

from idp.audit.models import AuditEvent
from idp.mfa.models import Device
from idp.mfa.models import DeviceStatus
from idp.oidc.backchannel import NoticeSender
from idp.oidc.clients import CIBA_GRANT_TYPE
from idp.oidc.models import BackchannelRequest
from mock_nexus.answering import dpop_proof
from mock_nexus.answering import sign_answer
from tests.factories import add_client
from tests.functional.test_admin_api import call
from tests.functional.test_lost_phones import helpdesk_token
from tests.push_stack import Login
from tests.push_stack import Stack
from tests.push_stack import push_stack
from tests.receivers import running_receiver

POLL = ("ciba-poll", "p" * 40)
PAYMENT = {
    "type": "gfmis_payment_approval",
    "actions": ["approve-1"],
    "document_number": "3100012345",
    "amount": {"value": "125000.5", "currency": "THB"},
    "payee": "บริษัท ตัวอย่าง จำกัด",
}
CONFIRMED = {**PAYMENT, "amount": {"value": "125000.50", "currency": "THB"}}


@pytest.fixture
def stack(settings, deps, tmp_path) -> Iterator[Stack]:
    users = ("somchai", "malee", "helpdesk1")
    with push_stack(settings, deps, tmp_path, users=users) as running:
        add_client(running.deps, POLL[0], secret=POLL[1], redirect_uris=[],
                   grant_types=[CIBA_GRANT_TYPE, "refresh_token"], scope="openid profile",
                   backchannel_token_delivery_mode="poll")  # fmt: skip
        yield running


def bc_authorize(stack: Stack, client=POLL, **params: str) -> requests.Response:
    data = {"scope": "openid profile", "login_hint": "somchai", **params}
    return requests.post(f"{stack.idp}/bc-authorize", data=data, auth=client, timeout=15)


def started(stack: Stack, client=POLL, **params: str) -> str:
    answer = bc_authorize(stack, client, **params)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["interval"] == 5
    assert body["expires_in"] > 0
    assert answer.headers["Cache-Control"] == "no-store"
    return str(body["auth_req_id"])


def poll(stack: Stack, auth_req_id: str, client=POLL) -> requests.Response:
    return requests.post(
        f"{stack.idp}/token",
        data={"grant_type": CIBA_GRANT_TYPE, "auth_req_id": auth_req_id},
        auth=client,
        timeout=15,
    )


def error_of(answer: requests.Response) -> str:
    return str(answer.json()["error"])


def events(stack: Stack, name: str) -> list[AuditEvent]:
    with stack.deps.sessions() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.event == name)))


def introspect(stack: Stack, token: str) -> dict:
    return requests.post(f"{stack.idp}/introspect", data={"token": token}, auth=POLL,
                         timeout=10).json()  # fmt: skip


def approve_on_phone(stack: Stack, phone: str = "phone-somchai") -> dict:
    pushed = stack.nexus.wait_for_push(phone)
    answer = requests.post(
        f"{stack.nexus.url}/phones/{phone}/challenges/{pushed['id']}/approve", json={}, timeout=15
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "approved"
    return pushed


def test_discovery_names_the_backchannel_endpoint_poll_and_ping_only(stack):
    metadata = requests.get(f"{stack.idp}/.well-known/openid-configuration", timeout=10).json()
    assert metadata["backchannel_authentication_endpoint"] == f"{stack.idp}/bc-authorize"
    assert metadata["backchannel_token_delivery_modes_supported"] == ["poll", "ping"]
    assert metadata["backchannel_user_code_parameter_supported"] is False
    assert "backchannel_authentication_request_signing_alg_values_supported" not in metadata
    assert CIBA_GRANT_TYPE in metadata["grant_types_supported"]


def test_a_payment_approved_on_the_phone_gives_tokens_once_with_the_signed_evidence(stack):
    auth_req_id = started(stack, binding_message="GFMIS 3100012345",
                          authorization_details=json.dumps([PAYMENT]))  # fmt: skip
    pending = poll(stack, auth_req_id)
    assert (pending.status_code, error_of(pending)) == (400, "authorization_pending")

    # The phone shows the binding message and the transaction, and asks for no number.
    pushed = stack.nexus.wait_for_push("phone-somchai")
    assert pushed["binding_message"] == "GFMIS 3100012345"
    assert pushed["number_matching"] is False
    assert pushed["authorization_details"] == [CONFIRMED]
    page = requests.get(f"{stack.nexus.url}/phones/phone-somchai", timeout=10).text
    assert "GFMIS 3100012345" in page
    assert 'name="number"' not in page
    stack.deps.clock.advance(6)
    approve_on_phone(stack)

    tokens = poll(stack, auth_req_id)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert "refresh_token" not in body  # a confirmed transaction is acted on once
    assert body["authorization_details"] == [CONFIRMED]
    key_set = KeySet.import_key_set(requests.get(f"{stack.idp}/jwks.json", timeout=10).json())
    id_token = jwt.decode(body["id_token"], key_set).claims
    access = jwt.decode(body["access_token"], key_set).claims
    for claims in (id_token, access):
        assert claims["acr"] == f"{stack.idp}/acr/aal2-softtoken-txn"
        assert claims["amr"] == ["swk", "mca"]
    assert id_token["aud"] == POLL[0]
    assert id_token["auth_time"] == int(stack.deps.clock.now().timestamp())
    # CIBA Core §7.4: the auth_req_id claim belongs to push mode only.
    assert "urn:openid:params:jwt:claim:auth_req_id" not in id_token
    assert id_token["txn"] == access["txn"]

    # The evidence: the phone's signature over the hash of what it showed.
    evidence = requests.get(f"{stack.idp}/evidence/{access['txn']}", auth=POLL, timeout=10).json()
    assert evidence["authorization_details"] == [CONFIRMED]
    canonical = json.dumps([CONFIRMED], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert evidence["txn_hash"] == hashlib.sha256(canonical.encode()).hexdigest()
    signed = jws.deserialize_compact(
        evidence["signed_answer"], ECKey.import_key(evidence["device"]["jwk"]), ["ES256"]
    )
    assert json.loads(signed.payload)["decision"] == "approve"

    again = poll(stack, auth_req_id)
    assert (again.status_code, error_of(again)) == (400, "invalid_grant")
    assert [e.details["answer"] for e in events(stack, "ciba.answered")] == ["approved"]
    assert len(events(stack, "ciba.requested")) == 1


def test_polling_faster_than_the_interval_is_told_to_slow_down(stack):
    auth_req_id = started(stack)
    assert error_of(poll(stack, auth_req_id)) == "authorization_pending"
    assert error_of(poll(stack, auth_req_id)) == "slow_down"
    # The interval is now 10 s: 6 s later is still too soon, 10 s after that is fine.
    stack.deps.clock.advance(6)
    assert error_of(poll(stack, auth_req_id)) == "slow_down"
    stack.deps.clock.advance(15)
    assert error_of(poll(stack, auth_req_id)) == "authorization_pending"


def test_an_unanswered_request_expires(stack):
    auth_req_id = started(stack, requested_expiry="60")
    stack.deps.clock.advance(61)
    expired = poll(stack, auth_req_id)
    assert (expired.status_code, error_of(expired)) == (400, "expired_token")


def test_a_denial_on_the_phone_is_access_denied(stack):
    auth_req_id = started(stack)
    pushed = stack.nexus.wait_for_push("phone-somchai")
    assert stack.nexus.deny("phone-somchai", pushed["id"]).json()["outcome"] == "denied"
    denied = poll(stack, auth_req_id)
    assert (denied.status_code, error_of(denied)) == (400, "access_denied")


def test_this_was_not_me_suspends_the_phone_and_denies_the_request(stack):
    auth_req_id = started(stack, binding_message="ABC-123")
    pushed = stack.nexus.wait_for_push("phone-somchai")
    stack.nexus.deny("phone-somchai", pushed["id"], report=True)
    assert error_of(poll(stack, auth_req_id)) == "access_denied"
    with stack.deps.sessions() as session:
        statuses = set(session.scalars(select(Device.status)))
    assert DeviceStatus.SUSPENDED in statuses
    assert events(stack, "revocation.phone_suspended")
    # A suspended phone confirms nothing: a new request is refused at once.
    refused = bc_authorize(stack)
    assert (refused.status_code, error_of(refused)) == (403, "access_denied")
    assert events(stack, "ciba.refused")[-1].details["reason"] == "no_device"


def test_parallel_redemptions_give_tokens_exactly_once(stack):
    auth_req_id = started(stack)
    approve_on_phone(stack)
    barrier = threading.Barrier(6)

    def redeem(_: int) -> int:
        barrier.wait()
        return poll(stack, auth_req_id).status_code

    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(redeem, range(6)))
    assert sorted(statuses) == [200, 400, 400, 400, 400, 400]


def test_suspending_the_phone_ends_a_waiting_request_and_the_tokens_it_gave(stack):
    first = started(stack)
    approve_on_phone(stack)
    tokens = poll(stack, first).json()
    assert introspect(stack, tokens["access_token"])["active"] is True
    waiting = started(stack)
    call(stack, helpdesk_token(stack), "POST", "/users/somchai/suspend-phone",
         json={"reason": "lost"}).raise_for_status()  # fmt: skip
    assert error_of(poll(stack, waiting)) == "access_denied"
    assert [e.details["reason"] for e in events(stack, "ciba.ended")] == ["device_suspended"]
    assert introspect(stack, tokens["access_token"])["active"] is False
    refreshed = requests.post(
        f"{stack.idp}/token", data={"grant_type": "refresh_token",
                                    "refresh_token": tokens["refresh_token"]},
        auth=POLL, timeout=10,
    )  # fmt: skip
    assert error_of(refreshed) == "invalid_grant"


def test_unknown_users_are_named_and_counted_per_client(stack):
    answer = bc_authorize(stack, login_hint="nobody")
    assert (answer.status_code, error_of(answer)) == (400, "unknown_user_id")
    stack.deps.store.set(stack.deps.keys.ciba_unknown_users(POLL[0]), b"20", ttl=60)
    limited = bc_authorize(stack)  # a real user: refused unseen while the client is limited
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "900"
    reasons = [e.details["reason"] for e in events(stack, "ciba.refused")]
    assert reasons == ["unknown_user_id", "rate_limited"]
    assert stack.nexus.inbox("phone-somchai") == []


@pytest.mark.parametrize(
    ("params", "status", "error"),
    [
        # A transaction needs a binding message to show on both screens.
        ({"authorization_details": json.dumps([PAYMENT])}, 400, "invalid_binding_message"),
        ({"binding_message": "<script>"}, 400, "invalid_binding_message"),
        ({"binding_message": "x" * 65}, 400, "invalid_binding_message"),
        ({"login_hint_token": "eyJ"}, 400, "invalid_request"),  # two hints
        ({"login_hint": "", "login_hint_token": "eyJ"}, 400, "invalid_request"),  # unsupported
        ({"login_hint": "", "id_token_hint": "not-a-token"}, 400, "invalid_request"),
        ({"scope": "profile"}, 400, "invalid_request"),
        ({"requested_expiry": "0"}, 400, "invalid_request"),
        ({"request": "eyJ"}, 400, "invalid_request"),
        ({"authorization_details": "[{}]", "binding_message": "X"}, 400,
         "invalid_authorization_details"),
    ],
)  # fmt: skip
def test_malformed_requests_are_refused_and_nothing_is_pushed(stack, params, status, error):
    answer = bc_authorize(stack, **params)
    assert (answer.status_code, error_of(answer)) == (status, error)
    assert stack.nexus.inbox("phone-somchai") == []


def test_clients_without_ciba_or_without_credentials_are_refused(stack):
    unregistered = bc_authorize(stack, ("demo-confidential", "demo-confidential-secret"))
    assert (unregistered.status_code, error_of(unregistered)) == (400, "unauthorized_client")
    wrong = bc_authorize(stack, (POLL[0], "x" * 40))
    assert (wrong.status_code, error_of(wrong)) == (401, "invalid_client")
    # Another client cannot redeem this client's request.
    auth_req_id = started(stack)
    add_client(stack.deps, "other-ciba", secret="o" * 40, redirect_uris=[],
               grant_types=[CIBA_GRANT_TYPE], scope="openid",
               backchannel_token_delivery_mode="poll")  # fmt: skip
    stolen = poll(stack, auth_req_id, ("other-ciba", "o" * 40))
    assert error_of(stolen) == "invalid_grant"


def test_an_id_token_hint_names_the_user(stack):
    first = started(stack)
    approve_on_phone(stack)
    id_token = poll(stack, first).json()["id_token"]
    second = started(stack, login_hint="", id_token_hint=id_token)
    approve_on_phone(stack)
    assert poll(stack, second).status_code == 200


def test_a_ping_mode_client_is_notified_then_polls(stack):
    with running_receiver(default_status=204) as receiver:
        ping = ("ciba-ping", "g" * 40)
        add_client(stack.deps, ping[0], secret=ping[1], redirect_uris=[],
                   grant_types=[CIBA_GRANT_TYPE], scope="openid",
                   backchannel_token_delivery_mode="ping",
                   backchannel_client_notification_endpoint=receiver.url("/ciba"))  # fmt: skip
        missing = bc_authorize(stack, ping, scope="openid")
        assert error_of(missing) == "invalid_request"  # ping mode needs the token
        auth_req_id = started(stack, ping, scope="openid", client_notification_token="n0t1fy-me")
        approve_on_phone(stack)
        deps = stack.deps
        sender = NoticeSender(deps.sessions, deps.signer, deps.clients, deps.clock,
                              default_alg="ES256", timeout=3.0, cipher=deps.cipher)  # fmt: skip
        assert sender.send_due() == 1
        [delivery] = receiver.deliveries
        assert delivery.path == "/ciba"
        assert delivery.authorization == "Bearer n0t1fy-me"
        assert delivery.content_type == "application/json"
        assert json.loads(delivery.body) == {"auth_req_id": auth_req_id}
        assert poll(stack, auth_req_id, ping).status_code == 200
        # A denial is told the same way; the client then learns it at the token endpoint.
        denied = started(stack, ping, scope="openid", client_notification_token="again")
        pushed = stack.nexus.wait_for_push("phone-somchai")
        stack.nexus.deny("phone-somchai", pushed["id"])
        assert sender.send_due() == 1
        assert receiver.deliveries[-1].authorization == "Bearer again"
        assert json.loads(receiver.deliveries[-1].body) == {"auth_req_id": denied}
        assert error_of(poll(stack, denied, ping)) == "access_denied"
    assert len(events(stack, "ciba.ping_delivered")) == 2


def test_a_browser_push_still_needs_its_number(stack):
    """The mock's contract for browser pushes is unchanged: an approval without a number is
    refused by the app."""
    Login.start(stack, "malee")
    pushed = stack.nexus.wait_for_push("phone-malee")
    assert pushed["number_matching"] is True
    assert pushed["binding_message"] is None
    answer = requests.post(
        f"{stack.nexus.url}/phones/phone-malee/challenges/{pushed['id']}/approve", json={},
        timeout=15,
    )  # fmt: skip
    assert (answer.status_code, answer.json()["error"]) == (400, "number_required")


def answer_signed_by_the_phone(stack: Stack, phone_id: str, *, number: int | None):
    """An approval made with the phone's own key, not by its app: what a modified app sends."""
    pushed = stack.nexus.wait_for_push(phone_id)
    phone = stack.nexus.phone(phone_id)
    challenge = stack.deps.challenges.get(pushed["id"])
    assert challenge is not None
    answer = sign_answer(phone, challenge_id=pushed["id"], nonce=challenge.nonce,
                         authorization_details=None, decision="approve", number=number)  # fmt: skip
    url = f"{stack.idp}/mfa/answers"
    proof = dpop_proof(phone, method="POST", url=url)
    response = requests.post(url, json={"answer": answer}, headers={"DPoP": proof}, timeout=10)
    return challenge, response


def test_the_idp_refuses_an_approval_without_the_number_for_a_browser_push(stack):
    """Attack: an app (or anything holding the phone's key) skips the number on a browser's
    push, as a backchannel approval does. The IdP asks the number of every numbered push."""
    Login.start(stack, "malee")
    challenge, refused = answer_signed_by_the_phone(stack, "phone-malee", number=None)
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_answer")
    assert stack.deps.challenges.outcome(challenge, now=stack.deps.clock.now()).value == "pending"


def test_the_idp_refuses_a_backchannel_approval_that_carries_a_number(stack):
    auth_req_id = started(stack)
    _, refused = answer_signed_by_the_phone(stack, "phone-somchai", number=42)
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_answer")
    assert error_of(poll(stack, auth_req_id)) == "authorization_pending"


def test_malformed_input_and_credentials_get_json_errors(stack):
    unreadable = requests.post(f"{stack.idp}/bc-authorize", data={"login_hint": "somchai"},
                               headers={"Authorization": "Basic %%%"}, timeout=10)  # fmt: skip
    assert (unreadable.status_code, error_of(unreadable)) == (401, "invalid_client")
    control = requests.post(f"{stack.idp}/bc-authorize", auth=POLL, timeout=10,
                            data={"scope": "openid", "login_hint": "som\x00chai"})  # fmt: skip
    assert (control.status_code, error_of(control)) == (400, "invalid_request")
    as_json = requests.post(f"{stack.idp}/bc-authorize", auth=POLL, timeout=10,
                            json={"scope": "openid", "login_hint": "somchai"})  # fmt: skip
    assert (as_json.status_code, error_of(as_json)) == (400, "invalid_request")


def test_a_confirmation_already_waiting_on_the_phone_refuses_a_new_request(stack):
    """The anti-fatigue rule of the browser's push: one waiting confirmation per user."""
    Login.start(stack, "somchai")
    stack.nexus.wait_for_push("phone-somchai")
    refused = bc_authorize(stack)
    assert (refused.status_code, error_of(refused)) == (403, "access_denied")
    assert events(stack, "ciba.refused")[-1].details["reason"] == "challenge_pending"
    assert len(stack.nexus.inbox("phone-somchai")) == 1
    with stack.deps.sessions() as session:
        assert set(session.scalars(select(BackchannelRequest.status))) == {"denied"}
