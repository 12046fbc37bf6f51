"""The GFMS portal as a relying party (issue 7): sign-in through the IdP with the code flow
and PKCE, its own sessions ended by back-channel logout, role pages, recording, approvals
confirmed on the phone with device-signed evidence, separation of duties per document."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
from sqlalchemy import update

from idp.accounts.models import User
from tests.factories import PASSWORD
from tests.factories import add_client
from tests.functional.test_role_tokens import UNIT
from tests.functional.test_role_tokens import add_unit
from tests.functional.test_role_tokens import assign
from tests.nexus_server import match_number
from tests.portal_stack import CLIENT_ID
from tests.portal_stack import SECRET
from tests.portal_stack import PortalStack
from tests.portal_stack import PortalUser
from tests.portal_stack import error_code
from tests.portal_stack import portal_stack
from tests.portal_stack import status_of
from tests.push_stack import push_stack
from tests.rp import form_fields
from tests.servers import LoopbackBrowser

ROLES = {"somchai": "recorder", "malee": "approve-1", "prasert": "approve-2"}
CLAIMANT = "wichai"  # a civil servant of the unit with no GFMS role


@pytest.fixture
def portal(settings, deps, tmp_path) -> Iterator[PortalStack]:
    with portal_with(settings, deps, tmp_path, (*ROLES, CLAIMANT)) as running:
        yield running


@contextmanager
def portal_with(
    settings, deps, tmp_path, users: tuple[str, ...], **changes: Any
) -> Iterator[PortalStack]:
    """The portal next to the IdP; each user has a bound phone and an account of the unit,
    and the first three their roles there."""
    with push_stack(settings, deps, tmp_path, users=users) as stack:
        add_unit(stack.deps)
        with stack.deps.sessions.begin() as session:
            session.execute(update(User).where(User.username.in_(users)).values(unit_code=UNIT))
        for username, role in ROLES.items():
            assign(stack.deps, username, role)
        with portal_stack(stack, tmp_path, **changes) as running:
            yield running


def user(portal: PortalStack, username: str) -> PortalUser:
    person = PortalUser(portal, username)
    person.sign_in()
    return person


def claimed(portal: PortalStack, **fields: Any) -> str:
    """A request the claimant keyed in and signed on the phone: the URL of its page."""
    claimant = user(portal, CLAIMANT)
    url = claimant.record(**fields)
    claimant.approve(url, "claim")
    assert status_of(claimant.page.text) == "submitted", claimant.page.text[:800]
    return url


def checked(portal: PortalStack, **fields: Any) -> str:
    """... and the finance officer signed it as checked."""
    url = claimed(portal, **fields)
    officer = user(portal, "somchai")
    officer.approve(url, "check")
    assert status_of(officer.page.text) == "checked", officer.page.text[:800]
    return url


def test_sign_in_shows_the_roles_held_and_a_page_per_role(portal):
    somchai = user(portal, "somchai")
    assert 'data-role="recorder" data-unit="0000000001"' in somchai.page.text
    assert "ผู้บันทึก" in somchai.page.text  # Thai by default
    somchai.go(f"{portal.url}/roles/recorder?lang=en")
    assert "Recorder" in somchai.page.text
    somchai.go(f"{portal.url}/roles/approve-1")
    assert somchai.page.status_code == 403


def test_pages_need_a_session(portal):
    answer = requests.get(f"{portal.url}/documents", timeout=10)
    assert answer.status_code == 401
    assert 'id="login"' in answer.text


def test_a_recorder_records_a_request_shown_in_thai(portal):
    somchai = user(portal, "somchai")
    pdf = b"%PDF-1.4 receipts\n"
    url = somchai.record(files={"files": ("receipt.pdf", pdf, "application/pdf")})
    text = somchai.page.text
    assert status_of(text) == "recorded"
    assert "125,000.50 บาท" in text
    assert "ค่าใช้จ่ายในการเดินทางไปราชการ" in text
    assert "application/pdf" in text
    # Buddhist-era year on the page and in the number.
    import datetime as dt

    be_year = str(dt.datetime.now(dt.UTC).year + 543)
    assert be_year in text
    somchai.go(f"{url}?lang=en")
    assert "THB 125,000.50" in somchai.page.text


@pytest.mark.parametrize(
    ("field", "value"),
    [("amount", "-5"), ("amount", "1.234"), ("amount", "abc"), ("type", "lunch"), ("payee", " ")],
)
def test_bad_requests_are_refused(portal, field, value):
    somchai = user(portal, "somchai")
    somchai.go(f"{portal.url}/documents/new")
    data = {"csrf": somchai.csrf(), "unit": "0000000001", "type": "travel",
            "amount": "10", "payee": "x", field: value}  # fmt: skip
    somchai.go(f"{portal.url}/documents/new", "POST", data=data)
    assert somchai.page.status_code == 400
    assert error_code(somchai.page.text) == "invalid_document"


def test_an_attachment_is_recognised_by_its_bytes(portal):
    somchai = user(portal, "somchai")
    somchai.go(f"{portal.url}/documents/new")
    data = {"csrf": somchai.csrf(), "unit": "0000000001", "type": "travel",
            "amount": "10", "payee": "x"}  # fmt: skip
    files = {"files": ("receipt.pdf", b"MZ not a pdf", "application/pdf")}
    somchai.go(f"{portal.url}/documents/new", "POST", data=data, files=files)
    assert error_code(somchai.page.text) == "invalid_document"


def test_a_form_without_its_csrf_token_is_refused(portal):
    somchai = user(portal, "somchai")
    data = {"unit": "0000000001", "type": "travel", "amount": "1", "payee": "x"}
    somchai.go(f"{portal.url}/documents/new", "POST", data=data)
    assert error_code(somchai.page.text) == "csrf"


def test_both_approvals_are_confirmed_on_the_phones_and_signed(portal):
    url = checked(portal)
    malee = user(portal, "malee")
    malee.start_approval(url, "approve-1")
    # The IdP shows the details to approve; the phone gets and signs them.
    assert "125,000.50" in malee.page.text
    pushed = malee.confirm_on_phone()
    details = pushed["authorization_details"][0]
    assert details["actions"] == ["approve-1"]
    assert details["amount"] == {"value": "125000.50", "currency": "THB"}
    assert details["description"] == "เดินทางไปราชการ เชียงใหม่"
    assert len(details["document_sha256"]) == 64
    assert status_of(malee.page.text) == "withdrawal_approved"
    assert 'data-action="approve-1"' in malee.page.text

    prasert = user(portal, "prasert")
    prasert.approve(url, "approve-2")
    assert status_of(prasert.page.text) == "payment_approved"
    assert 'data-action="approve-2"' in prasert.page.text


def test_the_officer_who_checked_cannot_approve(portal, settings, deps):
    # somchai also holds approve-1 here, so only separation of duties stops him.
    assign(portal.stack.deps, "somchai", "approve-1")
    url = checked(portal)
    somchai = user(portal, "somchai")
    somchai.go(url)
    assert 'id="approve-1"' not in somchai.page.text
    somchai.start_approval(url, "approve-1")
    assert error_code(somchai.page.text) == "separation_of_duties"
    assert status_of(somchai.go(url).text) == "checked"


def test_one_person_never_gives_both_approvals(portal):
    # A unit's data that wrongly gives malee approve-2 as well (the IdP refuses to issue
    # both in one unit, so she acts with a token that holds only approve-2 the second time).
    url = checked(portal)
    malee = user(portal, "malee")
    malee.approve(url, "approve-1")
    assert status_of(malee.page.text) == "withdrawal_approved"
    from gfms_portal.documents import Person
    from gfms_portal.documents import check_may_sign
    from gfms_portal.errors import SeparationOfDutiesError
    from gfms_portal.models import Document

    with portal.app.app_context():
        db = portal.app.extensions["portal"].sessions()
        document = db.query(Document).one()
        acting = Person(sub=document.signatures[-1].signer_sub, name="malee",
                        roles=({"unit": "0000000001", "role": "approve-2"},))  # fmt: skip
        with pytest.raises(SeparationOfDutiesError):
            check_may_sign(document, acting, "approve-2")
        # ... nor as someone's substitute, nor for the one who gave the first approval.
        other = Person(sub="someone-else", name="x", roles=({"unit": "0000000001",
                       "role": "approve-2", "substitute_for": acting.sub},))  # fmt: skip
        with pytest.raises(SeparationOfDutiesError):
            check_may_sign(document, other, "approve-2")
        db.close()


def test_an_amount_changed_after_confirmation_is_refused(portal):
    somchai = user(portal, "somchai")
    url = somchai.record(claimant=CLAIMANT)  # keyed in for the claimant
    wichai = user(portal, CLAIMANT)
    wichai.start_approval(url, "claim")
    # While wichai's phone shows 125,000.50, the one who keyed it changes the amount.
    somchai.go(f"{url}/edit")
    somchai.go(f"{url}/edit", "POST", data={"csrf": somchai.csrf(), "type": "travel",
               "amount": "925000.50", "payee": "นายสมศักดิ์ เดินทาง"})  # fmt: skip
    assert "925,000.50" in somchai.page.text
    wichai.confirm_on_phone()
    assert wichai.page.status_code == 409
    assert error_code(wichai.page.text) == "confirmation_mismatch"
    assert status_of(somchai.go(url).text) == "recorded"


def test_a_second_callback_with_the_same_state_changes_nothing(portal):
    url = checked(portal)
    malee = user(portal, "malee")
    malee.start_approval(url, "approve-1")
    nexus = portal.stack.nexus
    pushed = nexus.wait_for_push(malee.phone)
    from tests.nexus_server import match_number

    nexus.approve(malee.phone, pushed["id"], match_number(malee.page.text))
    location = malee.url
    while not location.startswith(portal.url):
        response = malee.browser.request("GET", location, timeout=30)
        location = response.headers["Location"]
        if not location.startswith("http"):
            location = portal.stack.idp + location
    callback = location
    assert callback.startswith(f"{portal.url}/auth/callback")
    malee.go(callback)
    assert status_of(malee.page.text) == "withdrawal_approved"
    malee.go(callback)  # double submit
    assert error_code(malee.page.text) == "used"
    assert malee.go(url).text.count('data-action="approve-1"') == 1


def test_tampered_evidence_is_refused(portal, monkeypatch):
    from gfms_portal.idp_client import IdpClient

    original = IdpClient.get_evidence

    def tampered(self, txn):
        evidence = original(self, txn)
        head, body, sig = evidence["signed_answer"].split(".")
        flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
        return {**evidence, "signed_answer": f"{head}.{body}.{flipped}"}

    url = checked(portal)
    monkeypatch.setattr(IdpClient, "get_evidence", tampered)
    malee = user(portal, "malee")
    malee.approve(url, "approve-1")
    assert error_code(malee.page.text) == "evidence_invalid"
    assert status_of(malee.go(url).text) == "checked"


def test_back_channel_logout_ends_the_portal_session(portal):
    malee = user(portal, "malee")
    # She signs out at the IdP itself (another tab): the IdP tells the portal.
    malee.go(f"{portal.stack.idp}/logout")
    malee.submit({"decision": "logout"})
    assert portal.notices() >= 1
    malee.go(f"{portal.url}/documents")
    assert malee.page.status_code == 401


def test_signing_out_of_the_portal_signs_out_at_the_idp(portal):
    malee = user(portal, "malee")
    malee.go(f"{portal.url}/auth/logout", "POST", data={"csrf": malee.csrf()})
    assert malee.url.rstrip("/") == portal.url
    assert 'id="login"' in malee.page.text
    # The IdP session is gone too: the next sign-in asks for the password again.
    malee.go(f"{portal.url}/auth/login")
    assert 'id="password"' in malee.page.text


def test_forged_and_foreign_logout_tokens_are_refused(portal):
    for token in ("", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzaWQiOiJ4In0."):
        answer = requests.post(f"{portal.url}/auth/backchannel-logout",
                               data={"logout_token": token}, timeout=10)  # fmt: skip
        assert answer.status_code == 400


def test_the_api_checks_bearer_tokens(portal):
    from joserfc import jwt
    from joserfc.jwk import ECKey

    answer = requests.get(f"{portal.url}/api/documents", timeout=10)
    assert answer.status_code == 401
    forged = jwt.encode({"alg": "ES256", "typ": "at+jwt"}, {"iss": portal.stack.idp},
                        ECKey.generate_key("P-256"))  # fmt: skip
    answer = requests.get(f"{portal.url}/api/documents", timeout=10,
                          headers={"Authorization": f"Bearer {forged}"})  # fmt: skip
    assert answer.status_code == 401


def test_the_idp_down_gives_a_clear_page_and_loses_nothing(portal):
    somchai = user(portal, "somchai")
    url = somchai.record()
    portal.app.extensions["portal"].idp.issuer  # noqa: B018
    client = portal.app.extensions["portal"].idp
    saved = client._metadata
    client._metadata = None
    client.issuer = "http://127.0.0.1:9"  # nothing listens there
    try:
        somchai.go(f"{portal.url}/auth/login")
        assert somchai.page.status_code == 503
        assert error_code(somchai.page.text) == "idp_unavailable"
    finally:
        client.issuer, client._metadata = portal.stack.idp, saved
    assert status_of(somchai.go(url).text) == "recorded"


def security_event(portal: PortalStack, sub: str, *, audience: str = CLIENT_ID) -> str:
    deps = portal.stack.deps
    return deps.signer.issue_security_event(
        client_id=audience, sub=sub, jti="j1", txn="t1", now=deps.clock.now(),
        event_type="https://schemas.openid.net/secevent/caep/event-type/session-revoked",
        event={"event_timestamp": 0, "initiating_entity": "admin"}, alg="ES256",
    )  # fmt: skip


def push_event(portal: PortalStack, token: str) -> requests.Response:
    return requests.post(f"{portal.url}/auth/security-events", data=token, timeout=10,
                         headers={"Content-Type": "application/secevent+jwt"})  # fmt: skip


def test_a_caep_session_revoked_event_ends_the_users_portal_sessions(portal):
    malee = user(portal, "malee")
    sub = sub_of(portal, "malee")
    assert push_event(portal, security_event(portal, sub, audience="demo-confidential")
                      ).status_code == 400  # fmt: skip
    malee.go(f"{portal.url}/documents")
    assert malee.page.status_code == 200
    assert push_event(portal, security_event(portal, sub)).status_code == 202
    malee.go(f"{portal.url}/documents")
    assert malee.page.status_code == 401


def sub_of(portal: PortalStack, username: str) -> str:
    from sqlalchemy import select

    from idp.accounts.models import User

    with portal.stack.deps.sessions() as session:
        return str(session.scalar(select(User.sub).where(User.username == username)))


def test_production_refuses_the_demo_secrets():
    from pydantic import ValidationError

    from gfms_portal.settings import PortalSettings

    with pytest.raises(ValidationError):
        PortalSettings(production=True)
    with pytest.raises(ValidationError):
        PortalSettings(production=True, client_secret="x" * 40)
    assert PortalSettings(production=True, client_secret="x" * 40, secret_key="y" * 40).production


def stored(portal: PortalStack, model, **where):
    from sqlalchemy import select

    with portal.app.extensions["portal"].sessions() as db:
        return db.scalars(select(model).filter_by(**where)).first()


def api(portal: PortalStack, token: str) -> requests.Response:
    return requests.get(f"{portal.url}/api/documents", timeout=10,
                        headers={"Authorization": f"Bearer {token}"})  # fmt: skip


def test_the_api_takes_the_idps_access_tokens_and_nothing_else(portal, monkeypatch):
    from gfms_portal.models import PortalSession
    from gfms_portal.models import Signature
    from tests.functional.test_role_tokens import confirmed_login

    url = checked(portal)
    user(portal, "malee").approve(url, "approve-1")
    # The portal's own tokens are DPoP-bound (fapi2): no bearer tokens, even at its own API.
    bound = stored(portal, Signature, action="approve-1").access_token
    assert api(portal, bound).status_code == 401
    # An unbound access token for the portal's audience (the client registered for
    # client_credentials meanwhile) is a bearer token.
    add_client(portal.stack.deps, CLIENT_ID, secret=SECRET, redirect_uris=[],
               grant_types=["client_credentials"], scope="openid")  # fmt: skip
    issued = requests.post(f"{portal.stack.idp}/token", auth=(CLIENT_ID, SECRET), timeout=10,
                           data={"grant_type": "client_credentials"})  # fmt: skip
    access_token = issued.json()["access_token"]
    answer = api(portal, access_token)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"documents": []}  # no roles in a client's own token
    # An ID token is not an access token (typ), even with the right audience.
    assert api(portal, stored(portal, PortalSession, ended_at=None).id_token).status_code == 401
    # A token for another client.
    other = confirmed_login(portal.stack, "malee").tokens()["access_token"]
    assert api(portal, other).status_code == 401
    # The same good token, five minutes and more later.
    later = time.time() + 400
    monkeypatch.setattr("gfms_portal.web.time.time", lambda: later)
    assert api(portal, access_token).status_code == 401


def test_logout_tokens_for_another_client_or_without_the_event_are_refused(portal):
    deps = portal.stack.deps
    malee = user(portal, "malee")
    from gfms_portal.models import PortalSession

    sid = stored(portal, PortalSession, ended_at=None).sid
    sub = sub_of(portal, "malee")

    def logout_token(audience: str) -> str:
        return deps.signer.issue_logout_token(client_id=audience, sub=sub, sid=sid, jti="j",
                                              now=deps.clock.now(), alg="ES256")  # fmt: skip

    def post(token: str) -> int:
        return requests.post(f"{portal.url}/auth/backchannel-logout",
                             data={"logout_token": token}, timeout=10).status_code  # fmt: skip

    assert post(logout_token("demo-confidential")) == 400
    id_token = stored(portal, PortalSession, ended_at=None).id_token
    assert post(id_token) == 400  # an ID token is no logout token
    malee.go(f"{portal.url}/documents")
    assert malee.page.status_code == 200
    assert post(logout_token(CLIENT_ID)) == 200
    malee.go(f"{portal.url}/documents")
    assert malee.page.status_code == 401
    # A login finishing later with that IdP session gets no portal session.
    from gfms_portal.models import RevokedSid

    assert stored(portal, RevokedSid, sid=sid) is not None


def test_a_login_started_in_another_browser_is_refused(portal):
    """Login CSRF: an attacker's own finished login, its callback sent to a victim, must not
    sign the victim's browser in as the attacker."""
    attacker = PortalUser(portal, "malee")
    attacker.go(f"{portal.url}/auth/login")
    attacker.submit({"username": "malee", "password": PASSWORD})
    pushed = portal.stack.nexus.wait_for_push("phone-malee")
    portal.stack.nexus.approve("phone-malee", pushed["id"], match_number(attacker.page.text))
    response = attacker.browser.request("GET", attacker.url, timeout=30)
    while not response.headers.get("Location", "").startswith(portal.url):
        location = response.headers["Location"]
        url = location if location.startswith("http") else portal.stack.idp + location
        response = attacker.browser.request("GET", url, timeout=30)
    callback = response.headers["Location"]
    victim = LoopbackBrowser()
    refused = victim.request("GET", callback, timeout=30)
    assert refused.status_code == 400
    assert victim.request("GET", f"{portal.url}/", timeout=30).text.count("/auth/logout") == 0
    # The browser that started it is signed in with the very same answer.
    assert attacker.browser.request("GET", callback, timeout=30).status_code in (302, 303)


def test_only_its_own_recorder_corrects_a_request(portal):
    """Another recorder of the unit (who may also approve there) cannot rewrite the request and
    then approve it as if someone else had recorded it."""
    assign(portal.stack.deps, "malee", "recorder")
    url = user(portal, "somchai").record()
    malee = user(portal, "malee")
    malee.go(f"{url}/edit")
    changed = malee.go(f"{url}/edit", "POST", data={"csrf": malee.csrf(), "type": "travel",
                       "amount": "1.00", "payee": "ญาติของมาลี"})  # fmt: skip
    assert changed.status_code == 403
    assert "ญาติของมาลี" not in malee.go(url).text


def test_a_link_cannot_make_a_page_say_anything(portal):
    page = requests.get(f"{portal.url}/", params={"notice": "บัญชีถูกล็อก โทร 02-000-0000"},
                        timeout=10)  # fmt: skip
    assert "02-000-0000" not in page.text
    assert 'id="notice"' in requests.get(f"{portal.url}/", params={"notice": "logged_out"},
                                         timeout=10).text  # fmt: skip


def test_the_same_form_sent_twice_records_one_request(portal):
    somchai = user(portal, "somchai")
    form = somchai.go(f"{portal.url}/documents/new")
    data = {**form_fields(form.text), "unit": "0000000001", "type": "training",
            "amount": "3500.00", "payee": "สถาบันฝึกอบรม"}  # fmt: skip
    first = somchai.go(f"{portal.url}/documents/new", "POST", data=data)
    first_url = somchai.url.split("?")[0]
    again = somchai.go(f"{portal.url}/documents/new", "POST", data=data)
    assert (first.status_code, again.status_code) == (200, 200)
    assert somchai.url.split("?")[0] == first_url
    report = somchai.go(f"{portal.url}/documents").text
    assert report.count("สถาบันฝึกอบรม") == 1
