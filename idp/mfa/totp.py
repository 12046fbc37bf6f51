"""The TOTP fallback (RFC 6238): when the phone cannot be reached, the six-digit code its app
shows. Each code is accepted once, across every IdP instance."""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp

from idp.mfa.models import Device
from idp.mfa.models import DeviceStatus
from idp.store.ephemeral import EphemeralStore
from idp.store.ephemeral import Keys
from idp.store.secrets import DataCipher

# RFC 6238 §5.2: one step either side, for clocks that drift and users who type slowly.
_VALID_WINDOW = 1
# A used code is remembered for longer than it could be accepted (three 30-second steps).
_USED_TTL = 120.0


def totp_context(device_id: str) -> str:
    """The encryption context of a device's seed: a seed copied to another row will not open."""
    return f"devices.totp_seed:{device_id}"


class TotpVerifier:
    """The phone's time-based codes (RFC 6238), each accepted once across every instance."""

    def __init__(self, *, cipher: DataCipher, store: EphemeralStore, keys: Keys) -> None:
        self._cipher = cipher
        self._store = store
        self._keys = keys

    def verify_totp(self, device: Device, code: str, *, now: datetime) -> bool:
        """True when ``code`` is the device's code for now (±1 step) and was not used before.

        Records the step on ``device`` as well: the caller holds the account's attempt lock
        and commits it, so the database alone refuses a replay whatever the store forgot.

        Raises:
            EphemeralStoreError: the store that remembers used codes is unreachable (refuse).
        """
        cipher, store, keys = self._cipher, self._store, self._keys
        if device.status != DeviceStatus.ACTIVE or len(code) != 6 or not code.isdigit():
            return False
        secret = cipher.decrypt(device.totp_seed_encrypted, context=totp_context(device.id))
        generator = pyotp.TOTP(secret.decode())
        current = generator.timecode(now)
        last = store.get(keys.totp_last(device.id))
        for counter in range(current - _VALID_WINDOW, current + _VALID_WINDOW + 1):
            if hmac.compare_digest(generator.generate_otp(counter), code):
                # RFC 6238 §5.2: once a code was accepted, no code of its step or an earlier
                # one is; SET NX makes the first use win, here and on every other instance.
                if last is not None and counter <= int(last):
                    return False
                # SECURITY: the store forgets (a Redis restart, the switch to its fallback table);
                # the device row does not.
                if device.totp_last_counter is not None and counter <= device.totp_last_counter:
                    return False
                if not store.set(
                    keys.totp_used(device.id, counter), b"1", ttl=_USED_TTL, only_if_new=True
                ):
                    return False
                store.set(keys.totp_last(device.id), str(counter).encode(), ttl=_USED_TTL)
                device.totp_last_counter = counter
                return True
        return False
