"""The bound phone's own maintenance, each call authenticated by a DPoP proof of its current key:
moving to a new key (the new key proves itself too) and changing where the relay reaches it."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.audit.service import AuditContext
from idp.audit.service import record
from idp.errors import IdpError
from idp.mfa.dpop import DpopProof
from idp.mfa.dpop import open_self_signed
from idp.mfa.models import Device
from idp.mfa.models import DeviceStatus

ROTATION_TYP = "nexus-key-rotation+jwt"
_PROOF_MAX_AGE = 120
PHONE_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


class DeviceRequestError(IdpError):
    code = "invalid_request"
    message = "The request could not be accepted."


def is_relay_address(push_address: str, relay_url: str) -> bool:
    """The IdP will call this address: only the known relay's phones are accepted."""
    phone_id = push_address.removeprefix(f"{relay_url}/phones/")
    return phone_id != push_address and bool(PHONE_ID.fullmatch(phone_id))


def device_for(db: Session, proof: DpopProof) -> Device:
    """The active device whose key made the proof.

    Raises:
        DeviceRequestError
    """
    device = db.scalar(select(Device).where(Device.key_thumbprint == proof.thumbprint))
    if device is None or device.status != DeviceStatus.ACTIVE:
        raise DeviceRequestError()
    return device


class DeviceKeys:
    """A bound phone's own upkeep: its push address at the relay, and its key."""

    def __init__(self, *, issuer: str, relay_url: str) -> None:
        self._issuer = issuer
        self._relay_url = relay_url

    def change_push_address(
        self, db: Session, device: Device, *, push_address: str, now: datetime, audit: AuditContext
    ) -> None:
        """Raises DeviceRequestError."""
        if len(push_address) > 500 or not is_relay_address(push_address, self._relay_url):
            raise DeviceRequestError()
        previous = device.push_address
        device.push_address = push_address
        record(
            db,
            "mfa.device_push_address_changed",
            now=now,
            context=audit,
            device=device.id,
            previous=previous,
            current=push_address,
        )

    def rotate_device_key(
        self, db: Session, device: Device, *, rotation: str, now: datetime, audit: AuditContext
    ) -> str:
        """Move the device to the key in ``rotation`` (a JWS that key signed, for this issuer,
        naming the current key's thumbprint); return the new thumbprint.

        Raises:
            DeviceRequestError
        """
        try:
            key, claims = open_self_signed(rotation, typ=ROTATION_TYP)
        except ValueError as exc:
            raise DeviceRequestError() from exc
        issued = claims.get("iat")
        if (
            claims.get("aud") != self._issuer
            or claims.get("previous") != device.key_thumbprint
            or not isinstance(issued, int)
            or abs(now.timestamp() - issued) > _PROOF_MAX_AGE
        ):
            raise DeviceRequestError()
        thumbprint = key.thumbprint()
        if db.scalar(select(Device.id).where(Device.key_thumbprint == thumbprint)):
            raise DeviceRequestError()  # a key is bound once
        previous = device.key_thumbprint
        device.public_jwk = dict(key.as_dict(private=False))
        device.key_thumbprint = thumbprint
        record(
            db,
            "mfa.device_key_rotated",
            now=now,
            context=audit,
            device=device.id,
            previous=previous,
            current=thumbprint,
        )
        return thumbprint
