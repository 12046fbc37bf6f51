"""Secrets at rest: AES-256-GCM encryption and keyed hashes, both from ``IDP_DATA_KEY``.

Each use gets its own subkey (HKDF with a purpose label), so a keyed hash of a citizen ID can
never be confused with one of a client secret, and the encryption key is never used to hash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from idp.errors import IdpError

_VERSION = b"v1"


class DecryptionError(IdpError):
    code = "decryption_failed"
    message = "A stored secret could not be decrypted (wrong IDP_DATA_KEY or altered data)."


def _subkey(master: bytes, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(
        master
    )


class DataCipher:
    """Encrypt and hash secrets with subkeys of the data key."""

    def __init__(self, data_key: bytes) -> None:
        if len(data_key) != 32:
            raise ValueError("data key must be 32 bytes")
        self._aead = AESGCM(_subkey(data_key, "idp/encrypt/v1"))
        self._hash_keys: dict[str, bytes] = {}
        self._master = data_key

    def encrypt(self, plaintext: bytes, *, context: str) -> str:
        """Encrypt ``plaintext``, binding it to ``context`` (e.g. the table and column).

        The context is authenticated, so a ciphertext copied to another row or column fails.
        """
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext, context.encode())
        return (_VERSION + b"." + base64.urlsafe_b64encode(nonce + sealed)).decode()

    def decrypt(self, token: str, *, context: str) -> bytes:
        """Decrypt what ``encrypt`` produced under the same context.

        Raises:
            DecryptionError: wrong key, wrong context or altered data.
        """
        try:
            version, body = token.encode().split(b".", 1)
            if version != _VERSION:
                raise DecryptionError()
            raw = base64.urlsafe_b64decode(body)
            return self._aead.decrypt(raw[:12], raw[12:], context.encode())
        except (ValueError, InvalidTag) as exc:
            raise DecryptionError() from exc

    def keyed_hash(self, value: str, *, purpose: str) -> str:
        """Return a hex HMAC-SHA256 of ``value`` for look-ups without the plaintext."""
        key = self._hash_keys.get(purpose)
        if key is None:
            key = self._hash_keys[purpose] = _subkey(self._master, f"idp/hash/{purpose}")
        return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def sha256_hex(value: str) -> str:
    """Hash a high-entropy random token (session cookies, codes, refresh tokens) for storage."""
    return hashlib.sha256(value.encode()).hexdigest()
