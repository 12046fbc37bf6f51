"""Internal audit over HTTP (ข้อ ๘): the audit trail's page, API and CSV for CGD and auditors,
an auditor scoped to a unit or a province who never sees another unit's events, filters by
who, what, when and unit, and the hash chain's status."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime

import pytest
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import update

from idp.accounts.models import User
from idp.audit.models import AuditEvent
from idp.audit.service import NO_CONTEXT
from idp.audit.service import record
from idp.audit.service import seal_pending
from idp.roles.authority import SYSTEM
from idp.roles.authority import grant_admin_role
from idp.roles.models import AdminRole
from tests.functional.test_admin_api import call
from tests.functional.test_admin_api import token_of
from tests.functional.test_admin_console import STAFF
from tests.functional.test_admin_console import UNIT
from tests.functional.test_admin_console import console
from tests.functional.test_admin_console import set_up_office
from tests.push_stack import Stack
from tests.push_stack import push_stack

OTHER_UNIT = "0000000002"
AUDITORS = ("auditor1", "auditor2", "auditor3")
# 1 Dec 2026 at 09.30 and 3 Dec 2026 at 23.30 in Thailand.
DAY_1 = datetime(2026, 12, 1, 2, 30, tzinfo=UTC)
DAY_3 = datetime(2026, 12, 3, 16, 30, tzinfo=UTC)


def set_up_audit(deps) -> dict[str, str]:
    """Auditors (everywhere, of UNIT, of the province เชียงใหม่) and a few events of each
    unit: naming the unit, or about a person of the unit."""
    now = deps.clock.now()
    with deps.sessions.begin() as session:
        people = {u.username: u for u in session.scalars(select(User))}
        people["somchai"].unit_code = UNIT
        people["prasert"].unit_code = OTHER_UNIT
        scopes = (("auditor1", {}), ("auditor2", {"unit_code": UNIT}),
                  ("auditor3", {"province": "เชียงใหม่"}))  # fmt: skip
        for username, scope in scopes:
            grant_admin_role(session, SYSTEM, people[username], AdminRole.AUDITOR, now=now,
                             actor="test", audit=NO_CONTEXT, **scope)  # fmt: skip
        grant_admin_role(session, SYSTEM, people["admin"], AdminRole.CGD_ADMIN, now=now,
                         actor="test", audit=NO_CONTEXT)  # fmt: skip
        head = people["head1"].sub
        record(session, "roles.designation_submitted", now=DAY_1, actor=head, unit=UNIT,
               order_number="ours")  # fmt: skip
        record(session, "roles.designation_submitted", now=DAY_1, actor="someone", unit=OTHER_UNIT,
               order_number="theirs")  # fmt: skip
        record(session, "login.failed", now=DAY_3, outcome="failure",
               user=people["prasert"].sub, marker="prasert-failed")  # fmt: skip
        record(session, "login.failed", now=DAY_3, outcome="failure",
               user=people["somchai"].sub, marker="somchai-failed")  # fmt: skip
        # A value a spreadsheet would run as a formula.
        record(session, "roles.unit_created", now=DAY_3, actor="=HYPERLINK(\"http://x\")",
               unit=UNIT, marker="formula")  # fmt: skip
    return {name: people[name].sub for name in ("somchai", "prasert", "head1")}


@pytest.fixture
def stack(settings, deps, tmp_path) -> Iterator[Stack]:
    with push_stack(settings, deps, tmp_path, users=STAFF + AUDITORS + ("admin",)) as running:
        set_up_office(running.deps)
        set_up_audit(running.deps)
        yield running


def events(stack: Stack, token: str, **params: str) -> list[dict]:
    answer = call(stack, token, "GET", "/audit/events", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()["events"]


def markers(found: list[dict]) -> set[str]:
    return {e["details"].get("marker") or e["details"].get("order_number") for e in found} - {None}


def test_a_unit_scoped_auditor_never_sees_another_units_events(stack):
    """The attack: an auditor of one unit asks for another unit's events, or a person of it."""
    token = token_of(stack, "auditor2")
    seen = markers(events(stack, token))
    assert seen == {"ours", "somchai-failed", "formula"}
    assert events(stack, token, unit=OTHER_UNIT) == []
    assert events(stack, token, who="prasert") == []
    assert markers(events(stack, token, event="login.failed")) == {"somchai-failed"}
    exported = call(stack, token, "GET", "/audit/events.csv", params={"unit": OTHER_UNIT})
    assert "theirs" not in exported.text
    assert "prasert-failed" not in exported.text
    everything = call(stack, token, "GET", "/audit/events.csv").text
    assert "theirs" not in everything
    assert "prasert-failed" not in everything
    assert "somchai-failed" in everything


def test_a_province_scoped_auditor_sees_that_provinces_units(stack):
    token = token_of(stack, "auditor3")
    assert markers(events(stack, token)) == {"theirs", "prasert-failed"}


def test_the_global_auditor_and_cgd_see_everything_others_nothing(stack):
    assert markers(events(stack, token_of(stack, "auditor1"))) >= {
        "ours", "theirs", "prasert-failed", "somchai-failed", "formula",
    }  # fmt: skip
    assert "theirs" in markers(events(stack, token_of(stack, "admin")))
    for outsider in ("head1", "treasury1"):
        refused = call(stack, token_of(stack, outsider), "GET", "/audit/events")
        assert (refused.status_code, refused.json()["error"]) == (403, "forbidden")
    assert call(stack, None, "GET", "/audit/events").status_code == 401


def test_filters_by_who_what_when_and_unit(stack):
    token = token_of(stack, "auditor1")
    assert markers(events(stack, token, who="head1")) == {"ours"}
    assert markers(events(stack, token, who="nobody-at-all")) == set()
    assert markers(events(stack, token, event="roles.", to="2/12/2569")) == {"ours", "theirs"}
    # Both days included, in Thailand's time, typed in the Buddhist era (Thai digits too).
    assert markers(events(stack, token, event="login.failed", **{"from": "๓/๑๒/๒๕๖๙"})) == {
        "prasert-failed", "somchai-failed",
    }  # fmt: skip
    assert markers(events(stack, token, **{"from": "4/12/2569"})) == set()
    assert markers(events(stack, token, unit=OTHER_UNIT)) == {"theirs", "prasert-failed"}
    for bad in ({"from": "31/2/2569"}, {"event": "drop table"}, {"before": "x"}):
        refused = call(stack, token, "GET", "/audit/events", params=bad)
        assert (refused.status_code, refused.json()["error"]) == (400, "invalid_filter")


def test_the_csv_export_opens_in_a_spreadsheet_and_is_itself_audited(stack):
    token = token_of(stack, "auditor2")
    answer = call(stack, token, "GET", "/audit/events.csv", params={"unit": UNIT})
    assert answer.headers["Content-Type"].startswith("text/csv")
    assert answer.headers["Content-Disposition"].startswith("attachment")
    body = answer.content.decode("utf-8")
    assert body.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(body.removeprefix("\ufeff"))))
    formula = next(r for r in rows if "formula" in r["details"])
    assert formula["actor"].startswith("'=")  # not a formula to Excel
    ours = next(r for r in rows if "ours" in r["details"])
    assert ours["occurred_at_thai"] == "1 ธ.ค. 2569 09.30 น."
    assert ours["description"] == "มีการยื่นคำสั่งเกี่ยวกับหน้าที่"
    with stack.deps.sessions() as session:
        exported = session.scalars(
            select(AuditEvent).where(AuditEvent.event == "audit.trail_exported")
        ).all()
    assert [e.details["scope"] for e in exported] == [[UNIT]]


def test_the_page_shows_sentences_names_thai_time_and_the_chain(stack):
    with stack.deps.sessions.begin() as session:
        seal_pending(session)
    login = console(stack, "auditor2", "/admin/audit")
    page = login.page.text
    assert 'data-intact="yes"' in page
    assert "มีการยื่นคำสั่งเกี่ยวกับหน้าที่" in page
    assert "1 ธ.ค. 2569 09.30 น." in page
    assert "theirs" not in page
    assert 'id="trail-scope"' in page
    filtered = login.go(f"{stack.idp}/admin/audit", params={"from": "31/2/2569"})
    assert filtered.status_code == 400
    assert 'id="filter-error"' in filtered.text


def test_a_broken_chain_is_shown_as_broken(stack):
    with stack.deps.sessions.begin() as session:
        seal_pending(session)
    with stack.deps.sessions.begin() as session:
        session.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        session.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(actor="mallory"))
        session.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))
    chain = call(stack, token_of(stack, "auditor1"), "GET", "/audit/events").json()["chain"]
    assert (chain["intact"], chain["broken_at_seq"]) == (False, 2)


def test_heads_and_treasury_offices_cannot_open_the_page(stack):
    login = console(stack, "head1")
    refused = login.go(f"{stack.idp}/admin/audit")
    assert refused.status_code == 403
    assert 'id="audit-trail"' not in refused.text
