"""Step-up (acr_values, max_age, prompt=login) and transaction confirmation (RFC 9396) end to
end: the IdP and the mock Nexus serve HTTP; the phone shows and signs what it approves."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
import requests
from joserfc import jws
from joserfc import jwt
from joserfc.jwk import ECKey
from joserfc.jwk import KeySet
from sqlalchemy import select

from idp.demo import bind_phone
from idp.mfa.models import TransactionEvidence
from mock_nexus.answering import dpop_proof
from mock_nexus.answering import sign_answer
from tests.factories import add_client
from tests.factories import make_user
from tests.nexus_server import confirm_state
from tests.nexus_server import match_number
from tests.push_stack import Login
from tests.push_stack import Stack
from tests.push_stack import push_stack
from tests.rp import form_fields
from tests.servers import LoopbackBrowser

PAYMENT = {
    "type": "gfmis_payment_approval",
    "actions": ["approve-1"],
    "document_number": "3100012345",
    "amount": {"value": "125000.5", "currency": "THB"},
    "payee": "บริษัท  ตัวอย่าง จำกัด",
}
# As the IdP keeps it: canonical amount, spaces folded.
CONFIRMED = {**PAYMENT, "amount": {"value": "125000.50", "currency": "THB"},
             "payee": "บริษัท ตัวอย่าง จำกัด"}  # fmt: skip


@pytest.fixture
def stack(settings, deps, tmp_path) -> Iterator[Stack]:
    with push_stack(settings, deps, tmp_path, users=("malee",)) as running:
        yield running


def approve(stack: Stack, login: Login) -> dict:
    pushed = stack.nexus.wait_for_push("phone-malee")
    answered = stack.nexus.approve("phone-malee", pushed["id"], match_number(login.page.text))
    assert answered.json()["outcome"] == "approved", answered.text
    login.reload()
    return pushed


def signed_in(stack: Stack) -> Login:
    login = Login.start(stack, "malee")
    approve(stack, login)
    assert login.returned
    return login


def error_of(login: Login) -> str:
    return parse_qs(urlsplit(login.url).query)["error"][0]


# --- step-up -------------------------------------------------------------------------------


def test_a_soft_token_session_satisfies_acr_values_without_interaction(stack):
    login = signed_in(stack)
    login.authorize(acr_values=f"{stack.idp}/acr/aal2-softtoken", prompt="none")
    assert login.returned
    assert login.id_token()["acr"] == f"{stack.idp}/acr/aal2-softtoken"


@pytest.mark.parametrize("params", [{"max_age": "0"}, {"prompt": "login"}])
def test_max_age_and_prompt_login_ask_for_password_and_phone_again(stack, params):
    login = signed_in(stack)
    first = login.id_token()
    stack.deps.clock.advance(5)
    login.authorize(**params)
    assert 'id="password"' in login.page.text
    login.submit({"username": "malee", "password": "Demo-Pass-2025!"})
    assert confirm_state(login.page.text) == "pending"
    approve(stack, login)
    again = login.id_token()
    assert again["auth_time"] > first["auth_time"]
    assert again["amr"] == ["pwd", "swk", "mca", "mfa"]


def test_acr_values_step_up_confirms_on_the_phone_within_the_session(settings, deps, tmp_path):
    # During a registration period malee signs in with her password alone; then she binds her
    # phone, and an app asking for the Soft Token level gets a confirmation, not a new login.
    with push_stack(settings, deps, tmp_path, users=("somchai",), soft_token_required=False) as st:
        with st.deps.sessions.begin() as session:
            make_user(session, st.deps, "malee")
        login = Login.start(st, "malee")
        assert login.returned
        assert login.id_token()["acr"] == f"{st.idp}/acr/aal1-pwd"
        assert bind_phone(st.deps, "malee", nexus_url=st.nexus.url)

        login.authorize(acr_values=f"{st.idp}/acr/aal2-softtoken", prompt="none")
        assert error_of(login) == "interaction_required"
        login.authorize(acr_values=f"{st.idp}/acr/aal2-softtoken")
        assert 'id="password"' not in login.page.text
        assert confirm_state(login.page.text) == "pending"
        approve(st, login)
        claims = login.id_token()
        assert claims["acr"] == f"{st.idp}/acr/aal2-softtoken"
        assert claims["amr"] == ["pwd", "swk", "mca", "mfa"]


def test_an_app_asking_for_the_soft_token_level_refuses_a_user_without_a_phone(
    settings, deps, tmp_path
):
    with push_stack(settings, deps, tmp_path, users=(), soft_token_required=False) as st:
        with st.deps.sessions.begin() as session:
            make_user(session, st.deps, "prasert")
        login = Login.start(st, "prasert", acr_values=f"{st.idp}/acr/aal2-softtoken")
        assert login.page.status_code == 403
        assert 'id="error-code">soft_token_required' in login.page.text


# --- transaction confirmation ---------------------------------------------------------------


def test_a_payment_approval_is_confirmed_on_the_phone_and_carried_by_the_tokens(stack):
    login = signed_in(stack)
    login.authorize(authorization_details=json.dumps([PAYMENT]))
    # No password again: the session stands, the phone confirms this one transaction.
    assert confirm_state(login.page.text) == "pending"
    assert "3100012345" in login.page.text
    assert "125,000.50" in login.page.text
    pushed = approve(stack, login)
    assert pushed["authorization_details"] == [CONFIRMED]

    tokens = login.tokens()
    assert "refresh_token" not in tokens  # a confirmed transaction is acted on once
    assert tokens["authorization_details"] == [CONFIRMED]  # RFC 9396 §7
    introspected = requests.post(
        f"{stack.idp}/introspect",
        data={"token": tokens["access_token"]},
        auth=("demo-confidential", "demo-confidential-secret"),
        timeout=10,
    ).json()
    assert introspected["authorization_details"] == [CONFIRMED]
    key_set = KeySet.import_key_set(requests.get(f"{stack.idp}/jwks.json", timeout=10).json())
    id_token = jwt.decode(tokens["id_token"], key_set).claims
    access = jwt.decode(tokens["access_token"], key_set).claims
    for claims in (id_token, access):
        assert claims["acr"] == f"{stack.idp}/acr/aal2-softtoken-txn"
        assert claims["authorization_details"] == [CONFIRMED]
    assert id_token["txn"] == access["txn"]

    # The evidence: the details, and the phone's signature over their hash.
    evidence = requests.get(
        f"{stack.idp}/evidence/{id_token['txn']}",
        auth=("demo-confidential", "demo-confidential-secret"),
        timeout=10,
    ).json()
    assert evidence["authorization_details"] == [CONFIRMED]
    canonical = json.dumps([CONFIRMED], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert evidence["txn_hash"] == hashlib.sha256(canonical.encode()).hexdigest()
    signed = jws.deserialize_compact(
        evidence["signed_answer"], ECKey.import_key(evidence["device"]["jwk"]), ["ES256"]
    )
    answer = json.loads(signed.payload)
    assert answer["txn_hash"] == evidence["txn_hash"]
    assert answer["decision"] == "approve"

    # The session itself stays at the Soft Token level: the next authorization carries no
    # transaction.
    login.authorize(prompt="none")
    plain = login.id_token()
    assert plain["acr"] == f"{stack.idp}/acr/aal2-softtoken"
    assert "authorization_details" not in plain


def test_every_transaction_needs_its_own_confirmation(stack):
    login = signed_in(stack)
    login.authorize(authorization_details=json.dumps([PAYMENT]))
    approve(stack, login)
    login.tokens()
    login.authorize(authorization_details=json.dumps([PAYMENT]), prompt="none")
    assert error_of(login) == "interaction_required"
    login.authorize(authorization_details=json.dumps([PAYMENT]))
    assert confirm_state(login.page.text) == "pending"


def test_the_code_from_the_app_cannot_approve_a_transaction(stack):
    login = signed_in(stack)
    stack.nexus.knobs(outage=True)
    login.authorize(authorization_details=json.dumps([PAYMENT]))
    assert confirm_state(login.page.text) == "push_unavailable"
    page = login.go(login.url.replace("/login/confirm", "/login/totp"))
    assert 'data-problem="transaction_needs_push"' in page.text
    assert 'id="code"' not in page.text
    login.go(login.url, "POST", data={"code": stack.nexus.totp("phone-malee")})
    assert not login.returned


def test_an_answer_over_other_details_is_refused(stack):
    login = signed_in(stack)
    login.authorize(authorization_details=json.dumps([PAYMENT]))
    pushed = stack.nexus.wait_for_push("phone-malee")
    challenge = stack.deps.challenges.get(pushed["id"])
    phone = stack.nexus.phone("phone-malee")
    other = [{**CONFIRMED, "amount": {"value": "9125000.50", "currency": "THB"}}]
    forged = sign_answer(phone, challenge_id=challenge.id, nonce=challenge.nonce,
                         authorization_details=other, decision="approve",
                         number=challenge.number)  # fmt: skip
    url = f"{stack.idp}/mfa/answers"
    answer = requests.post(url, json={"answer": forged}, timeout=10,
                           headers={"DPoP": dpop_proof(phone, method="POST", url=url)})  # fmt: skip
    assert answer.status_code == 400
    assert confirm_state(login.reload().text) == "pending"
    with stack.deps.sessions() as session:
        assert session.scalar(select(TransactionEvidence.id)) is None


@pytest.mark.parametrize(
    "details",
    [
        [{**PAYMENT, "type": "something_else"}],
        [{**PAYMENT, "amount": {"value": 125000.5, "currency": "THB"}}],
        [{**PAYMENT, "amount": {"value": "125000.50", "currency": "USD"}}],
        [{**PAYMENT, "note": "unknown field"}],
        [{**PAYMENT, "document_sha256": "sha256:" + "0" * 64}],
        [{**PAYMENT, "kind": " "}],
        [{key: value for key, value in PAYMENT.items() if key != "payee"}],
        # A trailing newline is no part of a document number or unit code.
        [{**PAYMENT, "document_number": "3100012345\n"}],
        [{**PAYMENT, "unit": "0000000001\n"}],
        [],
        {"type": "gfmis_payment_approval"},
    ],
)
def test_malformed_authorization_details_are_refused(stack, details):
    login = Login(stack, LoopbackBrowser(), "", requests.Response(), "")
    login.authorize(authorization_details=json.dumps(details))
    assert error_of(login) == "invalid_authorization_details"


def test_evidence_is_shown_only_to_its_client(stack):
    add_client(stack.deps, "other-app", secret="o" * 40)
    login = signed_in(stack)
    login.authorize(authorization_details=json.dumps([PAYMENT]))
    approve(stack, login)
    txn = login.id_token()["txn"]
    url = f"{stack.idp}/evidence/{txn}"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, auth=("demo-confidential", "wrong"), timeout=10).status_code == 401
    assert requests.get(url, auth=("other-app", "o" * 40), timeout=10).status_code == 404


def test_a_step_up_does_not_outlive_the_session_it_was_started_in(stack):
    # A stolen session cookie starts a payment approval: the password counts as given, since
    # the session it was given in is live. The owner notices and ends every session from the
    # account page. The push is still on the phone; if the owner is then talked into answering
    # it, no session and no code may come of it: the password was the ended session's.
    owner = signed_in(stack)
    thief = signed_in(stack)
    thief.authorize(authorization_details=json.dumps([PAYMENT]))
    assert confirm_state(thief.page.text) == "pending"
    csrf = form_fields(owner.go(f"{stack.idp}/account").text)["csrf_token"]
    owner.go(f"{stack.idp}/account/sessions/end", "POST", data={"csrf_token": csrf, "sid": "all"})
    assert "/signin" in signed_in_at(owner, "/account")
    pushed = stack.nexus.wait_for_push("phone-malee")
    stack.nexus.approve("phone-malee", pushed["id"], match_number(thief.page.text))
    thief.reload()
    assert not thief.returned
    assert thief.page.status_code == 400
    assert "/signin" in signed_in_at(thief, "/account")


def signed_in_at(login: Login, path: str) -> str:
    """Where the IdP sends this browser for ``path``: a sign-in page when no session is live."""
    answer = login.browser.request("GET", f"{login.stack.idp}{path}", timeout=10)
    return answer.headers.get("Location", "")
