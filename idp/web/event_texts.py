"""Audit events as sentences a person reads: pages never show an event's code alone."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

EVENT_LABELS: dict[str, Any] = {
    "account.created": _l("An account was created"),
    "account.import": _l("Accounts were imported from a file"),
    "account.issued": _l("An account was issued with a temporary password"),
    "account.password_change_required": _l("A new password was required at the next sign-in"),
    "account.password_changed": _l("The password was changed"),
    "account.suspended": _l("The account was suspended"),
    "account.suspension_lifted": _l("The account's suspension was lifted"),
    "account.unlocked": _l("The account was unlocked"),
    "admin.role_granted": _l("An administrative role was granted"),
    "api.on_behalf_of_refused": _l("An integration named a staff member it may not act for"),
    "audit.trail_exported": _l("The audit trail was exported"),
    "authorization.code_issued": _l("An application was given a sign-in code"),
    "authorization.request_refused": _l(
        "An application's pushed or signed sign-in request was refused"
    ),
    "ciba.answered": _l("An application's request was answered on the phone"),
    "ciba.ended": _l(
        "An application's request to the phone ended with the suspension of the phone or "
        "the account"
    ),
    "ciba.ping_delivered": _l("An application was told its request to the phone has an answer"),
    "ciba.ping_undeliverable": _l(
        "An application could not be told its request to the phone has an answer"
    ),
    "ciba.refused": _l("An application's request to confirm on the phone was refused"),
    "ciba.requested": _l("An application asked for a confirmation on the phone"),
    "client.authentication_failed": _l("An application failed to prove who it is"),
    "client.registered": _l("An application was registered"),
    "enrol.activation_issued": _l("An activation code for the phone was shown"),
    "enrol.binding_failed": _l("Binding a phone failed"),
    "enrol.device_bound": _l("A phone was bound to the account"),
    "enrol.identity_mismatch": _l("Paotang verified a different person than the account's"),
    "enrol.identity_proofed": _l("The identity was verified at Paotang"),
    "enrol.proofing_failed": _l("Identity verification at Paotang did not succeed"),
    "enrol.proofing_started": _l("Identity verification at Paotang started"),
    "keys.retired": _l("A signing key was retired"),
    "keys.rotated": _l("A new signing key was made"),
    "login.account_suspended": _l("A sign-in was refused: the account is suspended"),
    "login.failed": _l("A sign-in failed (wrong password or unknown username)"),
    "login.password": _l("The password was accepted at sign-in"),
    "login.soft_token_missing": _l("A sign-in stopped: the account has no Soft Token yet"),
    "mfa.answer_rejected": _l("An answer from a phone was refused"),
    "mfa.answers_flooded": _l("Too many answers came from one address and were refused"),
    "mfa.device_key_rotated": _l("The phone's key was renewed"),
    "mfa.device_push_address_changed": _l("The phone's notification address changed"),
    "mfa.device_suspended": _l("The phone's Soft Token was suspended"),
    "mfa.evidence_shown": _l("The evidence of a confirmed transaction was shown"),
    "mfa.passkey_cloned": _l("A passkey looked copied and was suspended"),
    "mfa.passkey_registered": _l("A passkey was added"),
    "mfa.passkey_used": _l("A passkey confirmed a sign-in"),
    "mfa.passkeys_suspended": _l("The account's passkeys were suspended"),
    "mfa.push_refused": _l("No notification was sent to the phone (too many requests)"),
    "mfa.push_sent": _l("A sign-in request was sent to the phone"),
    "mfa.push_approved": _l("The sign-in was approved on the phone"),
    "mfa.push_denied": _l("The sign-in was declined on the phone"),
    "mfa.push_reported": _l('The sign-in was declined on the phone as "this was not me"'),
    "mfa.push_wrong_number": _l("A wrong number was typed on the phone"),
    "mfa.push_expired": _l("A sign-in request to the phone expired"),
    "mfa.push_unavailable": _l("The notification service could not reach the phone"),
    "mfa.reported_not_me": _l('The user answered a sign-in request with "this was not me"'),
    "mfa.totp_accepted": _l("A six-digit code from the app confirmed a sign-in"),
    "revocation.access_pass_issued": _l("The helpdesk issued an access pass"),
    "revocation.access_pass_refused": _l("An access pass was refused"),
    "revocation.access_pass_used": _l("An access pass was used"),
    "revocation.case_declared_lost": _l(
        "The head of unit said the phone under investigation was lost"
    ),
    "revocation.case_letter_drafted": _l("The letter to CGD about a lost phone was prepared"),
    "revocation.case_letter_received": _l("The head of unit's letter about a lost phone arrived"),
    "revocation.investigation_closed": _l(
        "An investigation of a phone was closed with its finding"
    ),
    "revocation.phone_suspended": _l("A lost phone's Soft Token was suspended"),
    "roles.assigned": _l("A role was assigned without a request"),
    "roles.designation_approved": _l("An order about a role was approved"),
    "roles.designation_rejected": _l("An order about a role was rejected"),
    "roles.designation_submitted": _l("An order about a role was submitted"),
    "roles.separation_of_duties_blocked": _l(
        "Both approval roles were held in one unit; neither was granted"
    ),
    "roles.unit_created": _l("A disbursement unit was created"),
    "security_event.delivered": _l("An application was told of a suspension"),
    "security_event.queued": _l("A notice of a suspension was queued for an application"),
    "security_event.undeliverable": _l("An application could not be told of a suspension"),
    "session.ended": _l("A session ended"),
    "session.logout_delivered": _l("An application was told of a sign-out"),
    "session.logout_undeliverable": _l("An application could not be told of a sign-out"),
    "session.reauthenticated": _l("The user confirmed who they are again"),
    "session.started": _l("A session started"),
    "token.code_reused": _l("A sign-in code was used twice; its tokens were revoked"),
    "token.dpop_proof_refused": _l("An application's proof of its token key was refused"),
    "token.grant_revoked": _l("An application's access was revoked"),
    "token.issued": _l("Tokens were issued to an application"),
    "token.refresh_reused": _l("A refresh token was used twice; its family was revoked"),
    "token.revoked": _l("A token was revoked"),
}

EVENT_FAMILIES: dict[str, Any] = {
    "account.": _l("Accounts and passwords"),
    "login.": _l("Sign-in"),
    "mfa.": _l("Confirmation on the phone and passkeys"),
    "enrol.": _l("Registration"),
    "revocation.": _l("Suspensions and lost phones"),
    "roles.": _l("Roles and designation orders"),
    "admin.": _l("Administrative roles"),
    "session.": _l("Sessions"),
    "token.": _l("Tokens"),
}

_OTHER = _l("Another security event")


def event_text(code: str) -> Any:
    """The sentence for an event code; a code nobody described yet gets a general one."""
    return EVENT_LABELS.get(code, _OTHER)
