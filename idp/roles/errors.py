"""Domain errors of units, designations and role assignments; each says what to fix."""

from __future__ import annotations

from idp.errors import IdpError


class RoleError(IdpError):
    code = "invalid_request"
    message = "The request could not be accepted."


class UnknownUnitError(RoleError):
    code = "unknown_unit"
    message = "No disbursement unit has that code."


class InvalidUnitError(RoleError):
    code = "invalid_unit"
    message = "A unit needs a 10-digit code, a Thai name, a province and a treasury office."


class UnitExistsError(RoleError):
    code = "unit_exists"
    message = "A unit with that code already exists."


class UnknownPersonError(RoleError):
    code = "unknown_user"
    message = "No user has that username."


class UnknownRoleError(RoleError):
    code = "unknown_role"
    message = "The role must be recorder, approve-1 or approve-2."


class UnknownOrderKindError(RoleError):
    code = "unknown_order_kind"
    message = "An order designates, ends a role or changes one role for another."


class NothingToEndError(RoleError):
    code = "nothing_to_end"
    message = "The person holds no such role in that unit on or after that day."


class SameRoleChangeError(RoleError):
    code = "same_role_change"
    message = "A change of role names two different roles."


class InvalidPeriodError(RoleError):
    code = "invalid_period"
    message = "The period ends before it starts."


class OrderFileError(RoleError):
    code = "invalid_order_file"
    message = "Attach the written order as a PDF, PNG or JPEG file."


class OrderTooLargeError(OrderFileError):
    code = "order_file_too_large"
    message = "The order file is too large."


class InvalidOrderError(RoleError):
    code = "invalid_order"
    message = "Give the order's number and date."


class SubstituteError(RoleError):
    code = "invalid_substitute"
    message = (
        "A substitute acts for someone who holds that role in that unit during the period, "
        "and never for themselves."
    )


class OverlappingDesignationError(RoleError):
    code = "overlapping_designation"
    message = "The person already holds that role in that unit during part of that period."


class SeparationOfDutiesError(RoleError):
    code = "separation_of_duties"
    message = (
        "One person may not hold both approval roles (approve-1 and approve-2) in the same "
        "unit at overlapping times, whether designated or as a substitute."
    )

    def __init__(self, roles: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.roles = roles


class NotAllowedError(RoleError):
    code = "forbidden"
    message = "Your administrative role does not allow this."


class OwnRequestError(NotAllowedError):
    code = "own_request"
    message = "Nobody decides a request they submitted or one that concerns themselves."


class AlreadyDecidedError(RoleError):
    code = "already_decided"
    message = "This request has already been decided."


class UnknownRequestError(RoleError):
    code = "unknown_request"
    message = "No designation request has that id."


class ReasonRequiredError(RoleError):
    code = "reason_required"
    message = "Give the reason for the decision."
