"""The admin API's shapes, written once: these models validate the request bodies, serialise
the answers and are the OpenAPI document's ``components.schemas`` (JSON Schema 2020-12, which
OpenAPI 3.1 takes as it is). Enumerations are the domain's own, never typed out again.

Where the domain has its own refusal for a field (a suspension's ``reason``, ``verified``,
``lost_at``), the field's validator asks the domain, so the answer keeps the domain's error
code; any other malformed field is ``invalid_request`` naming the field."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from datetime import datetime
from typing import Annotated
from typing import Any
from typing import Literal

from pydantic import BaseModel
from pydantic import BeforeValidator
from pydantic import ConfigDict
from pydantic import Field
from pydantic import PlainSerializer
from pydantic import StrictBool
from pydantic import StrictStr
from pydantic import WithJsonSchema
from pydantic.json_schema import SkipJsonSchema

from idp.errors import IdpError
from idp.revocation.loss import InvalidLossTimeError
from idp.revocation.models import CallerCheck
from idp.revocation.models import CaseKind
from idp.revocation.models import SuspensionReason
from idp.revocation.suspension import reason_of
from idp.revocation.suspension import validate_checks
from idp.roles.models import AdminRole
from idp.roles.models import OrderKind
from idp.roles.models import RequestStatus
from idp.roles.models import Role


class DomainRefusal(ValueError):  # noqa: N818  (it carries a refusal, it is not one)
    """A field's domain refusal, carried through pydantic's ValidationError to ``parse``."""

    def __init__(self, refusal: IdpError) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


def _domain(check: Callable[[Any], Any]) -> BeforeValidator:
    """Run the domain's own check of a field; its refusal (with its code) is what the caller
    gets."""

    def validate(value: Any) -> Any:
        try:
            return check(value)
        except IdpError as refusal:
            raise DomainRefusal(refusal) from refusal

    return BeforeValidator(validate)


def _reason(value: Any) -> Any:
    # A blank or non-string reason is malformed input (invalid_request), as before; a string
    # that is no reason is the domain's invalid_reason.
    return reason_of(value) if isinstance(value, str) and value.strip() else value


def _lost_at(value: Any) -> Any:
    # The moment itself is checked against the clock by the operation (validate_lost_at).
    if value is not None and not isinstance(value, str):
        raise InvalidLossTimeError()
    return value


# Left out of a Sparse answer.
Absent = SkipJsonSchema[None]
# A required text: a string with something other than spaces in it.
Text = Annotated[StrictStr, Field(pattern=r"\S")]
# An optional text: absent, null or any string.
OptionalText = StrictStr | None
# Moments as Python writes them (``2026-11-20T03:00:00+00:00``), as the API always has.
Moment = Annotated[
    datetime,
    PlainSerializer(lambda value: value.isoformat(), return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
_DAY = "Christian era, YYYY-MM-DD"
ON_BEHALF_OF = (
    "For an integration's token (helpdesk scope) only: the username of the member of staff it "
    "acts for, who must hold the helpdesk role; recorded as the actor, with the client, in the "
    "audit trail. A user's own token may not send it (400)."
)
_LOST_AT = (
    "When the phone was lost: an ISO 8601 date (2026-11-20) or date-time (2026-11-20T18:30, "
    "Thai time without an offset). Default: now. A future value is refused (400 "
    "invalid_lost_at). The letter's 3 Thai working days count from this day."
)


class Body(BaseModel):
    """A JSON request body: unknown members are ignored, as they always were."""

    model_config = ConfigDict(extra="ignore")

    on_behalf_of: OptionalText = Field(None, description=ON_BEHALF_OF)


class Sparse(BaseModel):
    """An answer whose absent members are left out rather than sent as null (``answer`` dumps
    it without its None values, nested ones included): its optional members are typed
    ``X | Absent`` so the document shows them as optional, never null."""


# --- requests -------------------------------------------------------------------------------


class NewUnit(Body):
    code: Text = Field(description="10 digits")
    name_th: Text
    name_en: OptionalText = None
    province: Text
    treasury_office: Text


class NewAccount(Body):
    citizen_id: Text = Field(description="13 digits (Thai digits too) with a valid check digit")
    given_name_th: Text
    family_name_th: Text
    given_name_en: OptionalText = None
    family_name_en: OptionalText = None
    unit_code: Text
    email: OptionalText = None
    legacy_token_key: StrictBool = False
    username: OptionalText = Field(None, description="Made from the English names if absent")


class Decision(Body):
    reason: OptionalText = None


class Reason(Body):
    reason: Text


class PhoneSuspension(Body):
    reason: Annotated[SuspensionReason, _domain(_reason)]
    lost_at: Annotated[OptionalText, _domain(_lost_at)] = Field(None, description=_LOST_AT)
    verified: Annotated[list[CallerCheck], _domain(validate_checks)] = Field(
        default_factory=list,
        description="What was verified of the caller, recorded; a suspension never waits for it",
    )


class LossDeclaration(Body):
    lost_at: Annotated[OptionalText, _domain(_lost_at)] = Field(None, description=_LOST_AT)


class Finding(Body):
    finding: Text


class NewAdminGrant(Body):
    username: Text
    role: AdminRole
    province: OptionalText = Field(None, description="For a treasury administrator")
    unit_code: OptionalText = Field(None, description="For a head of unit")


class DesignationForm(BaseModel):
    """The multipart form of a designation; its fields are read by the domain, which answers
    with its own codes (unknown_role, unknown_order_kind, invalid_order_file ...)."""

    unit_code: str
    username: str
    kind: OrderKind = Field(
        OrderKind.DESIGNATE,
        description="designate a person, end a role from a day, or change one role for another",
    )
    role: Role = Field(
        description="the role designated, ended (kind end) or taken on (kind change)"
    )
    ends_role: Role | None = Field(None, description="kind change: the role given up")
    valid_from: date = Field(
        description="kind end and change: the first day without the old role (today at the "
        "latest when approved later); " + _DAY
    )
    valid_until: date | None = Field(None, description=_DAY)
    substitute_for: str | None = Field(None, description="username acted for")
    order_number: str
    order_date: date = Field(description=_DAY)
    note: str = ""
    order_file: bytes = Field(
        description="PDF, PNG or JPEG, recognised by its bytes",
        json_schema_extra={"format": "binary", "type": "string"},
    )


class LetterForm(BaseModel):
    letter_file: bytes = Field(
        description="PDF, PNG or JPEG, recognised by its bytes",
        json_schema_extra={"format": "binary", "type": "string"},
    )


# --- answers --------------------------------------------------------------------------------


class Error(Sparse):
    error: str
    error_description: str | Absent = None


class Unit(BaseModel):
    code: str
    name_th: str
    name_en: str
    province: str
    treasury_office: str


class Units(BaseModel):
    units: list[Unit]


class IssuedAccount(BaseModel):
    username: str
    sub: str
    temporary_password: str = Field(description="Shown once")


class ImportRow(Sparse):
    row: int
    issued: bool
    username: str | Absent = None
    temporary_password: str | Absent = None
    error: str | Absent = None
    error_description: str | Absent = None


class ImportReport(Sparse):
    rows: list[ImportRow]
    issued: int


class GfmsRole(Sparse):
    unit: str
    role: Role
    substitute_for: str | Absent = Field(None, description="sub of the person acted for")


class UserRoles(Sparse):
    username: str
    sub: str
    gfms_roles: list[GfmsRole]


class DesignationRequest(BaseModel):
    """For kind end, role ends from valid_from on; for kind change, ends_role ends the day
    before valid_from and role starts on it."""

    id: str
    unit_code: str
    user_id: str
    kind: OrderKind
    role: Role
    ends_role: Role | None
    valid_from: date
    valid_until: date | None
    substitute_for: str | None
    order_number: str
    order_date: date
    order_filename: str
    order_media_type: str
    order_size: int
    order_sha256: str
    note: str
    status: RequestStatus
    submitted_by: str
    submitted_at: Moment
    decided_by: str | None
    decided_at: Moment | None
    decision_reason: str | None


class Designations(BaseModel):
    designations: list[DesignationRequest]


class Assignment(BaseModel):
    id: str
    unit_code: str
    role: Role
    valid_from: date
    valid_until: date | None
    substitute_for: str | None
    request_id: str | None


class Approval(BaseModel):
    status: Literal[RequestStatus.APPROVED]
    assignment: Assignment | None = Field(description="the role started (none for kind end)")
    ended: list[Assignment] = Field(description="assignments ended or cut short")


class AdminGrant(BaseModel):
    id: str
    username: str
    role: AdminRole
    province: str | None
    unit_code: str | None


class Case(BaseModel):
    id: str
    username: str | None
    reason: SuspensionReason
    kind: CaseKind = Field(
        description="lost: lost or stolen, the letter is due; investigation: compromised, "
        "'this was not me' or other, no letter unless declared lost"
    )
    channel: str = Field(description="helpdesk, api, self or not_me")
    verified: list[str]
    reported_at: Moment
    lost_at: str = Field(
        description="The loss: a date-time in Thai time (+07:00) when the time is known, "
        "else the date"
    )
    letter_due: date | None = Field(
        description="3 Thai civil-service working days after the day of the loss"
    )
    closed_at: Moment | None
    overdue: bool
    overdue_when_reported: bool = Field(
        description="The letter's last day had passed when the loss was reported"
    )
    letter_received_at: Moment | None
    letter_sha256: str | None


class SuspendedPhone(Case):
    already_suspended: bool
    sessions_ended: int


class Cases(BaseModel):
    cases: list[Case]


class AccountSuspended(BaseModel):
    status: Literal["suspended"]
    already_suspended: bool


class SuspensionLifted(BaseModel):
    status: Literal["active"]


class AccessPass(BaseModel):
    access_pass: str = Field(description="Shown once")
    expires_in: int


class AuditEvent(BaseModel):
    id: int
    seq: int | None = Field(description="position in the chain")
    occurred_at: Moment
    event: str
    outcome: str = Field(description="success or failure")
    actor: str | None = Field(description="sub or client id")
    client_id: str | None
    client_ip: str | None
    request_id: str | None
    details: dict[str, Any]
    chain_hash: str | None


class ChainStatus(BaseModel):
    intact: bool
    checked: int
    unsealed: int
    broken_at_seq: int | None
    reason: str | None
    head_seq: int
    head_hash: str


class AuditPage(BaseModel):
    events: list[AuditEvent]
    next_before: int | None = Field(description="pass as before for older events")
    scope: list[str] | None = Field(description="the unit codes read; null: every unit")
    chain: ChainStatus


# Every model of the document, with the direction it travels in.
REQUESTS: tuple[type[BaseModel], ...] = (
    NewUnit,
    NewAccount,
    Decision,
    Reason,
    PhoneSuspension,
    LossDeclaration,
    Finding,
    NewAdminGrant,
    DesignationForm,
    LetterForm,
)
ANSWERS: tuple[type[BaseModel], ...] = (
    Error,
    Unit,
    Units,
    IssuedAccount,
    ImportReport,
    UserRoles,
    DesignationRequest,
    Designations,
    Approval,
    AdminGrant,
    Case,
    SuspendedPhone,
    Cases,
    AccountSuspended,
    SuspensionLifted,
    AccessPass,
    AuditPage,
)
