"""Phone binding: an activation code shown to the user, a nonce the phone signs with the key it
made, and a TOTP seed given back in the same exchange.

The phone's registration is a compact JWS (ES256) whose header carries the phone's public key
(``jwk``) and whose payload names us (``aud``), the activation code, our nonce and the phone's
push address. Possession of the private key is proven by the signature over our nonce.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any

import pyotp
from joserfc.jwk import ECKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.accounts.models import User
from idp.audit.service import AuditContext
from idp.audit.service import record
from idp.enrol.errors import ActivationCodeError
from idp.enrol.errors import AlreadyBoundError
from idp.enrol.errors import BindingProofError
from idp.enrol.errors import ProofingExpiredError
from idp.enrol.flow import EnrolmentState
from idp.enrol.flow import advance
from idp.enrol.models import Enrolment
from idp.enrol.service import get_enrolment
from idp.enrol.service import has_active_device
from idp.enrol.service import proofing_is_fresh
from idp.enrol.service import state_of
from idp.mfa.device_keys import is_relay_address
from idp.mfa.dpop import open_self_signed
from idp.mfa.models import Device
from idp.mfa.models import DeviceStatus
from idp.mfa.totp import totp_context
from idp.store.secrets import DataCipher

BINDING_TYP = "nexus-binding+jwt"
# Crockford's base32 without the look-alikes: easy to read aloud and to type on a phone.
_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"
_CODE_LENGTH = 10  # about 49 bits, valid for minutes, usable once, guesses rate-limited
_NONCE_TTL = timedelta(minutes=2)
_PROOF_MAX_AGE = 120


def normalise_code(value: str) -> str:
    return "".join(c for c in value.upper() if c.isalnum())


def format_code(code: str) -> str:
    return f"{code[:5]}-{code[5:]}"


@dataclass(frozen=True)
class BoundDevice:
    device_id: str
    totp_secret: str


class PhoneBinding:
    """Binding a phone to a proofed account, under this issuer's name and relay."""

    def __init__(
        self,
        *,
        cipher: DataCipher,
        issuer: str,
        relay_url: str,
        code_ttl: int,
        proofing_valid_for: timedelta,
    ) -> None:
        self._cipher = cipher
        self._issuer = issuer
        self._relay_url = relay_url
        self._code_ttl = code_ttl
        self._proofing_valid_for = proofing_valid_for

    def issue_activation_code(
        self,
        db: Session,
        user: User,
        *,
        now: datetime,
        context: AuditContext,
        ttl: int | None = None,
    ) -> tuple[str, datetime]:
        """Show the user a fresh code for their phone (replacing any earlier one); ``ttl``
        replaces the configured lifetime of the code.

        Raises:
            InvalidTransitionError: identity not proven yet, or already bound.
            AlreadyBoundError: an active phone exists.
            ProofingExpiredError: the proofing is too old to bind a phone on.
        """
        if has_active_device(db, user):
            raise AlreadyBoundError()
        if not proofing_is_fresh(user, now=now, valid_for=self._proofing_valid_for):
            # SECURITY: a password alone, long after the real person proved who they are,
            # must not be enough to bind a phone.
            raise ProofingExpiredError()
        enrolment = get_enrolment(db, user, now=now)
        enrolment.state = advance(state_of(enrolment), EnrolmentState.BINDING)
        code = "".join(secrets.choice(_ALPHABET) for _ in range(_CODE_LENGTH))
        expires_at = now + timedelta(seconds=self._code_ttl if ttl is None else ttl)
        enrolment.activation_code_hash = self._cipher.keyed_hash(code, purpose="activation_code")
        enrolment.activation_expires_at = expires_at
        enrolment.activation_nonce = None
        enrolment.activation_nonce_expires_at = None
        enrolment.updated_at = now
        record(db, "enrol.activation_issued", now=now, actor=user.sub, context=context)
        return code, expires_at

    def challenge(self, db: Session, *, code: str, now: datetime) -> str:
        """The nonce the phone must sign for this activation code.

        Raises:
            ActivationCodeError
        """
        enrolment = _enrolment_for_code(db, self._cipher, code, now=now)
        nonce = secrets.token_urlsafe(24)
        enrolment.activation_nonce = nonce
        enrolment.activation_nonce_expires_at = now + _NONCE_TTL
        return nonce

    def bind_device(
        self, db: Session, *, proof: str, now: datetime, context: AuditContext
    ) -> BoundDevice:
        """Verify the phone's signed registration and bind it; return the TOTP seed for it.

        Nothing is written unless every check passes.

        Raises:
            BindingProofError, ActivationCodeError, AlreadyBoundError
        """
        public_key, claims = _verify_proof(proof, issuer=self._issuer, now=now)
        code = str(claims.get("activation_code"))
        enrolment = _enrolment_for_code(db, self._cipher, code, now=now)
        nonce = enrolment.activation_nonce
        nonce_expiry = enrolment.activation_nonce_expires_at
        if (
            nonce is None
            or nonce_expiry is None
            or nonce_expiry <= now
            or not secrets.compare_digest(nonce.encode(), str(claims.get("nonce", "")).encode())
        ):
            # SECURITY: the signature must cover our fresh nonce, or it could be replayed.
            raise BindingProofError()
        user = db.get(User, enrolment.user_id)
        assert user is not None  # noqa: S101 - the enrolment's foreign key
        if has_active_device(db, user):
            raise AlreadyBoundError()
        if not proofing_is_fresh(user, now=now, valid_for=self._proofing_valid_for):
            raise ProofingExpiredError()
        thumbprint = public_key.thumbprint()
        if db.scalar(select(Device.id).where(Device.key_thumbprint == thumbprint)):
            raise BindingProofError("This key is already bound.")
        push_address = str(claims.get("push_address", ""))
        # SECURITY: the IdP will call this address; only the known relay's phones are accepted.
        if not is_relay_address(push_address, self._relay_url):
            raise BindingProofError()
        secret = pyotp.random_base32()
        device = Device(
            id=secrets.token_hex(16),
            user_id=user.id,
            status=DeviceStatus.ACTIVE,
            public_jwk=dict(public_key.as_dict(private=False)),
            key_thumbprint=thumbprint,
            push_address=push_address[:500],
            totp_seed_encrypted="",
            bound_at=now,
        )
        device.totp_seed_encrypted = self._cipher.encrypt(
            secret.encode(), context=totp_context(device.id)
        )
        db.add(device)
        enrolment.state = advance(state_of(enrolment), EnrolmentState.COMPLETED)
        enrolment.device_id = device.id
        enrolment.activation_code_hash = None
        enrolment.activation_expires_at = None
        enrolment.activation_nonce = None
        enrolment.activation_nonce_expires_at = None
        enrolment.updated_at = now
        db.flush()
        record(
            db,
            "enrol.device_bound",
            now=now,
            actor=user.sub,
            context=context,
            device=device.id,
            key_thumbprint=thumbprint,
        )
        return BoundDevice(device_id=device.id, totp_secret=secret)


def _enrolment_for_code(db: Session, cipher: DataCipher, code: str, *, now: datetime) -> Enrolment:
    digest = cipher.keyed_hash(normalise_code(code), purpose="activation_code")
    enrolment = db.scalar(
        select(Enrolment).where(Enrolment.activation_code_hash == digest).with_for_update()
    )
    if (
        enrolment is None
        or state_of(enrolment) != EnrolmentState.BINDING
        or enrolment.activation_expires_at is None
        or enrolment.activation_expires_at <= now
    ):
        raise ActivationCodeError()
    return enrolment


def _verify_proof(proof: str, *, issuer: str, now: datetime) -> tuple[ECKey, dict[str, Any]]:
    """Check the registration JWS with the key it carries (RFC 7515 §4.1.3 ``jwk``)."""
    try:
        key, claims = open_self_signed(proof, typ=BINDING_TYP)
    except ValueError as exc:
        raise BindingProofError() from exc
    if claims.get("aud") != issuer:
        raise BindingProofError()
    issued = claims.get("iat")
    if not isinstance(issued, int) or abs(now.timestamp() - issued) > _PROOF_MAX_AGE:
        raise BindingProofError()
    return key, claims
