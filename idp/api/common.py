"""What every operation of the admin API shares: the blueprint, request bodies read through
their models, answers written through theirs, and each domain refusal's HTTP status, by its
class."""

from __future__ import annotations

from typing import Any
from typing import TypeVar

from flask import Blueprint
from flask import Response
from flask import jsonify
from flask import request
from pydantic import BaseModel
from pydantic import ValidationError
from werkzeug.exceptions import BadRequest

from idp.accounts import errors as account_errors
from idp.accounts import flow
from idp.accounts import issuance
from idp.accounts.models import User
from idp.accounts.service import get_user_by_username
from idp.api.auth import AuthError
from idp.api.auth import Caller
from idp.api.auth import InvalidOnBehalfOfError
from idp.api.schemas import DomainRefusal
from idp.api.schemas import Sparse
from idp.errors import IdpError
from idp.revocation import loss
from idp.revocation import suspension
from idp.roles import errors as role_errors
from idp.roles.authority import Acting
from idp.web import context
from idp.web.trail import InvalidFilterError

bp = Blueprint("admin_api", __name__, url_prefix="/api/admin/v1")

Model = TypeVar("Model", bound=BaseModel)


class InvalidBodyError(IdpError):
    code = "invalid_request"
    message = "The request body must be a JSON object with the documented fields."


# The status of every refusal the admin API can meet, keyed by the error's class (a subclass
# is looked up by its own class first, then its parents'). A test lists every IdpError class of
# the packages the API calls and fails on one missing here, so that a new refusal is given its
# status on purpose rather than falling to 400.
STATUS: dict[type[IdpError], int] = {
    IdpError: 400,
    InvalidBodyError: 400,
    InvalidOnBehalfOfError: 400,
    InvalidFilterError: 400,
    # roles
    role_errors.RoleError: 400,
    role_errors.UnknownUnitError: 404,
    role_errors.InvalidUnitError: 400,
    role_errors.UnitExistsError: 409,
    role_errors.UnknownPersonError: 404,
    role_errors.UnknownRoleError: 400,
    role_errors.UnknownOrderKindError: 400,
    role_errors.NothingToEndError: 409,
    role_errors.SameRoleChangeError: 400,
    role_errors.InvalidPeriodError: 400,
    role_errors.OrderFileError: 400,
    role_errors.OrderTooLargeError: 413,
    role_errors.InvalidOrderError: 400,
    role_errors.SubstituteError: 400,
    role_errors.OverlappingDesignationError: 409,
    role_errors.SeparationOfDutiesError: 409,
    role_errors.NotAllowedError: 403,
    role_errors.OwnRequestError: 403,
    role_errors.AlreadyDecidedError: 409,
    role_errors.UnknownRequestError: 404,
    role_errors.ReasonRequiredError: 400,
    # accounts
    account_errors.InvalidCredentialsError: 400,
    account_errors.AttemptThrottledError: 400,
    account_errors.PasswordPolicyError: 400,
    account_errors.UsernameTakenError: 409,
    account_errors.CitizenIdError: 400,
    account_errors.UnknownUserError: 404,
    flow.StepNotAllowedError: 400,
    issuance.AccountIssueError: 400,
    issuance.CitizenIdTakenError: 409,
    issuance.NamesRequiredError: 400,
    issuance.InvalidFieldError: 400,
    issuance.ImportFileError: 400,
    # suspensions and lost-device cases
    suspension.SuspensionError: 400,
    suspension.NoPhoneError: 409,
    suspension.UnknownReasonError: 400,
    suspension.UnknownCaseError: 404,
    suspension.CaseClosedError: 409,
    suspension.NoLetterDueError: 400,
    suspension.NotInvestigationError: 400,
    suspension.NotSuspendedError: 409,
    suspension.UnknownCheckError: 400,
    loss.InvalidLossTimeError: 400,
}


def status_of(error: IdpError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400  # unreachable: IdpError itself is in STATUS


@bp.errorhandler(AuthError)
def _auth_failed(error: AuthError) -> Response:
    return error.response()


@bp.errorhandler(IdpError)
def _refused(error: IdpError) -> Response:
    context.db().rollback()
    return json_answer({"error": error.code, "error_description": error.message}, status_of(error))


def json_answer(body: Any, status: int = 200) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def answer(model: BaseModel, status: int = 200) -> Response:
    """An answer as its model serialises it (a Sparse one without its absent members)."""
    return json_answer(
        model.model_dump(mode="json", exclude_none=isinstance(model, Sparse)), status
    )


def json_body() -> dict[str, Any]:
    try:
        body = request.get_json(force=True, silent=False)
    except BadRequest as exc:
        raise InvalidBodyError() from exc
    if not isinstance(body, dict):
        raise InvalidBodyError()
    return body


def parse(model: type[Model]) -> Model:
    """The JSON body as ``model``; a malformed field is refused naming it (400), or with the
    domain's own refusal where the model asks the domain."""
    try:
        return model.model_validate(json_body())
    except ValidationError as exc:
        first = exc.errors()[0]
        carried = first.get("ctx", {}).get("error")
        if isinstance(carried, DomainRefusal):
            raise carried.refusal from None
        field = ".".join(str(part) for part in first["loc"]) or "body"
        raise InvalidBodyError(f"'{field}': {first['msg']}.") from None


def known_user(username: str) -> User:
    """SECURITY: call it once the caller is known to act on anyone (the helpdesk, CGD): its
    404 must not tell a less powerful administrator which usernames exist.

    Raises:
        UnknownPersonError
    """
    user = get_user_by_username(context.db(), username)
    if user is None:
        raise role_errors.UnknownPersonError()
    return user


def acting(caller: Caller) -> Acting:
    """The caller acting now, in this request."""
    return Acting(caller.authority, caller.actor, context.now(), context.audit_context())
