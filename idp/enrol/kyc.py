"""Identity proofing at Paotang: the IdP is its OpenID client (code flow, S256 PKCE, a
``claims`` request for verified claims), and believes an answer only after checking its
signature, issuer, audience, nonce and freshness (OpenID Connect for Identity Assurance 1.0).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import Protocol
from urllib.parse import urlencode

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from idp.enrol.errors import KycResponseInvalidError
from idp.enrol.errors import KycUnavailableError

# What we ask Paotang for: the verified names and birth date, with the verification record.
VERIFIED_CLAIMS_REQUEST = {
    "id_token": {
        "verified_claims": {
            "verification": {"trust_framework": None, "time": None, "evidence": None},
            "claims": {
                "given_name": None,
                "family_name": None,
                "given_name#en": None,
                "family_name#en": None,
            },
        }
    }
}
# An answer older than this was not produced for the attempt under way.
_MAX_AGE = 300
# The verification itself must be this recent: a proofing done years ago proves little now.
_MAX_VERIFICATION_AGE = 3600
# OIDC4IDA check methods: card data against the registry, and the face (biometric, remote).
REQUIRED_CHECKS = frozenset({"data", "bvr"})
_LEEWAY = 30
_JWKS_TTL = 300.0


@dataclass(frozen=True)
class VerifiedIdentity:
    """What Paotang vouched for, reduced to what registration needs."""

    citizen_id: str
    given_name_th: str
    family_name_th: str
    given_name_en: str
    family_name_en: str
    trust_framework: str
    verified_at: datetime
    check_methods: tuple[str, ...]
    transaction: str


class KycProvider(Protocol):
    def check_available(self) -> None:
        """Raises KycUnavailableError when Paotang does not answer now."""
        ...

    def authorization_url(self, *, state: str, nonce: str, verifier: str) -> str: ...

    def redeem(self, *, code: str, verifier: str, nonce: str) -> VerifiedIdentity:
        """Exchange a code and verify the answer.

        Raises:
            KycUnavailableError, KycResponseInvalidError
        """
        ...


class HttpKycProvider:
    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        timeout: float,
        trust_framework: str,
    ) -> None:
        self._issuer = issuer
        self._client_id = client_id
        self._client_secret = client_secret
        self._redirect_uri = redirect_uri
        self._timeout = timeout
        self._trust_framework = trust_framework
        self._jwks: tuple[KeySet, float] | None = None
        self._lock = threading.Lock()

    def check_available(self) -> None:
        # Sending the user to a Paotang that is down would strand them on its error page.
        try:
            response = requests.get(
                f"{self._issuer}/.well-known/openid-configuration", timeout=self._timeout
            )
        except requests.RequestException as exc:
            raise KycUnavailableError() from exc
        if response.status_code != 200:
            raise KycUnavailableError()

    def authorization_url(self, *, state: str, nonce: str, verifier: str) -> str:
        query = {
            "response_type": "code",
            "client_id": self._client_id,
            "redirect_uri": self._redirect_uri,
            "scope": "openid",
            "state": state,
            "nonce": nonce,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
            "claims": json.dumps(VERIFIED_CLAIMS_REQUEST, separators=(",", ":")),
        }
        return f"{self._issuer}/authorize?{urlencode(query)}"

    def redeem(self, *, code: str, verifier: str, nonce: str) -> VerifiedIdentity:
        client = OAuth2Session(
            self._client_id,
            self._client_secret,
            redirect_uri=self._redirect_uri,
            token_endpoint_auth_method="client_secret_basic",  # noqa: S106 - a method name
            default_timeout=self._timeout,
        )
        try:
            token = client.fetch_token(
                f"{self._issuer}/token",
                grant_type="authorization_code",
                code=code,
                code_verifier=verifier,
            )
        except (requests.RequestException, OSError, ValueError) as exc:
            # Timeouts, refused connections, and 5xx pages that are not JSON.
            raise KycUnavailableError() from exc
        except OAuthError as exc:
            if exc.error in ("temporarily_unavailable", "server_error"):
                raise KycUnavailableError() from exc
            raise KycResponseInvalidError() from exc
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise KycResponseInvalidError()
        return self._verify(id_token, nonce=nonce)

    def _verify(self, id_token: str, *, nonce: str) -> VerifiedIdentity:
        claims = self._decode(id_token)
        now = time.time()
        if claims.get("iss") != self._issuer:
            raise KycResponseInvalidError()
        # OIDC Core §3.1.3.7: we are the audience, and the authorized party when there are others.
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self._client_id not in audiences:
            raise KycResponseInvalidError()
        if (len(audiences) > 1 or "azp" in claims) and claims.get("azp") != self._client_id:
            raise KycResponseInvalidError()
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise KycResponseInvalidError()
        # SECURITY: the nonce binds the answer to this attempt; a replayed answer carries
        # another one.
        if claims.get("nonce") != nonce:
            raise KycResponseInvalidError()
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int) or not isinstance(iat, int):
            raise KycResponseInvalidError()
        if exp + _LEEWAY < now or iat > now + _LEEWAY or iat < now - _MAX_AGE:
            raise KycResponseInvalidError()
        identity = _identity(claims)
        # The verification must be of the kind we rely on, and recent.
        if identity.trust_framework != self._trust_framework:
            raise KycResponseInvalidError()
        if not set(identity.check_methods) >= REQUIRED_CHECKS:
            raise KycResponseInvalidError()
        if not now - _MAX_VERIFICATION_AGE <= identity.verified_at.timestamp() <= now + _LEEWAY:
            raise KycResponseInvalidError()
        return identity

    def _decode(self, id_token: str) -> dict[str, Any]:
        for refresh in (False, True):
            keys = self._keys(refresh=refresh)
            try:
                return dict(jwt.decode(id_token, keys, algorithms=["ES256", "RS256"]).claims)
            except JoseError as exc:
                # An unknown kid may be a key Paotang rotated in: fetch once more, then refuse.
                if refresh:
                    raise KycResponseInvalidError() from exc
            except ValueError as exc:
                raise KycResponseInvalidError() from exc
        raise KycResponseInvalidError()

    def _keys(self, *, refresh: bool) -> KeySet:
        with self._lock:
            cached = self._jwks
            if cached is not None and not refresh and cached[1] > time.monotonic():
                return cached[0]
            try:
                response = requests.get(f"{self._issuer}/jwks.json", timeout=self._timeout)
                response.raise_for_status()
                keys = KeySet.import_key_set(response.json())
            except (requests.RequestException, ValueError) as exc:
                raise KycUnavailableError() from exc
            self._jwks = (keys, time.monotonic() + _JWKS_TTL)
            return keys


def _identity(claims: dict[str, Any]) -> VerifiedIdentity:
    try:
        verified = claims["verified_claims"]
        verification = verified["verification"]
        person = verified["claims"]
        [evidence] = [
            e
            for e in verification["evidence"]
            if isinstance(e, dict) and e.get("type") == "document"
        ]
        number = evidence["document_details"]["personal_number"]
        return VerifiedIdentity(
            citizen_id=str(number),
            given_name_th=str(person.get("given_name", "")),
            family_name_th=str(person.get("family_name", "")),
            given_name_en=str(person.get("given_name#en", "")),
            family_name_en=str(person.get("family_name#en", "")),
            trust_framework=str(verification["trust_framework"]),
            verified_at=datetime.fromisoformat(str(verification["time"]).replace("Z", "+00:00")),
            check_methods=tuple(str(c["check_method"]) for c in evidence.get("check_details", [])),
            transaction=str(claims.get("txn", "")),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise KycResponseInvalidError() from exc
