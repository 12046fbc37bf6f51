"""Words of the lost-phone pages in the reader's language: reasons, kinds of case, channels
and the caller checks, never their codes."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

REASON_LABELS = {
    "lost": _l("Lost"),
    "stolen": _l("Stolen"),
    "compromised": _l("Compromised"),
    "other": _l("Other"),
}

KIND_LABELS = {
    "lost": _l("Lost or stolen phone: the head of unit's letter to CGD is due"),
    "investigation": _l(
        "Investigation: no letter is due unless the head of unit says the phone was lost"
    ),
}

CHANNEL_LABELS = {
    "helpdesk": _l("the helpdesk"),
    "api": _l("a ticketing system (admin API)"),
    "self": _l("the user, on their account page"),
    "not_me": _l('the user\'s "this was not me" on the phone'),
}

CHECK_LABELS = {
    "citizen_id": _l("The caller gave the citizen ID on the account"),
    "unit": _l("The caller named their unit and position correctly"),
    "callback": _l("I called back on the unit's official number"),
    "head_of_unit": _l(
        "The caller knows the head of unit must send a letter within 3 working days"
    ),
}
