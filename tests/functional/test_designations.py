"""Designation requests on PostgreSQL: who may ask and decide, the written order, substitutes,
separation of duties (also under two approvals racing), and nothing half-applied."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from datetime import date
from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlalchemy import select

from idp.accounts.models import User
from idp.audit.models import AuditEvent
from idp.audit.service import NO_CONTEXT
from idp.deps import build_deps
from idp.roles import errors
from idp.roles.assignments import held_roles
from idp.roles.authority import SYSTEM
from idp.roles.authority import authority_of
from idp.roles.authority import grant_admin_role
from idp.roles.designations import Designation
from idp.roles.designations import approve_request
from idp.roles.designations import assign_directly
from idp.roles.designations import order_file
from idp.roles.designations import reject_request
from idp.roles.designations import submit_request
from idp.roles.models import AdminRole
from idp.roles.models import DesignationRequest
from idp.roles.models import RequestStatus
from idp.roles.models import RoleAssignment
from idp.roles.orders import accept_order
from idp.roles.periods import thai_date
from idp.roles.units import create_unit
from idp.store.db import make_engine
from idp.store.migrate import upgrade
from tests.factories import make_user

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
UNIT, OTHER_UNIT = "0000000001", "0000000002"


class Office:
    """Two units in two provinces, their heads, a treasury administrator of the first
    province, a CGD administrator, and staff of the first unit."""

    def __init__(self, deps) -> None:
        self.deps = deps
        self.now = deps.clock.now()
        self.today = thai_date(self.now)
        with deps.sessions.begin() as session:
            for code, province in ((UNIT, "นนทบุรี"), (OTHER_UNIT, "เชียงใหม่")):
                create_unit(session, SYSTEM, code=code, name_th=f"หน่วย {code}", province=province,
                            treasury_office=f"สำนักงานคลังจังหวัด{province}", now=self.now,
                            actor="test", audit=NO_CONTEXT)  # fmt: skip
            for name in ("head1", "head2", "treasury1", "treasury2", "admin", "auditor1",
                         "somchai", "malee", "prasert", "wichai"):  # fmt: skip
                make_user(session, deps, name)
            self._grant(session, "head1", AdminRole.HEAD_OF_UNIT, unit_code=UNIT)
            self._grant(session, "head2", AdminRole.HEAD_OF_UNIT, unit_code=OTHER_UNIT)
            self._grant(session, "treasury1", AdminRole.TREASURY_ADMIN, province="นนทบุรี")
            self._grant(session, "treasury2", AdminRole.TREASURY_ADMIN, province="เชียงใหม่")
            self._grant(session, "admin", AdminRole.CGD_ADMIN)
            self._grant(session, "auditor1", AdminRole.AUDITOR)

    def _grant(self, session, username, role, **scope) -> None:
        user = session.scalar(select(User).where(User.username == username))
        grant_admin_role(session, SYSTEM, user, role, now=self.now, actor="test",
                         audit=NO_CONTEXT, **scope)  # fmt: skip

    def user(self, session, username: str) -> User:
        return session.scalar(select(User).where(User.username == username))

    def submit(self, by: str = "head1", content: bytes = PDF, **fields) -> str:
        designation = Designation(
            **{
                "unit_code": UNIT,
                "username": "malee",
                "role": "approve-1",
                "valid_from": self.today,
                "valid_until": None,
                "order_number": "คส. 12/2569",
                "order_date": self.today,
                **fields,
            }
        )
        with self.deps.sessions.begin() as session:
            submitter = self.user(session, by)
            request = submit_request(
                session, authority_of(session, submitter.id), designation,
                accept_order("order.pdf", content, max_bytes=1 << 20),
                submitter=submitter, now=self.now, audit=NO_CONTEXT,
            )  # fmt: skip
            return request.id

    def approve(self, request_id: str, by: str = "treasury1") -> RoleAssignment | None:
        with self.deps.sessions.begin() as session:
            decider = self.user(session, by)
            return approve_request(
                session, authority_of(session, decider.id), request_id, decider=decider,
                reason="ตามคำสั่ง", now=self.now, audit=NO_CONTEXT,
            ).assignment  # fmt: skip

    def designate(self, username: str, role: str, **fields) -> RoleAssignment | None:
        return self.approve(self.submit(username=username, role=role, **fields))

    def roles_of(self, username: str, day: date | None = None) -> list[tuple[str, str]]:
        with self.deps.sessions() as session:
            user = self.user(session, username)
            return [(h.unit, h.role) for h in held_roles(session, user.id, day or self.today)]

    def must_change_password(self) -> list[str]:
        with self.deps.sessions() as session:
            return list(session.scalars(select(User.username).where(User.must_change_password)))

    def count(self, model) -> int:
        with self.deps.sessions() as session:
            return session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def office(deps) -> Office:
    return Office(deps)


def test_an_approved_designation_gives_the_role_forces_a_password_change_and_is_audited(office):
    request_id = office.submit(note="แต่งตั้งแทนผู้เกษียณ")
    assert office.roles_of("malee") == []  # asking changes nothing
    assignment = office.approve(request_id)
    assert office.roles_of("malee") == [(UNIT, "approve-1")]
    assert assignment.request_id == request_id
    assert office.must_change_password() == ["malee"]
    with office.deps.sessions() as session:
        request = session.get(DesignationRequest, request_id)
        assert request.status == RequestStatus.APPROVED
        assert order_file(session, request_id) == PDF
        events = {
            e.event: e.details
            for e in session.scalars(select(AuditEvent).where(AuditEvent.event.like("roles.%")))
        }

    digest = hashlib.sha256(PDF).hexdigest()
    assert events["roles.designation_submitted"]["order_sha256"] == digest
    approved = events["roles.designation_approved"]
    assert approved["order_sha256"] == digest
    assert approved["reason"] == "ตามคำสั่ง"
    assert (approved["role"], approved["unit"]) == ("approve-1", UNIT)


def test_a_designation_starting_later_gives_nothing_until_then(office):
    start = office.today + timedelta(days=10)
    office.designate("malee", "approve-1", valid_from=start, valid_until=start + timedelta(days=5))
    assert office.roles_of("malee") == []
    assert office.roles_of("malee", start) == [(UNIT, "approve-1")]
    assert office.roles_of("malee", start + timedelta(days=6)) == []


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"<html><script>alert(1)</script></html>", errors.OrderFileError),  # disguised as .pdf
        (b"MZ\x90\x00" + b"\x00" * 100, errors.OrderFileError),  # a program named order.pdf
        (b"%PDF-1.4\n(cut short", errors.OrderFileError),  # an incomplete PDF
        (b"", errors.OrderFileError),
        (b"%PDF-1.4\n" + b"0" * (1 << 20) + b"%%EOF", errors.OrderTooLargeError),
    ],
)
def test_the_order_must_be_a_real_pdf_or_image_within_the_size_limit(office, content, error):
    with pytest.raises(error):
        office.submit(content=content)
    assert office.count(DesignationRequest) == 0


def test_images_are_accepted_by_their_bytes():
    png = accept_order("scan.PNG", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, max_bytes=1000)
    jpeg = accept_order("C:\\scans\\order.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 20, max_bytes=1000)
    assert (png.media_type, jpeg.media_type, jpeg.filename) == (
        "image/png",
        "image/jpeg",
        "order.jpg",
    )


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"unit_code": "9999999999"}, errors.UnknownUnitError),
        ({"username": "nobody"}, errors.UnknownPersonError),
        ({"role": "approve-3"}, errors.UnknownRoleError),
        ({"valid_until": date(2020, 1, 1)}, errors.InvalidPeriodError),
        ({"order_number": "  "}, errors.InvalidOrderError),
        ({"unit_code": OTHER_UNIT}, errors.NotAllowedError),  # head1 asks for another unit
        ({"substitute_for": "malee"}, errors.SubstituteError),  # for oneself
        ({"substitute_for": "prasert"}, errors.SubstituteError),  # who holds no such role
        ({"username": "mal\x00ee"}, errors.UnknownPersonError),
        ({"order_number": "12\x00/2569"}, errors.InvalidOrderError),
    ],
)
def test_bad_requests_get_a_clear_error_and_leave_nothing(office, fields, error):
    """Each refusal names what to fix; nothing is stored."""
    with pytest.raises(error) as raised:
        office.submit(**fields)
    assert raised.value.message
    assert office.count(DesignationRequest) == 0


def test_thai_digits_in_a_unit_code_are_read_as_digits(office):
    request_id = office.submit(unit_code="๐๐๐๐๐๐๐๐๐๑")
    with office.deps.sessions() as session:
        assert session.get(DesignationRequest, request_id).unit_code == UNIT


def test_overlapping_designations_of_one_role_are_refused(office):
    office.designate("malee", "approve-1", valid_until=office.today + timedelta(days=30))
    with pytest.raises(errors.OverlappingDesignationError):
        office.submit(valid_from=office.today + timedelta(days=30))
    office.submit(valid_from=office.today + timedelta(days=31))  # the day after is fine


def test_approve_1_and_approve_2_are_never_the_same_person(office):
    office.designate("malee", "approve-1")
    with pytest.raises(errors.SeparationOfDutiesError) as raised:
        office.submit(role="approve-2")
    assert raised.value.roles == ("approve-1", "approve-2")
    # In another unit the rule does not apply (a CGD administrator designates there).
    office.submit(by="admin", unit_code=OTHER_UNIT, role="approve-2")


def test_separation_of_duties_holds_for_overlapping_periods_only(office):
    office.designate("malee", "approve-1", valid_until=office.today + timedelta(days=9))
    with pytest.raises(errors.SeparationOfDutiesError):
        office.submit(role="approve-2", valid_from=office.today + timedelta(days=9))
    office.submit(role="approve-2", valid_from=office.today + timedelta(days=10))


def test_a_substitute_acts_only_within_the_period_of_the_person_acted_for(office):
    office.designate("prasert", "approve-2", valid_until=office.today + timedelta(days=10))
    with pytest.raises(errors.SubstituteError):
        office.submit(username="wichai", role="approve-2", substitute_for="prasert",
                      valid_until=office.today + timedelta(days=11))  # fmt: skip
    with pytest.raises(errors.SubstituteError):
        office.submit(username="wichai", role="approve-2", substitute_for="prasert")  # open end
    office.submit(username="wichai", role="approve-2", substitute_for="prasert",
                  valid_until=office.today + timedelta(days=10))  # fmt: skip


def test_an_approval_needs_a_reason(office):
    request_id = office.submit()
    with office.deps.sessions.begin() as session:
        decider = office.user(session, "treasury1")
        authority = authority_of(session, decider.id)
        with pytest.raises(errors.ReasonRequiredError):
            approve_request(session, authority, request_id, decider=decider, reason="  ",
                            now=office.now, audit=NO_CONTEXT)  # fmt: skip
    assert office.roles_of("malee") == []


def test_separation_of_duties_holds_for_substitutes(office):
    office.designate("prasert", "approve-2")
    office.designate("malee", "approve-1")
    # malee may not act for prasert as approve-2 while she is approve-1 herself...
    with pytest.raises(errors.SeparationOfDutiesError):
        office.submit(role="approve-2", substitute_for="prasert")
    # ...and a substitute approve-2 may not be made approve-1 either.
    office.designate("wichai", "approve-2", substitute_for="prasert",
                     valid_until=office.today + timedelta(days=14))  # fmt: skip
    with pytest.raises(errors.SeparationOfDutiesError):
        office.submit(username="wichai", role="approve-1")
    assert ("0000000001", "approve-2") in office.roles_of("wichai")


def test_a_rule_checked_at_submission_is_checked_again_at_approval(office):
    first = office.submit(role="approve-1")
    second = office.submit(role="approve-2")  # allowed to ask: nothing held yet
    office.approve(first)
    with pytest.raises(errors.SeparationOfDutiesError):
        office.approve(second)
    with office.deps.sessions() as session:
        assert session.get(DesignationRequest, second).status == RequestStatus.PENDING
    assert office.roles_of("malee") == [(UNIT, "approve-1")]
    assert office.must_change_password() == ["malee"]


def test_who_may_decide(office):
    request_id = office.submit()
    for reader in ("head1", "auditor1"):  # may read it, may not decide it
        with pytest.raises(errors.NotAllowedError):
            office.approve(request_id, by=reader)
    for outsider in ("treasury2", "head2", "somchai"):  # for them it does not exist
        with pytest.raises(errors.UnknownRequestError):
            office.approve(request_id, by=outsider)
    office.approve(request_id, by="admin")  # CGD decides everywhere


def test_nobody_decides_their_own_request_or_one_about_themselves(office):
    own = office.submit(by="admin", username="somchai", role="recorder")
    with pytest.raises(errors.OwnRequestError):
        office.approve(own, by="admin")
    about_treasury = office.submit(username="treasury1", role="recorder")
    with pytest.raises(errors.OwnRequestError):
        office.approve(about_treasury, by="treasury1")
    office.approve(about_treasury, by="admin")
    # Nor one naming them as the person acted for.
    acting_for_treasury = office.submit(username="wichai", role="recorder",
                                        substitute_for="treasury1")  # fmt: skip
    with pytest.raises(errors.OwnRequestError):
        office.approve(acting_for_treasury, by="treasury1")


def test_a_decided_request_cannot_be_decided_again(office):
    request_id = office.submit()
    office.approve(request_id)
    with pytest.raises(errors.AlreadyDecidedError):
        office.approve(request_id, by="admin")
    with office.deps.sessions.begin() as session:
        admin = office.user(session, "admin")
        authority = authority_of(session, admin.id)
        with pytest.raises(errors.AlreadyDecidedError):
            reject_request(session, authority, request_id, decider=admin, reason="late",
                           now=office.now, audit=NO_CONTEXT)  # fmt: skip
    assert office.count(RoleAssignment) == 1


def test_a_rejection_needs_a_reason_and_changes_nothing(office):
    request_id = office.submit()
    with office.deps.sessions.begin() as session:
        decider = office.user(session, "treasury1")
        authority = authority_of(session, decider.id)
        with pytest.raises(errors.ReasonRequiredError):
            reject_request(session, authority, request_id, decider=decider, reason=" ",
                           now=office.now, audit=NO_CONTEXT)  # fmt: skip
        reject_request(session, authority, request_id, decider=decider,
                       reason="คำสั่งไม่ได้ลงนาม", now=office.now, audit=NO_CONTEXT)  # fmt: skip
    with office.deps.sessions() as session:
        request = session.get(DesignationRequest, request_id)
        assert (request.status, request.decision_reason) == ("rejected", "คำสั่งไม่ได้ลงนาม")
    assert office.roles_of("malee") == []
    assert office.must_change_password() == []


def test_direct_assignments_keep_the_same_rules(office):
    with office.deps.sessions.begin() as session:
        malee = office.user(session, "malee")
        assign_directly(session, unit_code=UNIT, user=malee, role="approve-1",
                        valid_from=office.today, now=office.now, actor="test", reason="seed",
                        audit=NO_CONTEXT)  # fmt: skip
    with office.deps.sessions.begin() as session, pytest.raises(errors.SeparationOfDutiesError):
        assign_directly(session, unit_code=UNIT, user=office.user(session, "malee"),
                        role="approve-2", valid_from=office.today, now=office.now, actor="test",
                        reason="seed", audit=NO_CONTEXT)  # fmt: skip


@pytest.fixture
def sqlite_office(settings, redis_store, clock, tmp_path) -> Iterator[Office]:
    """The embedded demo's database: SQLite, which has no row locks."""
    url = f"sqlite:///{tmp_path / 'idp.sqlite3'}"
    engine = make_engine(url)
    upgrade(engine)
    local = settings.model_copy(update={"database_url": url})
    yield Office(build_deps(local, clock=clock, store=redis_store, engine=engine))
    engine.dispose()


@pytest.mark.parametrize("database", ["office", "sqlite_office"])
def test_two_approvals_racing_cannot_break_separation_of_duties(request, database):
    """Both requests pass every check alone; approved at the same moment by two people on two
    connections, exactly one may win (PostgreSQL row locks; SQLite's database write lock)."""
    office = request.getfixturevalue(database)
    for attempt in range(4):
        username = f"racer{attempt}"
        with office.deps.sessions.begin() as session:
            make_user(session, office.deps, username)
        first = office.submit(username=username, role="approve-1")
        second = office.submit(username=username, role="approve-2")
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def approve(
            request_id: str, by: str, barrier: threading.Barrier = barrier,
            outcomes: list[str] = outcomes,
        ) -> None:  # fmt: skip
            with office.deps.sessions.begin() as session:
                decider = office.user(session, by)
                authority = authority_of(session, decider.id)
                barrier.wait()
                try:
                    approve_request(session, authority, request_id, decider=decider,
                                    reason="race", now=office.now, audit=NO_CONTEXT)  # fmt: skip
                    outcomes.append("approved")
                except errors.SeparationOfDutiesError:
                    outcomes.append("refused")

        threads = [threading.Thread(target=approve, args=(first, "treasury1")),
                   threading.Thread(target=approve, args=(second, "admin"))]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(outcomes) == ["approved", "refused"]
        assert len(office.roles_of(username)) == 1


# --- orders that end a role or change one for another ---------------------------------------


def assignments_of(office: Office, username: str) -> list[RoleAssignment]:
    with office.deps.sessions() as session:
        user = office.user(session, username)
        return list(session.scalars(
            select(RoleAssignment).where(RoleAssignment.user_id == user.id)
            .order_by(RoleAssignment.created_at, RoleAssignment.role)
        ))  # fmt: skip


def approved_events(office: Office) -> list[dict]:
    with office.deps.sessions() as session:
        return [e.details for e in session.scalars(
            select(AuditEvent).where(AuditEvent.event == "roles.designation_approved")
            .order_by(AuditEvent.id)
        )]  # fmt: skip


def test_an_order_ends_a_role_from_a_day_with_the_same_checks_and_trail(office):
    office.designate("malee", "approve-1", valid_from=office.today - timedelta(days=30))
    day = office.today + timedelta(days=5)
    request_id = office.submit(kind="end", valid_from=day, order_number="คส. 99/2569")
    assert office.roles_of("malee") == [(UNIT, "approve-1")]  # asking changes nothing
    with pytest.raises(errors.NotAllowedError):
        office.approve(request_id, by="head1")  # the head asks; the treasury office decides
    assert office.approve(request_id) is None  # an end starts nothing
    assert office.roles_of("malee", day - timedelta(days=1)) == [(UNIT, "approve-1")]
    assert office.roles_of("malee", day) == []
    (kept,) = assignments_of(office, "malee")
    assert kept.valid_until == day - timedelta(days=1)
    assert kept.ended_at is None  # history stays: who held the role until when
    assert "คส. 99/2569" in kept.end_reason
    assert "malee" in office.must_change_password()
    event = approved_events(office)[-1]
    assert (event["kind"], event["role"], event["effective_from"]) == (
        "end",
        "approve-1",
        day.isoformat(),
    )
    assert event["ended"] == [kept.id]
    assert event["order_sha256"] == hashlib.sha256(PDF).hexdigest()


def test_an_end_dated_in_the_past_takes_effect_today_and_keeps_the_days_held(office):
    office.designate("malee", "approve-1", valid_from=office.today - timedelta(days=30))
    office.approve(office.submit(kind="end", valid_from=office.today - timedelta(days=10)))
    assert office.roles_of("malee") == []
    assert office.roles_of("malee", office.today - timedelta(days=1)) == [(UNIT, "approve-1")]


def test_an_end_before_the_role_begins_cancels_it(office):
    start = office.today + timedelta(days=10)
    office.designate("malee", "approve-1", valid_from=start)
    office.approve(office.submit(kind="end", valid_from=office.today + timedelta(days=3)))
    (cancelled,) = assignments_of(office, "malee")
    assert cancelled.ended_at is not None
    assert office.roles_of("malee", start) == []


def test_nothing_to_end_is_refused_when_asked_and_when_approved(office):
    with pytest.raises(errors.NothingToEndError):
        office.submit(kind="end")  # malee holds nothing
    office.designate("malee", "approve-1")
    first = office.submit(kind="end")
    second = office.submit(kind="end", order_number="คส. 13/2569")
    office.approve(first)
    with pytest.raises(errors.NothingToEndError):
        office.approve(second)  # ended meanwhile: checked again under the unit's lock
    with office.deps.sessions() as session:
        assert session.get(DesignationRequest, second).status == RequestStatus.PENDING


def test_a_change_moves_approve_1_to_approve_2_in_one_approval(office):
    office.designate("malee", "approve-1", valid_from=office.today - timedelta(days=30))
    with pytest.raises(errors.SeparationOfDutiesError):
        office.submit(role="approve-2")  # a plain designation still may not overlap
    request_id = office.submit(kind="change", ends_role="approve-1", role="approve-2")
    started = office.approve(request_id)
    assert started is not None
    assert (started.role, started.valid_from, started.request_id) == (
        "approve-2",
        office.today,
        request_id,
    )
    assert office.roles_of("malee") == [(UNIT, "approve-2")]
    assert office.roles_of("malee", office.today - timedelta(days=1)) == [(UNIT, "approve-1")]
    assert office.must_change_password() == ["malee"]
    event = approved_events(office)[-1]
    assert (event["kind"], event["ends_role"], event["role"]) == (
        "change",
        "approve-1",
        "approve-2",
    )


def test_a_change_keeps_separation_of_duties_on_the_result(office):
    office.designate("malee", "approve-1")
    office.designate("malee", "recorder")
    # Giving up the recorder role does not free her to approve payments: approve-1 stays.
    with pytest.raises(errors.SeparationOfDutiesError):
        office.submit(kind="change", ends_role="recorder", role="approve-2")
    # A change to a role she already holds overlaps it.
    with pytest.raises(errors.OverlappingDesignationError):
        office.submit(kind="change", ends_role="recorder", role="approve-1")
    assert sorted(office.roles_of("malee")) == [(UNIT, "approve-1"), (UNIT, "recorder")]


def test_a_change_checked_at_submission_is_checked_again_at_approval(office):
    office.designate("malee", "recorder")
    change = office.submit(kind="change", ends_role="recorder", role="approve-2")
    office.designate("malee", "approve-1")  # approved in between
    with pytest.raises(errors.SeparationOfDutiesError):
        office.approve(change)
    assert sorted(office.roles_of("malee")) == [(UNIT, "approve-1"), (UNIT, "recorder")]


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"kind": "promote"}, errors.UnknownOrderKindError),
        ({"kind": "change", "ends_role": "approve-1"}, errors.SameRoleChangeError),
        ({"kind": "change", "ends_role": "boss"}, errors.UnknownRoleError),
        ({"kind": "change"}, errors.UnknownRoleError),  # no role to give up
    ],
)
def test_orders_that_make_no_sense_are_refused(office, fields, error):
    office.designate("malee", "approve-1")
    with pytest.raises(error):
        office.submit(**fields)


def test_only_the_units_head_orders_an_end(office):
    office.designate("malee", "approve-1")
    with pytest.raises(errors.NotAllowedError):
        office.submit(by="head2", kind="end")


def test_ending_a_role_ends_the_substitutes_acting_for_it_too(office):
    office.designate("prasert", "approve-2", valid_from=office.today - timedelta(days=30))
    until = office.today + timedelta(days=60)
    office.designate("wichai", "approve-2", substitute_for="prasert", valid_until=until)
    day = office.today + timedelta(days=5)
    office.approve(office.submit(username="prasert", role="approve-2", kind="end", valid_from=day))
    assert office.roles_of("wichai", day - timedelta(days=1)) == [(UNIT, "approve-2")]
    assert office.roles_of("wichai", day) == []  # nobody left to act for
    (acting,) = assignments_of(office, "wichai")
    assert acting.valid_until == day - timedelta(days=1)
    assert "prasert" in acting.end_reason
    assert acting.id in approved_events(office)[-1]["ended"]
