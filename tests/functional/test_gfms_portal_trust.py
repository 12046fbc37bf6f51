"""The archive's trust anchor (issue 13): the verifier takes issuer, key history, client and
roles from whoever runs it, never from the bundle; each token is checked against the IdP's key
that signed when it was issued, so a genuine bundle outlives key rotations."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from joserfc import jws
from joserfc import jwt
from joserfc.jwk import ECKey

from gfms_portal.bundle import FORMAT
from gfms_portal.bundle import archived_evidence
from gfms_portal.documents import build_authorization_details
from gfms_portal.documents import document_sha256
from idp.oidc.keys import SUPPORTED_ALGS
from idp.oidc.keys import retire_expired
from idp.oidc.keys import rotate_keys
from tests.functional.test_gfms_portal import CLAIMANT
from tests.functional.test_gfms_portal import ROLES
from tests.functional.test_gfms_portal import checked
from tests.functional.test_gfms_portal import portal_with
from tests.functional.test_gfms_portal import user
from tests.functional.test_gfms_portal_archive import verify
from tests.nexus_server import match_number
from tests.portal_stack import PortalStack
from tests.push_stack import Login

OUTSIDERS = ("anong", "boonmee")  # bound phones, accounts of the unit, no role anywhere


@pytest.fixture
def portal(settings, deps, tmp_path) -> Iterator[PortalStack]:
    with portal_with(settings, deps, tmp_path, (*ROLES, CLAIMANT, *OUTSIDERS)) as running:
        yield running


def _history(portal: PortalStack) -> dict[str, Any]:
    return dict(requests.get(f"{portal.stack.idp}/jwks/history.json", timeout=10).json())


def _anchor(portal: PortalStack, folder: Path) -> None:
    """What an auditor gets from the IdP itself: its issuer and its key history."""
    (folder / "jwks.json").write_text(json.dumps(_history(portal)))
    (folder / "issuer").write_text(portal.stack.idp)


def _genuine_bundle(portal: PortalStack, folder: Path) -> Path:
    url = checked(portal)
    user(portal, "malee").approve(url, "approve-1")
    prasert = user(portal, "prasert")
    prasert.approve(url, "approve-2")
    path = folder / "bundle.json"
    path.write_bytes(prasert.go(f"{url}/bundle.json").content)
    _anchor(portal, folder)
    return path


# --- the key history ------------------------------------------------------------------------


def test_discovery_names_the_key_history_and_it_lists_each_signing_key_with_its_period(portal):
    metadata = requests.get(f"{portal.stack.idp}/.well-known/openid-configuration", timeout=10)
    uri = metadata.json()["signing_key_history_uri"]
    assert uri == f"{portal.stack.idp}/jwks/history.json"
    history = requests.get(uri, timeout=10).json()
    published = {k["kid"] for k in requests.get(f"{portal.stack.idp}/jwks.json",
                                                timeout=10).json()["keys"]}  # fmt: skip
    # The keys that sign now (one per algorithm), never the next keys that have not signed;
    # keys of earlier rotations (other tests share the key table) carry the end of their period.
    signing = {k["kid"] for k in history["keys"] if "signed_until" not in k}
    assert len(signing) == len(SUPPORTED_ALGS)
    assert signing < published
    for key in history["keys"]:
        assert key["signed_from"].endswith("Z")
        if "signed_until" in key:
            assert key["signed_until"].endswith("Z")
            assert key["signed_until"] > key["signed_from"]
        assert "d" not in key  # public parts only


def _rotate_and_retire(portal: PortalStack) -> None:
    deps = portal.stack.deps
    with deps.sessions.begin() as session:
        rotate_keys(session, deps.cipher, now=deps.clock.now(), overlap=deps.settings.key_overlap,
                    algs=SUPPORTED_ALGS, force=True)  # fmt: skip
    deps.clock.advance(deps.settings.key_overlap + 1)
    with deps.sessions.begin() as session:
        retire_expired(session, now=deps.clock.now(), overlap=deps.settings.key_overlap)
    deps.keyring.reload()


def test_a_genuine_bundle_still_verifies_after_the_key_is_rotated_and_retired(
    portal, tmp_path, capsys
):
    bundle = _genuine_bundle(portal, tmp_path)
    old = {k["kid"] for k in _history(portal)["keys"]}
    _rotate_and_retire(portal)
    current = {k["kid"] for k in requests.get(f"{portal.stack.idp}/jwks.json",
                                              timeout=10).json()["keys"]}  # fmt: skip
    assert not old & current  # the old keys left the JWKS
    history = _history(portal)["keys"]
    retired = [k for k in history if k["kid"] in old]
    assert len(retired) == len(old)
    assert all("signed_until" in k for k in retired)
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": history}))
    code, out = verify(bundle, capsys)
    assert code == 0, out
    assert out.strip().endswith("OK")
    # The current JWKS alone no longer knows the key that signed.
    (tmp_path / "current.json").write_text(json.dumps({"keys": [
        k for k in requests.get(f"{portal.stack.idp}/jwks.json", timeout=10).json()["keys"]
    ]}))  # fmt: skip
    code, out = verify(bundle, capsys, jwks=tmp_path / "current.json")
    assert code == 1
    assert "not in the IdP's key history" in out


def test_a_token_signed_by_a_key_outside_its_period_fails(portal, tmp_path, capsys):
    bundle = _genuine_bundle(portal, tmp_path)
    history = _history(portal)
    for key in history["keys"]:
        key["signed_from"] = "2099-01-01T00:00:00Z"  # after every token of the bundle
    (tmp_path / "jwks.json").write_text(json.dumps(history))
    code, out = verify(bundle, capsys)
    assert code == 1
    assert "outside the period it signed in" in out


def test_a_token_signed_by_a_key_not_in_the_history_fails(portal, tmp_path, capsys):
    bundle = _genuine_bundle(portal, tmp_path)
    data = json.loads(bundle.read_text())
    signature = data["signatures"][0]
    claims = jwt.decode(signature["access_token"], _any_key(portal)).claims
    forger = ECKey.generate_key("P-256", parameters={"kid": "forged"})
    signature["access_token"] = jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": "forged"},
                                           claims, forger)  # fmt: skip
    bundle.write_text(json.dumps(data))
    code, out = verify(bundle, capsys)
    assert code == 1
    assert "signed by key forged, which is not in the IdP's key history" in out


def _any_key(portal: PortalStack) -> Any:
    from joserfc.jwk import KeySet

    return KeySet.import_key_set(
        {"keys": [{k: v for k, v in key.items() if not k.startswith("signed_")}
                  for key in _history(portal)["keys"]]}
    )  # fmt: skip


def test_a_bundle_names_its_signers_from_their_id_tokens(portal, tmp_path, capsys):
    bundle = _genuine_bundle(portal, tmp_path)
    data = json.loads(bundle.read_text())
    assert data["format"] == FORMAT
    names = [s["signer"]["name"] for s in data["signatures"]]
    assert all(names)
    assert all(s["rule"].startswith("กค 0402.2/ว 3") for s in data["signatures"])
    code, out = verify(bundle, capsys)
    assert code == 0, out
    for name in names:
        assert f"by {name} (" in out


# --- the attack: role-less people confirm made-up details through another client ------------

ATTACK = {
    "number": "0001-2569-999999",
    "type": "travel",
    "unit": "0000000001",
    "amount": {"value": "9999999.00", "currency": "THB"},
    "payee": "Attacker Co., Ltd.",
    "description": "",
    "recorder": {"sub": "nobody", "name": "nobody"},
    "claimant": {"username": "anong"},
    "created_at": "2026-12-01T00:00:00+00:00",
    "attachments": [],
}


def _confirm_through_demo_confidential(portal: PortalStack, username: str,
                                       action: str) -> dict[str, Any]:  # fmt: skip
    """As the attacker did: sign in to demo-confidential asking to confirm the made-up
    details, approve on one's own phone, redeem the code and fetch the evidence."""
    stack = portal.stack
    details = build_authorization_details(ATTACK, action)
    login = Login.start(stack, username, authorization_details=json.dumps(details))
    phone = f"phone-{username}"
    pushed = stack.nexus.wait_for_push(phone)
    assert stack.nexus.approve(phone, pushed["id"], match_number(login.page.text)).status_code \
        == 200  # fmt: skip
    login.reload()
    tokens = login.tokens()
    txn = jwt.decode(tokens["access_token"], _any_key(portal)).claims["txn"]
    evidence = requests.get(f"{stack.idp}/evidence/{txn}", timeout=10,
                            auth=("demo-confidential", "demo-confidential-secret"))  # fmt: skip
    assert evidence.status_code == 200, evidence.text
    return {
        "action": action,
        "access_token": tokens["access_token"],
        "id_token": tokens["id_token"],
        "evidence": archived_evidence(evidence.json()),
    }


@pytest.fixture
def forged(portal, tmp_path) -> Path:
    signatures = [_confirm_through_demo_confidential(portal, "anong", "approve-1"),
                  _confirm_through_demo_confidential(portal, "boonmee", "approve-2")]  # fmt: skip
    bundle = {"format": FORMAT, "issuer": portal.stack.idp, "client_id": "demo-confidential",
              "document": ATTACK, "document_sha256": document_sha256(ATTACK),
              "attachments": [], "signatures": signatures}  # fmt: skip
    path = tmp_path / "forged.json"
    path.write_text(json.dumps(bundle))
    _anchor(portal, tmp_path)
    return path


def test_role_less_signers_through_another_client_fail_verification(forged, capsys):
    """The bundle is consistent in itself (every signature genuine, every hash right) and
    printed OK while the verifier took issuer and client from it; with the portal's client
    from the trust anchor it fails, naming why."""
    code, out = verify(forged, capsys)
    assert code == 1
    assert out.strip().endswith("FAIL")
    assert "approve-1: confirmed through another client, not gfms-portal-test" in out
    assert "approve-2: confirmed through another client, not gfms-portal-test" in out


def test_role_less_signers_fail_even_for_the_client_they_used(forged, capsys):
    code, out = verify(forged, capsys, client_id="demo-confidential")
    assert code == 1
    assert "approve-1: the signer did not hold the approve-1 role in unit 0000000001" in out
    assert "approve-2: the signer did not hold the approve-2 role in unit 0000000001" in out


def test_the_bundle_cannot_choose_its_own_issuer(forged, capsys, tmp_path):
    data = json.loads(forged.read_text())
    data["issuer"] = "http://127.0.0.1:1"  # ignored either way
    forged.write_text(json.dumps(data))
    (tmp_path / "issuer").write_text("http://127.0.0.1:1")
    code, out = verify(forged, capsys, client_id="demo-confidential")
    assert code == 1
    assert "(iss" in out or "iss," in out


def test_evidence_resigned_by_the_attacker_does_not_help(forged, capsys):
    data = json.loads(forged.read_text())
    evidence = data["signatures"][0]["evidence"]
    key = ECKey.generate_key("P-256")
    payload = jws.extract_compact(evidence["signed_answer"].encode()).payload
    evidence["signed_answer"] = jws.serialize_compact(
        {"alg": "ES256", "typ": "nexus-answer+jwt"}, payload, key
    )
    evidence["device"]["jwk"] = key.as_dict(private=False)
    forged.write_text(json.dumps(data))
    code, out = verify(forged, capsys)
    assert code == 1
    assert "binding" in out
