"""Passkeys (WebAuthn Level 3 via py_webauthn): registered by a user whose db the phone
confirmed, then usable to confirm a login in place of the push.

User verification is required at registration and at every use (the passkey is then two factors
in itself, "hwk" + "user"); the origin and RP ID are checked by the library; a signature counter
that goes back means a cloned authenticator, and the passkey is suspended (WebAuthn §6.1.1).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session
from webauthn import base64url_to_bytes
from webauthn import generate_authentication_options
from webauthn import generate_registration_options
from webauthn import options_to_json
from webauthn import verify_authentication_response
from webauthn import verify_registration_response
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import AuthenticatorSelectionCriteria
from webauthn.helpers.structs import PublicKeyCredentialDescriptor
from webauthn.helpers.structs import ResidentKeyRequirement
from webauthn.helpers.structs import UserVerificationRequirement

from idp.accounts.models import User
from idp.audit.alerts import raise_alert
from idp.audit.service import AuditContext
from idp.audit.service import record
from idp.errors import IdpError
from idp.mfa.models import Passkey
from idp.mfa.models import PasskeyStatus

CEREMONY_TIMEOUT_MS = 120_000
MAX_PASSKEYS = 10


class PasskeyRejectedError(IdpError):
    code = "passkey_rejected"
    message = "The passkey could not be verified."


class PasskeyClonedError(IdpError):
    code = "passkey_cloned"
    message = "This passkey looks copied and was suspended. Call the GFMIS helpdesk."


@dataclass(frozen=True)
class RelyingParty:
    """Where passkeys are valid: the issuer's host (RP ID) and origin."""

    rp_id: str
    origin: str
    name: str = "New GFMIS Thai Soft Token"

    @classmethod
    def for_issuer(cls, issuer: str) -> RelyingParty | None:
        """None when the issuer's host cannot be an RP ID (an IP address, WebAuthn §5.1.4)."""
        parts = urlsplit(issuer)
        host = parts.hostname or ""
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return cls(rp_id=host, origin=f"{parts.scheme}://{parts.netloc}")
        return None


def active_passkeys(db: Session, user_id: str) -> list[Passkey]:
    return list(
        db.scalars(
            select(Passkey).where(
                Passkey.user_id == user_id, Passkey.status == PasskeyStatus.ACTIVE
            )
        )
    )


def suspend_passkeys(
    db: Session, user: User, *, reason: str, now: datetime, actor: str, audit: AuditContext
) -> int:
    """Suspend every passkey of the user (a lost or stolen phone may hold one, or its finder
    may have added one); return how many. They are added again after re-registration."""
    passkeys = active_passkeys(db, user.id)
    for passkey in passkeys:
        passkey.status = PasskeyStatus.SUSPENDED
        passkey.suspended_at = now
    if passkeys:
        record(
            db,
            "mfa.passkeys_suspended",
            now=now,
            actor=actor,
            context=audit,
            user=user.sub,
            count=len(passkeys),
            reason=reason,
        )
    return len(passkeys)


def registration_options(db: Session, user: User, rp: RelyingParty) -> tuple[str, bytes]:
    """The options for navigator.credentials.create(), and the challenge to keep."""
    existing = db.scalars(select(Passkey.id).where(Passkey.user_id == user.id)).all()
    options = generate_registration_options(
        rp_id=rp.rp_id,
        rp_name=rp.name,
        user_id=user.sub.encode(),
        user_name=user.username,
        user_display_name=user.username,
        timeout=CEREMONY_TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=base64url_to_bytes(cid)) for cid in existing
        ],
    )
    return options_to_json(options), options.challenge


def register_passkey(
    db: Session,
    user: User,
    *,
    credential: str,
    challenge: bytes,
    rp: RelyingParty,
    name: str,
    now: datetime,
    audit: AuditContext,
) -> Passkey:
    """Raises PasskeyRejectedError."""
    if len(active_passkeys(db, user.id)) >= MAX_PASSKEYS:
        raise PasskeyRejectedError()
    try:
        verified = verify_registration_response(
            credential=_json_object(credential),
            expected_challenge=challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=rp.origin,
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        raise PasskeyRejectedError() from exc
    credential_id = bytes_to_base64url(verified.credential_id)
    if db.get(Passkey, credential_id) is not None:
        raise PasskeyRejectedError()
    passkey = Passkey(
        id=credential_id,
        user_id=user.id,
        status=PasskeyStatus.ACTIVE,
        name=(name.strip() or "Passkey")[:64],
        public_key=bytes_to_base64url(verified.credential_public_key),
        sign_count=verified.sign_count,
        aaguid=verified.aaguid,
        backed_up=verified.credential_backed_up,
        created_at=now,
        last_used_at=None,
        suspended_at=None,
    )
    db.add(passkey)
    record(
        db,
        "mfa.passkey_registered",
        now=now,
        actor=user.sub,
        context=audit,
        passkey=credential_id[:32],
        aaguid=verified.aaguid,
    )
    return passkey


def authentication_options(passkeys: list[Passkey], rp: RelyingParty) -> tuple[str, bytes]:
    options = generate_authentication_options(
        rp_id=rp.rp_id,
        timeout=CEREMONY_TIMEOUT_MS,
        allow_credentials=[
            PublicKeyCredentialDescriptor(id=base64url_to_bytes(p.id)) for p in passkeys
        ],
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return options_to_json(options), options.challenge


def verify_passkey(
    db: Session,
    user: User,
    *,
    credential: str,
    challenge: bytes,
    rp: RelyingParty,
    now: datetime,
    audit: AuditContext,
) -> Passkey:
    """Check an assertion by one of the user's active passkeys.

    Raises:
        PasskeyRejectedError: not theirs, not active, wrong origin or RP ID, no user
            verification, a bad signature.
        PasskeyClonedError: a valid signature with a counter that went back; the passkey is
            suspended and the helpdesk alerted (the caller commits).
    """
    body = _json_object(credential)
    passkey = db.get(Passkey, str(body.get("id", ""))[:1400])
    if passkey is None or passkey.user_id != user.id or passkey.status != PasskeyStatus.ACTIVE:
        raise PasskeyRejectedError()
    try:
        # The library's own counter check runs before the signature is verified, so anyone
        # could trigger it; the counter is compared here, once the signature holds.
        verified = verify_authentication_response(
            credential=body,
            expected_challenge=challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=rp.origin,
            credential_public_key=base64url_to_bytes(passkey.public_key),
            credential_current_sign_count=0,
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        raise PasskeyRejectedError() from exc
    stored, seen = passkey.sign_count, verified.new_sign_count
    if (stored > 0 or seen > 0) and seen <= stored:
        passkey.status = PasskeyStatus.SUSPENDED
        passkey.suspended_at = now
        record(
            db,
            "mfa.passkey_cloned",
            now=now,
            outcome="failure",
            actor=user.sub,
            context=audit,
            passkey=passkey.id[:32],
            stored=stored,
            seen=seen,
        )
        raise_alert(
            db,
            "mfa.passkey_cloned",
            user_id=user.id,
            now=now,
            passkey=passkey.id[:32],
            stored_count=stored,
            seen_count=seen,
        )
        raise PasskeyClonedError()
    passkey.sign_count = seen
    passkey.last_used_at = now
    record(db, "mfa.passkey_used", now=now, actor=user.sub, context=audit, passkey=passkey.id[:32])
    return passkey


def _json_object(credential: str) -> dict[str, object]:
    try:
        body = json.loads(credential)
    except ValueError as exc:
        raise PasskeyRejectedError() from exc
    if not isinstance(body, dict):
        raise PasskeyRejectedError()
    return body
