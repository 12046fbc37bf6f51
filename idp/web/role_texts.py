"""Words of the roles pages in the reader's language: role names as the Ministry's letter has
them, and each domain error's message."""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import quote

from flask_babel import lazy_gettext as _l

from idp.errors import IdpError
from idp.roles.models import DesignationRequest
from thai_format import format_date

ROLE_LABELS = {
    "recorder": _l("Recorder"),
    "approve-1": _l("Withdrawal approver (approval 1)"),
    "approve-2": _l("Payment approver (approval 2)"),
}

ADMIN_ROLE_LABELS = {
    "cgd-admin": _l("CGD administrator"),
    "treasury-admin": _l("Treasury office administrator"),
    "head-of-unit": _l("Head of unit"),
    "helpdesk": _l("Helpdesk"),
    "auditor": _l("Auditor"),
}

ALERT_LABELS = {
    "mfa.reported_not_me": _l('The user answered a sign-in request with "this was not me"'),
    "separation_of_duties": _l("One person holds both approval roles in a unit"),
    "notice_undeliverable": _l("A relying party could not be told of a logout or suspension"),
    "mfa.passkey_cloned": _l("A passkey's counter went back (a cloned authenticator?)"),
}

ORDER_KIND_LABELS = {
    "designate": _l("Designate a person in a role"),
    "end": _l("End a role from a day"),
    "change": _l("Change one role for another"),
}

# What an alert's details say, each named for a person; other details are not shown.
ALERT_DETAIL_LABELS = {
    "client": _l("Application"),
    "uri": _l("Address"),
    "error": _l("Error"),
    "unit": _l("Unit"),
    "roles": _l("Roles"),
    "device": _l("Phone"),
}


def alert_detail_value(key: str, value: Any) -> Any:
    """Role codes as the letter names them; a phone by the start of its id."""
    if key == "roles" and isinstance(value, list):
        return ", ".join(str(ROLE_LABELS.get(role, role)) for role in value)
    if key == "device" and isinstance(value, str):
        return value[:8]
    return value


OTHER_ALERT = _l("Another alert that needs a look")

STATUS_LABELS = {
    "pending": _l("Waiting for a decision"),
    "approved": _l("Approved"),
    "rejected": _l("Rejected"),
}

_ERRORS = {
    "unknown_unit": _l("No disbursement unit has that code."),
    "invalid_unit": _l(
        "A unit needs a 10-digit code, a Thai name, a province and a treasury office."
    ),
    "unit_exists": _l("A unit with that code already exists."),
    "unknown_user": _l("No user has that username."),
    "unknown_role": _l("Choose one of the roles: recorder, approval 1 or approval 2."),
    "invalid_period": _l("The period ends before it starts."),
    "invalid_date": _l(
        "Give dates as day/month/year in the Buddhist era (for example 2/12/2569), as orders "
        "are dated."
    ),
    "unknown_order_kind": _l(
        "Choose what the order does: designate, end a role or change one role for another."
    ),
    "nothing_to_end": _l("The person holds no such role in that unit on or after that day."),
    "same_role_change": _l("A change of role names two different roles."),
    "invalid_order_file": _l("Attach the written order as a PDF, PNG or JPEG file."),
    "order_file_too_large": _l("The order file is too large."),
    "invalid_order": _l("Give the order's number and date (not a future date)."),
    "invalid_substitute": _l(
        "A substitute acts for someone who holds that role in that unit during the period, and "
        "never for themselves."
    ),
    "overlapping_designation": _l(
        "The person already holds that role in that unit during part of that period."
    ),
    "separation_of_duties": _l(
        "One person may not hold both approval roles (approval 1 and approval 2) in the same "
        "unit at overlapping times, whether designated or as a substitute."
    ),
    "forbidden": _l("Your administrative role does not allow this."),
    "own_request": _l("Nobody decides a request they submitted or one that concerns themselves."),
    "already_decided": _l("This request has already been decided."),
    "unknown_request": _l("No designation request has that id."),
    "reason_required": _l("Give the reason for the decision."),
    "invalid_citizen_id": _l("The citizen ID must be 13 digits with a valid check digit."),
    "citizen_id_taken": _l("An account already exists for that citizen ID."),
    "names_required": _l("Give the Thai given name and family name."),
    "username_taken": _l("That username is already in use."),
    "invalid_import_file": _l(
        "The file must be UTF-8 CSV with the columns citizen_id, given_name_th, "
        "family_name_th, given_name_en, family_name_en, unit_code (and optionally email, "
        "legacy_token_key, username)."
    ),
}


def error_text(error: IdpError) -> Any:
    """The reader's words for a domain error; its own (English) message when none is known."""
    return error_words(error.code, error.message)


def error_words(code: str | None, message: str | None) -> Any:
    return _ERRORS.get(code or "", message or "")


def order_headers(request: DesignationRequest) -> dict[str, str]:
    """The order is served as the type its bytes showed, as a download, never sniffed or run
    by the browser."""
    fallback = request.order_filename.encode("ascii", "replace").decode().replace('"', "")
    # RFC 6266 §4.3: the Thai name for browsers that read filename*, ASCII for the rest.
    encoded = quote(request.order_filename, safe="")
    return {
        "Content-Type": request.order_media_type,
        "Content-Disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "no-store",
    }


def show_date(day: date | None, locale: str) -> str:
    """Thai readers get the Buddhist era, as government pages show it: 25 พ.ย. 2569."""
    return format_date(day, locale)
