"""A client's registered public keys (RFC 7591 ``jwks`` / ``jwks_uri``), which verify its client
assertions (private_key_jwt) and its request objects (RFC 9101).

Keys given by URI are fetched with a short timeout and cached in process; a token naming a
``kid`` the cache does not know triggers one early refetch (the client rotated), at most every
``_REFETCH_AFTER`` seconds, so unknown ``kid`` values cannot make us hammer its server; a
failed fetch is not tried again for as long.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any

import requests
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from joserfc.jwk import GuestProtocol
from joserfc.jwk import KeySet
from joserfc.jwk import RSAKey

if TYPE_CHECKING:
    from idp.oidc.clients import RegisteredClient

_FETCH_TIMEOUT = 5.0
_CACHE_FOR = 300.0
_REFETCH_AFTER = 30.0
_MAX_BODY = 64 * 1024
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "k"})


class InvalidClientKeysError(Exception):
    """The client's keys are missing, unreachable or not acceptable public keys."""


def import_public_jwks(value: Any) -> KeySet:
    """A JWK Set of public EC P-256 or RSA (2048 bits or more) signing keys.

    Raises:
        InvalidClientKeysError
    """
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list) or not value["keys"]:
        raise InvalidClientKeysError("jwks must be a JWK Set with at least one key.")
    for jwk in value["keys"]:
        if not isinstance(jwk, dict) or _PRIVATE_MEMBERS & set(jwk):
            # A private key sent to us is a private key leaked.
            raise InvalidClientKeysError("jwks must hold public keys only.")
        if jwk.get("use", "sig") != "sig":
            raise InvalidClientKeysError("jwks keys must be signing keys (use=sig).")
    try:
        keys = KeySet.import_key_set(value)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise InvalidClientKeysError("jwks is not a valid JWK Set.") from exc
    for key in keys:
        if isinstance(key, ECKey) and key.curve_name == "P-256":
            continue
        if isinstance(key, RSAKey) and key.raw_value.key_size >= 2048:
            continue
        raise InvalidClientKeysError("jwks keys must be EC P-256 or RSA of 2048 bits or more.")
    return keys


class ClientKeys:
    """The keys of each client, from its registration or its ``jwks_uri``."""

    def __init__(self, *, refetch_after: float = _REFETCH_AFTER) -> None:
        self._refetch_after = refetch_after
        self._cache: dict[str, tuple[KeySet, float, float]] = {}
        # When each failing jwks_uri last failed: anyone can send an assertion naming a
        # client, and each would otherwise cost an outgoing request and a worker waiting.
        self._failed: dict[str, float] = {}
        self._lock = threading.Lock()

    def of(self, client: RegisteredClient, *, refresh: bool = False) -> KeySet:
        """The client's key set; ``refresh`` asks for a fresh copy of a fetched set.

        Raises:
            InvalidClientKeysError
        """
        if client.jwks is not None:
            return import_public_jwks(client.jwks)
        if client.jwks_uri is None:
            raise InvalidClientKeysError("The client has registered no keys.")
        uri = client.jwks_uri
        now = time.monotonic()
        cached = self._cache.get(uri)
        if cached is not None:
            keys, expires, fetched = cached
            fresh_enough = not refresh or now - fetched < self._refetch_after
            if expires > now and fresh_enough:
                return keys
        failed = self._failed.get(uri)
        if failed is not None and now - failed < self._refetch_after:
            if cached is not None and cached[1] > now:
                return cached[0]
            raise InvalidClientKeysError("The client's jwks_uri failed a moment ago.")
        try:
            keys = self._fetch(uri)
        except InvalidClientKeysError:
            with self._lock:
                if len(self._failed) > 1000:
                    self._failed.clear()
                self._failed[uri] = now
            raise
        with self._lock:
            if len(self._cache) > 1000:
                self._cache.clear()
            self._cache[uri] = (keys, now + _CACHE_FOR, now)
            self._failed.pop(uri, None)
        return keys

    def resolver(self, client: RegisteredClient) -> Callable[[GuestProtocol], KeySet]:
        """For joserfc's ``decode``: the client's keys, looked up again once when the token
        names a ``kid`` they lack (the client rotated its keys).

        The resolver raises InvalidClientKeysError when the keys cannot be had.
        """

        def resolve(token: GuestProtocol) -> KeySet:
            keys = self.of(client)
            kid = token.headers().get("kid")
            if isinstance(kid, str) and not any(key.kid == kid for key in keys):
                keys = self.of(client, refresh=True)
            return keys

        return resolve

    def _fetch(self, uri: str) -> KeySet:
        try:
            with requests.get(
                uri,
                timeout=_FETCH_TIMEOUT,
                allow_redirects=False,
                headers={"Accept": "application/json"},
                stream=True,
            ) as response:
                response.raise_for_status()
                body = json.loads(_read_capped(response))
        except (requests.RequestException, ValueError) as exc:
            raise InvalidClientKeysError("The client's jwks_uri could not be read.") from exc
        return import_public_jwks(body)


def _read_capped(response: requests.Response) -> bytes:
    """The body, read as it arrives: requests' timeout bounds each read, not the whole, so a
    server dripping bytes (or sending without end) would hold this worker and its memory.

    Raises:
        InvalidClientKeysError: too large or too slow.
    """
    deadline = time.monotonic() + _FETCH_TIMEOUT
    body = bytearray()
    for chunk in response.iter_content(chunk_size=8192):
        body += chunk
        if len(body) > _MAX_BODY:
            raise InvalidClientKeysError("The client's JWK Set is too large.")
        if time.monotonic() > deadline:
            raise InvalidClientKeysError("The client's jwks_uri answers too slowly.")
    return bytes(body)
