"""Access tokens (RFC 9068 JWTs) and ID tokens (OIDC Core §2): signing and verifying."""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any

from authlib.oidc.core.util import create_half_hash
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from idp.clock import epoch
from idp.errors import IdpError
from idp.oidc.keys import SUPPORTED_ALGS
from idp.oidc.keys import KeyRing

ACCESS_TOKEN_TYP = "at+jwt"
SECURITY_EVENT_TYP = "secevent+jwt"
# Clocks of other instances may run a little ahead.
_IAT_LEEWAY = 30
# Resource servers introspect the same token on every call; its signature need be checked once.
_VERIFIED_CACHE_SIZE = 10_000


class InvalidAccessTokenError(IdpError):
    code = "invalid_token"
    message = "The access token is invalid or expired."


@dataclass(frozen=True)
class Authentication:
    """How and when the user authenticated: carried from the session into every token."""

    sub: str
    sid: str | None
    auth_time: datetime
    acr: str
    amr: tuple[str, ...]
    # A transaction confirmed on the phone (RFC 9396) and its evidence (the "txn" claim of
    # RFC 8417 §2.2, which names the evidence the IdP keeps).
    authorization_details: list[dict[str, Any]] | None = None
    txn: str | None = None
    # What ties the evidence to this token: the RFC 7638 thumbprint of the phone key that
    # signed the confirmation and the SHA-256 of that signed answer. With the IdP's signature
    # over them, an archived confirmation cannot be swapped for one signed by another key.
    txn_evidence: dict[str, str] | None = None

    def transaction_claims(self) -> dict[str, Any]:
        if not self.txn:
            return {}
        claims: dict[str, Any] = {
            "authorization_details": self.authorization_details,
            "txn": self.txn,
        }
        if self.txn_evidence:
            claims["txn_evidence"] = self.txn_evidence
        return claims


@dataclass(frozen=True)
class IssuedAccessToken:
    token: str
    jti: str
    expires_at: datetime


class TokenSigner:
    def __init__(self, keyring: KeyRing, *, issuer: str, access_ttl: int, id_ttl: int) -> None:
        self._keyring = keyring
        self._issuer = issuer
        self._access_ttl = access_ttl
        self._id_ttl = id_ttl
        self._verified: OrderedDict[bytes, dict[str, Any]] = OrderedDict()
        self._verified_under: object = None
        self._verified_lock = threading.Lock()

    @property
    def access_ttl(self) -> int:
        return self._access_ttl

    def issue_access_token(
        self,
        *,
        client_id: str,
        scope: str,
        now: datetime,
        auth: Authentication | None,
        alg: str = "ES256",
        extra: dict[str, Any] | None = None,
        jkt: str | None = None,
    ) -> IssuedAccessToken:
        """Sign an RFC 9068 access token; without ``auth`` the client is the subject.
        ``extra`` claims (roles) describe the user and never override the registered ones;
        ``jkt`` binds the token to a DPoP key (RFC 9449 §6.1)."""
        jti = secrets.token_urlsafe(24)
        expires_at = now + timedelta(seconds=self._access_ttl)
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "exp": epoch(expires_at),
            "iat": epoch(now),
            "jti": jti,
            "client_id": client_id,
            # RFC 9068 §3: the resource is not named by the request, so the audience is the
            # client (and, for user tokens, the IdP's own userinfo endpoint accepts it).
            "aud": client_id,
            "scope": scope,
        }
        if auth is None:
            # RFC 9068 §2.2: without a resource owner, sub identifies the client.
            claims["sub"] = client_id
        else:
            claims["sub"] = auth.sub
            claims["auth_time"] = epoch(auth.auth_time)
            claims["acr"] = auth.acr
            claims["amr"] = list(auth.amr)
            if auth.sid:
                claims["sid"] = auth.sid
            claims |= auth.transaction_claims()
        if jkt is not None:
            # RFC 9449 §6.1: the RFC 7638 thumbprint of the key every use must prove.
            claims["cnf"] = {"jkt": jkt}
        claims = (extra or {}) | claims
        token = self._sign(claims, alg=alg, typ=ACCESS_TOKEN_TYP)
        return IssuedAccessToken(token=token, jti=jti, expires_at=expires_at)

    def issue_id_token(
        self,
        *,
        client_id: str,
        auth: Authentication,
        now: datetime,
        nonce: str | None,
        access_token: str | None,
        claims: dict[str, Any],
        alg: str,
    ) -> str:
        """Sign an ID token with the claims of OIDC Core §2 and §3.1.3.6."""
        body: dict[str, Any] = dict(claims)
        body.update(
            {
                "iss": self._issuer,
                "sub": auth.sub,
                "aud": client_id,
                "azp": client_id,
                "exp": epoch(now + timedelta(seconds=self._id_ttl)),
                "iat": epoch(now),
                "auth_time": epoch(auth.auth_time),
                "acr": auth.acr,
                "amr": list(auth.amr),
            }
        )
        if auth.sid:
            body["sid"] = auth.sid
        body |= auth.transaction_claims()
        if nonce:
            body["nonce"] = nonce
        if access_token:
            body["at_hash"] = half_hash(access_token, alg)
        return self._sign(body, alg=alg, typ="JWT")

    def issue_logout_token(
        self, *, client_id: str, sub: str, sid: str, jti: str, now: datetime, alg: str
    ) -> str:
        """Sign a logout token (OIDC Back-Channel Logout 1.0 §2.4): never a nonce, always the
        logout event, explicitly typed so it cannot pass for an ID token (§2.4, RFC 8725)."""
        claims = {
            "iss": self._issuer,
            "aud": client_id,
            "iat": epoch(now),
            "exp": epoch(now + timedelta(minutes=2)),
            "jti": jti,
            "sub": sub,
            "sid": sid,
            "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
        }
        return self._sign(claims, alg=alg, typ="logout+jwt")

    def issue_security_event(
        self,
        *,
        client_id: str,
        sub: str,
        jti: str,
        txn: str,
        event_type: str,
        event: dict[str, Any],
        now: datetime,
        alg: str,
    ) -> str:
        """Sign a Security Event Token (RFC 8417) carrying one event about a user.

        The SET profile of SSF 1.0 keeps it from passing for another JWT (RFC 8417 §4.5-4.6):
        explicitly typed ``secevent+jwt`` (RFC 8417 §2.3), the subject in ``sub_id`` (RFC 9493
        ``iss_sub``) and never ``sub``, and no ``exp``: a SET states that something happened
        and grants nothing, so it has nothing to expire, and without ``exp`` and ``sub`` no ID
        token or access token validator accepts it.
        """
        claims = {
            "iss": self._issuer,
            "iat": epoch(now),
            "jti": jti,
            "aud": client_id,
            # SSF 1.0: the same txn on every SET sent for one underlying change.
            "txn": txn,
            "sub_id": {"format": "iss_sub", "iss": self._issuer, "sub": sub},
            "events": {event_type: event},
        }
        return self._sign(claims, alg=alg, typ=SECURITY_EVENT_TYP)

    def verify_access_token(self, token: str, *, now: datetime) -> dict[str, Any]:
        """Verify signature, type, issuer and lifetime of one of our access tokens.

        RFC 8725 §3.1: only the algorithms we sign with, never ``none``; §3.11: the ``typ``
        header keeps an ID token from passing as an access token.

        Raises:
            InvalidAccessTokenError
        """
        claims = self._signature_checked(token)
        now_s = epoch(now)
        if claims.get("iss") != self._issuer:
            raise InvalidAccessTokenError()
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int) or not isinstance(iat, int):
            raise InvalidAccessTokenError()
        if exp <= now_s or iat > now_s + _IAT_LEEWAY:
            raise InvalidAccessTokenError()
        for name in ("sub", "client_id", "jti", "scope"):
            if not isinstance(claims.get(name), str):
                raise InvalidAccessTokenError()
        return claims

    def _signature_checked(self, token: str) -> dict[str, Any]:
        """Claims of a token whose signature and type were verified, remembered by the
        token's SHA-256 per key set (a key leaving the JWKS forgets everything it vouched
        for), the most recently used first kept. Expiry is checked by the caller on every
        use, so an entry serves for the token's remaining life at most."""
        snapshot = self._keyring.snapshot
        digest = hashlib.sha256(token.encode()).digest()
        with self._verified_lock:
            if self._verified_under is not snapshot:
                self._verified = OrderedDict()
                self._verified_under = snapshot
            claims = self._verified.get(digest)
            if claims is not None:
                self._verified.move_to_end(digest)
        if claims is None:
            claims = decode_verified(token, snapshot.verifying, expected_typ=ACCESS_TOKEN_TYP)
            with self._verified_lock:
                if self._verified_under is snapshot:
                    self._verified[digest] = claims
                    if len(self._verified) > _VERIFIED_CACHE_SIZE:
                        self._verified.popitem(last=False)
        return dict(claims)  # callers may add to it; the cached one stays as verified

    def verify_own_id_token(self, token: str) -> dict[str, Any]:
        """Verify an ID token we issued, ignoring its expiry (``id_token_hint`` at logout).

        Raises:
            InvalidAccessTokenError
        """
        claims = decode_verified(token, self._keyring.snapshot.verifying, expected_typ="JWT")
        if claims.get("iss") != self._issuer or not isinstance(claims.get("sub"), str):
            raise InvalidAccessTokenError()
        return claims

    def _sign(self, claims: dict[str, Any], *, alg: str, typ: str) -> str:
        kid, key = self._keyring.snapshot.signing[alg]
        return jwt.encode({"alg": alg, "kid": kid, "typ": typ}, claims, key, algorithms=[alg])


def decode_verified(token: str, keys: KeySet, *, expected_typ: str) -> dict[str, Any]:
    if not token or token.count(".") != 2 or len(token) > 8192:
        raise InvalidAccessTokenError()
    try:
        decoded = jwt.decode(token, keys, algorithms=list(SUPPORTED_ALGS))
    except (JoseError, ValueError) as exc:
        raise InvalidAccessTokenError() from exc
    if decoded.header.get("typ") != expected_typ:
        raise InvalidAccessTokenError()
    return dict(decoded.claims)


def half_hash(value: str, alg: str) -> str:
    """OIDC Core §3.1.3.6 at_hash: left half of the SHA-256, base64url (ES256 and RS256)."""
    result = create_half_hash(value, alg)
    assert result is not None  # noqa: S101 - defined for both of our algorithms
    return str(result.decode("ascii"))
