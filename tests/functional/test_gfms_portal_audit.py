"""Oversight of the archive (issue 13; กค 0402.2/ว 3 ข้อ 3-4): a read-only auditor view of the
units in scope with each signature's verification status and who signed when, and an export of
a period's bundles in one file that `gfms-portal verify` checks."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
import requests
from sqlalchemy import update

from gfms_portal.documents import Draft
from gfms_portal.documents import Person
from gfms_portal.documents import record_document
from gfms_portal.models import Signature
from tests.functional.test_gfms_portal import CLAIMANT
from tests.functional.test_gfms_portal import ROLES
from tests.functional.test_gfms_portal import checked
from tests.functional.test_gfms_portal import portal_with
from tests.functional.test_gfms_portal import user
from tests.functional.test_gfms_portal_archive import verify
from tests.portal_stack import PortalStack
from tests.portal_stack import error_code

OTHER_UNIT = "0000000002"
# auditor1 reads the unit everyone here works in; malee also audits another unit.
AUDITORS = {"auditor1": ["0000000001"], "malee": [OTHER_UNIT]}


@pytest.fixture
def portal(settings, deps, tmp_path) -> Iterator[PortalStack]:
    with portal_with(settings, deps, tmp_path, (*ROLES, CLAIMANT, "auditor1"),
                     auditors=AUDITORS) as running:  # fmt: skip
        yield running


@pytest.fixture
def archived(portal) -> dict[str, str]:
    """One request with its four signatures in the unit, and one of another unit."""
    url = checked(portal)
    user(portal, "malee").approve(url, "approve-1")
    prasert = user(portal, "prasert")
    prasert.approve(url, "approve-2")
    number = prasert.page.text.split('id="number">', 1)[1].split("<", 1)[0]
    with portal.app.extensions["portal"].sessions.begin() as db:
        other = record_document(
            db, Person(sub="x", name="คนอื่น", roles=(), username="kon", unit=OTHER_UNIT),
            Draft("training", "700", "สถาบันอื่น", "", OTHER_UNIT), [],
            now=datetime.now(UTC), max_bytes=1024,
        )  # fmt: skip
        other_number = str(other.number)
    return {"number": number, "other": other_number}


def _row(html: str, number: str) -> str:
    found = re.search(rf'<tr data-number="{re.escape(number)}".*?</tr>', html, re.S)
    return found.group(0) if found else ""


def test_the_auditor_reads_the_units_in_scope_with_each_signatures_status(portal, archived):
    auditor = user(portal, "auditor1")
    assert 'id="audit"' in auditor.page.text
    auditor.go(f"{portal.url}/audit")
    assert auditor.page.status_code == 200
    row = _row(auditor.page.text, archived["number"])
    for action in ("claim", "check", "approve-1", "approve-2"):
        assert f'data-action="{action}" data-verified="yes"' in row
    assert "ตรวจสอบลายมือชื่อถูกต้อง" in row
    assert "สมชาย" in row  # who signed (the test users' names), and when
    assert str(datetime.now(UTC).year + 10) in row  # kept until
    assert _row(auditor.page.text, archived["other"]) == ""  # another unit: out of scope
    # Read-only: no form that changes anything (only the period export, a GET).
    main = auditor.page.text.split("<main>", 1)[1]
    assert 'method="post"' not in main
    # A signature altered in the archive shows as not verifying.
    with portal.app.extensions["portal"].sessions.begin() as db:
        db.execute(update(Signature).where(Signature.action == "check")
                   .values(access_token="x.y.z"))  # fmt: skip
    row = _row(auditor.go(f"{portal.url}/audit").text, archived["number"])
    assert 'data-action="check" data-verified="no"' in row
    assert 'data-action="claim" data-verified="yes"' in row


def test_an_auditor_of_another_unit_sees_only_that_unit(portal, archived):
    malee = user(portal, "malee")
    malee.go(f"{portal.url}/audit")
    assert _row(malee.page.text, archived["other"]) != ""
    assert _row(malee.page.text, archived["number"]) == ""


def test_only_auditors_read_the_archive(portal, archived):
    somchai = user(portal, "somchai")
    assert 'id="audit"' not in somchai.page.text
    for path in ("/audit", "/audit/export?start=2026-01-01&end=2026-12-31"):
        somchai.go(f"{portal.url}{path}")
        assert somchai.page.status_code == 403
        assert error_code(somchai.page.text) == "not_allowed"


def test_the_export_of_a_period_verifies_offline(portal, archived, tmp_path, capsys):
    auditor = user(portal, "auditor1")
    today = datetime.now(UTC).astimezone().date()
    start, end = (today - timedelta(days=1)).isoformat(), (today + timedelta(days=1)).isoformat()
    exported = auditor.go(f"{portal.url}/audit/export?start={start}&end={end}")
    assert exported.status_code == 200
    assert exported.headers["Content-Disposition"].startswith("attachment")
    data = exported.json()
    assert data["units"] == ["0000000001"]
    assert [b["document"]["number"] for b in data["bundles"]] == [archived["number"]]
    path = tmp_path / "export.json"
    path.write_bytes(exported.content)
    # The key history from the IdP itself, never the copy in the file.
    (tmp_path / "jwks.json").write_text(
        requests.get(f"{portal.stack.idp}/jwks/history.json", timeout=10).text
    )
    (tmp_path / "issuer").write_text(portal.stack.idp)
    code, out = verify(path, capsys)
    assert code == 0, out
    assert "export of 1 bundle(s)" in out
    # One altered byte in one bundle fails the whole export.
    path.write_text(path.read_text().replace('"payee": "นาย', '"payee": "นาง', 1))
    code, out = verify(path, capsys)
    assert code == 1
    # Another period holds nothing; a malformed one is refused.
    before = (today - timedelta(days=40)).isoformat()
    assert auditor.go(f"{portal.url}/audit/export?start={before}&end={before}").json()[
        "bundles"] == []  # fmt: skip
    auditor.go(f"{portal.url}/audit/export?start={end}&end={start}")
    assert auditor.page.status_code == 400


def test_another_units_auditor_exports_nothing_of_this_unit(portal, archived):
    malee = user(portal, "malee")
    data = malee.go(f"{portal.url}/audit/export?start=2020-01-01&end=2099-12-31").json()
    assert data["units"] == [OTHER_UNIT]
    assert data["bundles"] == []  # the other unit's request was never signed
