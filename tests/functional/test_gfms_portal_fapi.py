"""The GFMS portal as a FAPI 2.0 client (issue 16): every sign-in and approval pushed and
redeemed with private_key_jwt and a DPoP proof, so its access tokens are bound to its key; and
an approval sent to the approver's phone through CIBA (poll mode), signed and archived exactly
as a browser confirmation is."""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy import update

from gfms_portal.models import PhoneApproval
from gfms_portal.models import Signature
from gfms_portal.names import UNKNOWN
from idp.audit.models import AuditEvent
from idp.deps import build_deps
from tests.functional.test_gfms_portal import CLAIMANT
from tests.functional.test_gfms_portal import ROLES
from tests.functional.test_gfms_portal import checked
from tests.functional.test_gfms_portal import portal  # noqa: F401 - the fixture
from tests.functional.test_gfms_portal import portal_with
from tests.functional.test_gfms_portal import stored
from tests.functional.test_gfms_portal import user
from tests.functional.test_gfms_portal_archive import verify_exported
from tests.portal_stack import CLIENT_ID
from tests.portal_stack import PortalStack
from tests.portal_stack import PortalUser
from tests.portal_stack import status_of


def audit(portal: PortalStack, name: str) -> list[AuditEvent]:  # noqa: F811
    with portal.stack.deps.sessions() as session:
        query = select(AuditEvent).where(AuditEvent.event == name,
                                         AuditEvent.client_id == CLIENT_ID)  # fmt: skip
        return list(session.scalars(query.order_by(AuditEvent.id)))


def claims_of(portal: PortalStack, token: str) -> dict:  # noqa: F811
    keys = KeySet.import_key_set(requests.get(f"{portal.stack.idp}/jwks.json", timeout=10).json())
    return dict(jwt.decode(token, keys, algorithms=["ES256", "RS256"]).claims)


def test_sign_in_and_approvals_are_pushed_and_their_tokens_dpop_bound(portal):  # noqa: F811
    url = checked(portal)
    user(portal, "malee").approve(url, "approve-1")

    # Every token request of the portal: private_key_jwt (the client has no other method)
    # and a DPoP proof of the portal's key.
    issued = audit(portal, "token.issued")
    assert len(issued) == 6  # three sign-ins, three approvals
    thumbprint = portal.app.extensions["portal"].idp.dpop_key.thumbprint()
    assert {event.details.get("dpop_jkt") for event in issued} == {thumbprint}
    assert not audit(portal, "client.authentication_failed")
    # The kept access token is bound to that key (RFC 9449 §6.1).
    access = claims_of(portal, stored(portal, Signature, action="approve-1").access_token)
    assert access["cnf"] == {"jkt": thumbprint}
    # The authorization requests were pushed (the fapi2 profile refuses any other).
    assert not audit(portal, "authorization.request_refused")


def due(portal: PortalStack, seconds: int = 6) -> None:  # noqa: F811
    """Let the polling interval pass, for the IdP (its clock) and for the portal."""
    portal.stack.deps.clock.advance(seconds)
    with portal.app.extensions["portal"].sessions() as db:
        db.execute(update(PhoneApproval).values(
            next_poll_at=datetime.now(UTC) - timedelta(seconds=1)))  # fmt: skip
        db.commit()


def send_to_phone(approver: PortalUser, url: str, action: str) -> None:
    approver.go(url)
    assert f'id="{action}-phone"' in approver.page.text
    approver.go(f"{url}/phone", "POST", data={"csrf": approver.csrf(), "action": action})
    assert 'id="phone-waiting"' in approver.page.text, approver.page.text[:800]


def test_an_approval_sent_to_the_phone_is_signed_kept_and_verifies(
    portal,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
):
    url = checked(portal)
    malee = user(portal, "malee")
    malee.go(url)
    found = re.search(r'id="number">([^<]+)<', malee.page.text)
    assert found
    number = found.group(1)
    send_to_phone(malee, url, "approve-1")
    waiting = malee.url
    assert f'id="binding-message">{number}<' in malee.page.text
    assert malee.page.headers["Refresh"]

    # The phone shows the document's number and the details, and asks for no number.
    pushed = portal.stack.nexus.wait_for_push("phone-malee")
    assert pushed["binding_message"] == number
    assert pushed["authorization_details"][0]["document_number"] == number

    # Polled before the interval: the portal does not ask the IdP (no slow_down earned).
    malee.go(waiting)
    assert 'id="phone-waiting"' in malee.page.text
    assert stored(portal, PhoneApproval).interval == 5
    due(portal)
    malee.go(waiting)  # pending
    assert 'id="phone-waiting"' in malee.page.text

    answer = requests.post(
        f"{portal.stack.nexus.url}/phones/phone-malee/challenges/{pushed['id']}/approve",
        json={}, timeout=15,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    due(portal)
    malee.go(waiting)
    assert status_of(malee.page.text) == "withdrawal_approved", malee.page.text[:800]
    assert 'id="notice"' in malee.page.text
    assert stored(portal, PhoneApproval).outcome == "signed"

    # Kept as a browser confirmation is: the evidence, the bound access token, the ID token.
    signature = stored(portal, Signature, action="approve-1")
    assert signature.evidence["client_id"] == CLIENT_ID
    # A CIBA ID token carries no names (no claims request there): userinfo's name is kept.
    assert signature.signer_name not in ("", UNKNOWN)
    assert signature.evidence["authorization_details"][0]["document_number"] == number
    access = claims_of(portal, signature.access_token)
    assert access["cnf"]["jkt"] == portal.app.extensions["portal"].idp.dpop_key.thumbprint()
    assert access["txn"] == signature.evidence["txn"]
    issued = audit(portal, "token.issued")[-1]
    assert issued.details["grant_type"] == "urn:openid:params:grant-type:ciba"

    # The waiting page again: nothing more happens.
    malee.go(waiting)
    assert status_of(malee.page.text) == "withdrawal_approved"
    assert len(audit(portal, "token.issued")) == 6  # three sign-ins, two steps, CIBA

    # The payment approval in the browser, then the bundle verifies offline.
    prasert = user(portal, "prasert")
    prasert.approve(url, "approve-2")
    exported = prasert.go(f"{url}/bundle.json")
    code, out = verify_exported(portal, exported.content, tmp_path, capsys)
    assert code == 0, out
    assert f"{number} approve-1 by" in out
    # The verifier records the key each token was bound to (cnf.jkt).
    assert f"token bound to key {access['cnf']['jkt']})" in out


def test_a_phone_that_declines_signs_nothing(portal):  # noqa: F811
    url = checked(portal)
    malee = user(portal, "malee")
    send_to_phone(malee, url, "approve-1")
    pushed = portal.stack.nexus.wait_for_push("phone-malee")
    assert portal.stack.nexus.deny("phone-malee", pushed["id"]).status_code == 200
    due(portal)
    malee.go(malee.url)
    assert status_of(malee.page.text) == "checked"
    assert "data-code" not in malee.page.text
    assert "ถูกปฏิเสธ" in malee.page.text  # declined on the phone, in Thai
    assert stored(portal, Signature, action="approve-1") is None


def test_a_phone_not_answered_in_time_signs_nothing(portal):  # noqa: F811
    url = checked(portal)
    malee = user(portal, "malee")
    send_to_phone(malee, url, "approve-1")
    portal.stack.nexus.wait_for_push("phone-malee")
    # Past the request's expires_in (the portal's own clock: the IdP's cannot move that far
    # without the portal's client assertions expiring too).
    with portal.app.extensions["portal"].sessions() as db:
        db.execute(update(PhoneApproval).values(
            expires_at=datetime.now(UTC) - timedelta(seconds=1)))  # fmt: skip
        db.commit()
    malee.go(malee.url)
    assert status_of(malee.page.text) == "checked"
    assert "หมดเวลารอการยืนยันบนโทรศัพท์" in malee.page.text
    malee.go(malee.url + "&lang=en")
    assert "not answered in time" in malee.page.text
    assert stored(portal, Signature, action="approve-1") is None


def test_someone_elses_waiting_page_is_not_found(portal):  # noqa: F811
    url = checked(portal)
    malee = user(portal, "malee")
    send_to_phone(malee, url, "approve-1")
    prasert = user(portal, "prasert")
    prasert.go(malee.url)
    assert prasert.page.status_code == 404


def test_the_portal_follows_the_idps_dpop_nonces(
    settings, pg_engine, redis_store, clock, clean_state, tmp_path
):
    # RFC 9449 §8-9: with nonces required, the first proof is refused with use_dpop_nonce
    # and the nonce to use; the portal tries once more with it, at /token and at userinfo.
    strict = settings.model_copy(update={"dpop_nonce_required": True})
    deps = build_deps(strict, clock=clock, store=redis_store, engine=pg_engine)
    with portal_with(strict, deps, tmp_path, (*ROLES, CLAIMANT)) as running:
        idp = running.app.extensions["portal"].idp
        assert idp._dpop_nonce is None  # nothing asked of the IdP yet
        claimant = user(running, CLAIMANT)  # no sign-in without the nonce in the proofs
        assert 'id="who"' in claimant.page.text, claimant.page.text[:500]
        assert len(audit(running, "token.issued")) == 1
        assert idp._dpop_nonce is not None
