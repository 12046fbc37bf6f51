"""The archive (issue 7): a document with both signatures exported as one bundle and checked
offline by `gfms-portal verify` against the IdP's keys and the phones' keys; any altered byte
of a signed part fails the check."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from joserfc import jws
from joserfc.jwk import ECKey

from gfms_portal.bundle import TrustAnchor
from gfms_portal.bundle import load_key_history
from gfms_portal.bundle import verify_bundle
from gfms_portal.cli import main
from tests.functional.test_gfms_portal import checked
from tests.functional.test_gfms_portal import portal  # noqa: F401 - the fixture
from tests.functional.test_gfms_portal import user
from tests.portal_stack import CLIENT_ID
from tests.portal_stack import PortalStack
from tests.servers import ROOT

PDF = b"%PDF-1.4\n% receipts of the trip to Chiang Mai\n"


@pytest.fixture
def bundle(portal: PortalStack, tmp_path: Path) -> Path:  # noqa: F811
    url = checked(portal, files={"files": ("receipt.pdf", PDF, "application/pdf")})
    user(portal, "malee").approve(url, "approve-1")
    prasert = user(portal, "prasert")
    prasert.approve(url, "approve-2")
    assert 'id="export"' in prasert.page.text
    exported = prasert.go(f"{url}/bundle.json")
    assert exported.status_code == 200
    assert exported.headers["Content-Disposition"].startswith("attachment")
    path = tmp_path / "bundle.json"
    path.write_bytes(exported.content)
    # The IdP's key history, as an auditor obtains it from the IdP (not from the bundle).
    (tmp_path / "jwks.json").write_text(
        requests.get(f"{portal.stack.idp}/jwks/history.json", timeout=10).text
    )
    (tmp_path / "issuer").write_text(portal.stack.idp)
    return path


def verify(
    path: Path, capsys: pytest.CaptureFixture[str], *, jwks: Path | None = None,
    client_id: str = CLIENT_ID,
) -> tuple[int, str]:  # fmt: skip
    """``gfms-portal verify`` with the trust anchor on the command line."""
    issuer = (path.parent / "issuer").read_text()
    with pytest.raises(SystemExit) as exited:
        main(["verify", str(path), "--jwks", str(jwks or path.parent / "jwks.json"),
              "--issuer", issuer, "--client-id", client_id])  # fmt: skip
    return int(exited.value.code or 0), capsys.readouterr().out


def verify_exported(
    running: PortalStack, content: bytes, folder: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    """Write an exported file, the IdP's key history (from the IdP itself, never the copy in
    the file) and its issuer, and run ``gfms-portal verify`` on them."""
    path = folder / "bundle.json"
    path.write_bytes(content)
    (folder / "jwks.json").write_text(
        requests.get(f"{running.stack.idp}/jwks/history.json", timeout=10).text
    )
    (folder / "issuer").write_text(running.stack.idp)
    return verify(path, capsys)


def trust_of(path: Path) -> TrustAnchor:
    keys = load_key_history(json.loads((path.parent / "jwks.json").read_text()))
    return TrustAnchor(issuer=(path.parent / "issuer").read_text(), client_id=CLIENT_ID,
                       keys=keys)  # fmt: skip


def test_an_exported_bundle_verifies_offline(bundle, capsys):
    data = json.loads(bundle.read_text())
    assert [s["action"] for s in data["signatures"]] == ["claim", "check", "approve-1",
                                                         "approve-2"]  # fmt: skip
    assert base64.b64decode(data["attachments"][0]["content"]) == PDF
    code, out = verify(bundle, capsys)
    assert code == 0, out
    assert out.strip().endswith("OK")
    for action in ("claim", "check", "approve-1", "approve-2"):
        assert f"{action} by" in out
    # Also as a module, as an auditor would run it, the trust anchor from its configuration.
    env = {**os.environ, "PORTAL_ISSUER": (bundle.parent / "issuer").read_text(),
           "PORTAL_CLIENT_ID": CLIENT_ID}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "gfms_portal", "verify", str(bundle),
                           "--jwks", str(bundle.parent / "jwks.json")], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def _flip(text: str, at: int) -> str:
    char = text[at]
    other = "1" if char != "1" else "2"
    if char.isalpha():
        other = "B" if char != "B" else "C"
    return text[:at] + other + text[at + 1 :]


@pytest.mark.parametrize(
    ("where", "tail"),
    [
        ('"value": "12', False),  # the amount (the document's comes first: keys are sorted)
        ('"payee": "', False),
        ('"description": "', False),
        ('"name": "', False),  # the recorder's name
        ('"sha256": "', False),  # an attachment's hash
        ('"content": "', False),  # an attachment's bytes
        ('"txn_hash": "', False),  # the details' hash in the evidence
        ('"confirmed_at": "', False),
        ('"number": "', False),
        ('"signed_answer": "', True),  # the phone's signature
        ('"access_token": "', True),  # the IdP's signature
    ],
)
def test_any_altered_byte_of_a_signed_part_fails(bundle, capsys, tmp_path, where, tail):
    text = bundle.read_text(encoding="utf-8")
    at = text.index(where) + len(where) + 2
    if tail:  # inside the signature at the end of a compact JWS
        at = text.index('"', at) - 5
    tampered = tmp_path / "tampered.json"
    tampered.write_text(_flip(text, at), encoding="utf-8")
    assert tampered.read_bytes() != bundle.read_bytes()
    code, out = verify(tampered, capsys)
    assert code == 1, out
    assert out.strip().endswith("FAIL")


def test_a_confirmation_signed_by_another_key_fails_even_when_it_verifies(bundle, capsys):
    """Evidence re-signed by a key of one's own is consistent in itself; the IdP's token names
    the phone key and the signed answer it stood for, so it still fails."""
    data = json.loads(bundle.read_text())
    evidence = data["signatures"][0]["evidence"]
    forger = ECKey.generate_key("P-256")
    payload = jws.extract_compact(evidence["signed_answer"].encode()).payload
    header = {"alg": "ES256", "typ": "nexus-answer+jwt"}
    evidence["signed_answer"] = jws.serialize_compact(header, payload, forger)
    evidence["device"]["jwk"] = forger.as_dict(private=False)
    bundle.write_text(json.dumps(data))
    code, out = verify(bundle, capsys)
    assert code == 1
    assert "binding" in out


def test_keys_found_in_the_bundle_are_never_trusted(bundle):
    assert not verify_bundle(bundle.read_bytes(), trust=None).ok


def test_a_key_given_twice_is_refused(bundle, tmp_path):
    text = bundle.read_text()
    doubled = text.replace('"format":', '"format": "x", "format":', 1)
    assert not verify_bundle(doubled.encode(), trust=trust_of(bundle)).ok


def test_a_document_on_its_way_is_listed_and_fails_when_all_are_required(bundle, capsys):
    data = json.loads(bundle.read_text())
    data["signatures"] = data["signatures"][:2]  # claimed and checked, not yet approved
    bundle.write_text(json.dumps(data))
    code, out = verify(bundle, capsys)
    assert code == 0, out
    assert "not signed yet by approve-1, approve-2" in out
    issuer = (bundle.parent / "issuer").read_text()
    with pytest.raises(SystemExit) as exited:
        main(["verify", str(bundle), "--jwks", str(bundle.parent / "jwks.json"),
              "--issuer", issuer, "--client-id", CLIENT_ID, "--complete"])  # fmt: skip
    assert exited.value.code == 1
    assert capsys.readouterr().out.strip().endswith("FAIL")
