"""The portal as a relying party of the IdP, over HTTP only: discovery, the authorization code
flow with PKCE (Authlib's requests client), and the checks of every token the IdP sends
(ID tokens, access tokens, logout tokens, security event tokens) with joserfc and the JWKS."""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from gfms_portal.errors import IdpUnavailableError
from gfms_portal.errors import InvalidTokenError

ALGORITHMS = ["ES256", "RS256"]  # RFC 8725 §3.1: what the IdP signs with, never "none"
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
_JWKS_MIN_REFRESH = 10.0
# OIDC Core §5.5: the person's name and unit in the ID token itself, so that a signature's
# ID token names its signer under the IdP's signature (the archive shows who signed).
ID_TOKEN_CLAIMS = json.dumps(
    {"id_token": {"name": None, "preferred_username": None, "gfms_unit": None}},
    separators=(",", ":"),
)


@dataclass(frozen=True)
class AuthorizationStart:
    url: str
    state: str
    nonce: str
    code_verifier: str


class IdpClient:
    def __init__(self, *, issuer: str, client_id: str, client_secret: str, redirect_uri: str,
                 timeout: float, leeway: int) -> None:  # fmt: skip
        self.issuer = issuer
        self.client_id = client_id
        self._secret = client_secret
        self.redirect_uri = redirect_uri
        self._timeout = timeout
        self._leeway = leeway
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._keys_fetched = 0.0

    # --- HTTP ---------------------------------------------------------------------------------

    def _get(self, url: str, **kwargs: Any) -> requests.Response:
        try:
            return requests.get(url, timeout=self._timeout, **kwargs)
        except requests.RequestException as exc:
            raise IdpUnavailableError(str(exc)) from exc

    def metadata(self) -> dict[str, Any]:
        """Discovery (OIDC Discovery 1.0 §4), fetched once; its issuer must be ours (§4.3)."""
        if self._metadata is None:
            answer = self._get(f"{self.issuer}/.well-known/openid-configuration")
            if answer.status_code != 200:
                raise IdpUnavailableError(f"discovery answered {answer.status_code}")
            metadata = answer.json()
            if metadata.get("issuer") != self.issuer:
                raise IdpUnavailableError("discovery names another issuer")
            self._metadata = dict(metadata)
        return self._metadata

    def jwks(self, *, refresh: bool = False) -> KeySet:
        with self._lock:
            stale = time.monotonic() - self._keys_fetched > _JWKS_MIN_REFRESH
            if self._keys is None or (refresh and stale):
                answer = self._get(self.metadata()["jwks_uri"])
                if answer.status_code != 200:
                    raise IdpUnavailableError(f"JWKS answered {answer.status_code}")
                self._keys = KeySet.import_key_set(answer.json())
                self._keys_fetched = time.monotonic()
            return self._keys

    def key_history_document(self) -> dict[str, Any]:
        """Every key the IdP ever signed with, with its period (archived with every bundle,
        for the record): discovery's ``signing_key_history_uri``."""
        answer = self._get(self.metadata()["signing_key_history_uri"])
        if answer.status_code != 200:
            raise IdpUnavailableError(f"key history answered {answer.status_code}")
        return dict(answer.json())

    def _oauth(self, **kwargs: Any) -> OAuth2Session:
        return OAuth2Session(
            self.client_id,
            self._secret,
            token_endpoint_auth_method="client_secret_basic",  # noqa: S106 - a method name
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",  # RFC 7636: S256 only
            default_timeout=self._timeout,
            **kwargs,
        )

    # --- the code flow ------------------------------------------------------------------------

    def start_authorization(
        self, *, scope: str, authorization_details: list[dict[str, Any]] | None = None
    ) -> AuthorizationStart:
        """Build the authorization request (code flow, PKCE S256, state, nonce; RFC 9396
        ``authorization_details`` to confirm one transaction)."""
        endpoint = self.metadata()["authorization_endpoint"]
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        extra: dict[str, str] = {"nonce": nonce, "claims": ID_TOKEN_CLAIMS}
        if authorization_details is not None:
            extra["authorization_details"] = json.dumps(
                authorization_details, separators=(",", ":"), ensure_ascii=False
            )
        url, _ = self._oauth(scope=scope).create_authorization_url(
            endpoint, state=state, code_verifier=verifier, **extra
        )
        return AuthorizationStart(str(url), state, nonce, verifier)

    def exchange_code(self, code: str, *, code_verifier: str) -> dict[str, Any]:
        """Redeem the code at the token endpoint (client_secret_basic, the PKCE verifier).

        Raises:
            IdpUnavailableError, InvalidTokenError
        """
        try:
            token = self._oauth().fetch_token(
                self.metadata()["token_endpoint"],
                grant_type="authorization_code",
                code=code,
                code_verifier=code_verifier,
            )
        except OAuthError as exc:
            raise InvalidTokenError(f"token endpoint: {exc.error}") from exc
        except requests.RequestException as exc:
            raise IdpUnavailableError(str(exc)) from exc
        return dict(token)

    def logout_url(self, id_token: str, post_logout_redirect_uri: str) -> str:
        endpoint = self.metadata().get("end_session_endpoint", f"{self.issuer}/logout")
        return (
            f"{endpoint}?id_token_hint={quote(id_token)}"
            f"&post_logout_redirect_uri={quote(post_logout_redirect_uri, safe='')}"
            f"&client_id={quote(self.client_id)}"
        )

    def introspect(self, token: str) -> dict[str, Any]:
        """RFC 7662: ask the IdP whether a token is active now (a revocation shows at once).

        Raises:
            IdpUnavailableError
        """
        try:
            answer = requests.post(
                self.metadata()["introspection_endpoint"],
                data={"token": token},
                auth=(quote(self.client_id, safe=""), quote(self._secret, safe="")),
                timeout=self._timeout,
            )
        except requests.RequestException as exc:
            raise IdpUnavailableError(str(exc)) from exc
        if answer.status_code != 200:
            raise IdpUnavailableError(f"introspection answered {answer.status_code}")
        return dict(answer.json())

    def userinfo(self, access_token: str, *, sub: str) -> dict[str, Any]:
        """The claims userinfo releases for the token's scope (OIDC Core §5.3), where the
        names are when an access token was issued (§5.4).

        Raises:
            IdpUnavailableError, InvalidTokenError
        """
        answer = self._get(self.metadata()["userinfo_endpoint"],
                           headers={"Authorization": f"Bearer {access_token}"})  # fmt: skip
        if answer.status_code == 401:
            raise InvalidTokenError("userinfo refused the token")
        if answer.status_code != 200:
            raise IdpUnavailableError(f"userinfo answered {answer.status_code}")
        claims = dict(answer.json())
        # SECURITY: OIDC Core §5.3.2: userinfo about another subject is not this user's
        # (token substitution).
        if claims.get("sub") != sub:
            raise InvalidTokenError("userinfo about another subject")
        return claims

    def get_evidence(self, txn: str) -> dict[str, Any]:
        """The evidence of a confirmed transaction (client_secret_basic).

        Raises:
            IdpUnavailableError, InvalidTokenError
        """
        answer = self._get(
            f"{self.issuer}/evidence/{quote(txn, safe='')}",
            auth=(quote(self.client_id, safe=""), quote(self._secret, safe="")),
        )
        if answer.status_code == 404:
            raise InvalidTokenError("no evidence for this transaction")
        if answer.status_code != 200:
            raise IdpUnavailableError(f"evidence answered {answer.status_code}")
        return dict(answer.json())

    # --- token checks -------------------------------------------------------------------------

    def _decode(self, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Signature by a published key; header and claims (not yet checked)."""
        for refresh in (False, True):
            try:
                decoded = jwt.decode(token, self.jwks(refresh=refresh), algorithms=ALGORITHMS)
            except (JoseError, ValueError) as exc:
                # A key we have not seen yet may have been rotated in: fetch once more.
                if refresh:
                    raise InvalidTokenError("bad signature") from exc
                continue
            return dict(decoded.header), dict(decoded.claims)
        raise InvalidTokenError("bad signature")  # pragma: no cover

    def _check_times(self, claims: dict[str, Any], *, now: float, needs_exp: bool) -> None:
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(iat, int) or iat > now + self._leeway:
            raise InvalidTokenError("iat missing or in the future")
        if needs_exp and (not isinstance(exp, int) or exp <= now - self._leeway):
            raise InvalidTokenError("expired")

    def _check_audience(self, claims: dict[str, Any]) -> None:
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if self.client_id not in audiences:
            raise InvalidTokenError("for another audience")
        # OIDC Core §3.1.3.7 (4)-(5): several audiences need an azp naming us.
        if len(audiences) > 1 and claims.get("azp") != self.client_id:
            raise InvalidTokenError("azp is not this client")

    def _issued_to_us(
        self, token: str, *, typs: tuple[str | None, ...], now: float, needs_exp: bool
    ) -> dict[str, Any]:
        """Signature by a published key, the explicit type (RFC 8725 §3.11: one kind of JWT
        never passes for another), our issuer, our audience, sane times."""
        header, claims = self._decode(token)
        typ = header.get("typ")
        if (typ.lower() if isinstance(typ, str) else typ) not in typs:
            raise InvalidTokenError("another kind of token")
        if claims.get("iss") != self.issuer:
            raise InvalidTokenError("another issuer")
        self._check_audience(claims)
        self._check_times(claims, now=now, needs_exp=needs_exp)
        return claims

    def validate_id_token(self, token: str, *, nonce: str, now: float) -> dict[str, Any]:
        """OIDC Core §3.1.3.7: signature, iss, aud, exp, iat, nonce.

        Raises:
            InvalidTokenError
        """
        claims = self._issued_to_us(token, typs=(None, "jwt"), now=now, needs_exp=True)
        # SECURITY: the nonce ties the token to this browser's request (replay, injection).
        if not nonce or claims.get("nonce") != nonce:
            raise InvalidTokenError("nonce mismatch")
        if not isinstance(claims.get("sub"), str):
            raise InvalidTokenError("no sub")
        return claims

    def validate_access_token(self, token: str, *, now: float) -> dict[str, Any]:
        """RFC 9068 §4: typ at+jwt, iss, aud is this portal, not expired.

        Raises:
            InvalidTokenError
        """
        typs: tuple[str | None, ...] = ("at+jwt", "application/at+jwt")
        return self._issued_to_us(token, typs=typs, now=now, needs_exp=True)

    def validate_logout_token(self, token: str, *, now: float) -> dict[str, Any]:
        """OIDC Back-Channel Logout 1.0 §2.6.

        Raises:
            InvalidTokenError
        """
        # Back-Channel Logout 1.0 §2.4: exp is required of a logout token.
        claims = self._issued_to_us(token, typs=(None, "logout+jwt"), now=now, needs_exp=True)
        events = claims.get("events")
        if not isinstance(events, dict) or BACKCHANNEL_LOGOUT_EVENT not in events:
            raise InvalidTokenError("no logout event")
        if not (isinstance(claims.get("sid"), str) or isinstance(claims.get("sub"), str)):
            raise InvalidTokenError("neither sid nor sub")
        if "nonce" in claims:  # §2.6 (7): so it cannot be an ID token
            raise InvalidTokenError("a nonce in a logout token")
        if not isinstance(claims.get("jti"), str):
            raise InvalidTokenError("no jti")
        return claims

    def validate_security_event(self, token: str, *, now: float) -> dict[str, Any]:
        """RFC 8417 and the SSF/CAEP profile: typ secevent+jwt, iss, aud, one event, sub_id.

        Raises:
            InvalidTokenError
        """
        claims = self._issued_to_us(token, typs=("secevent+jwt",), now=now, needs_exp=False)
        events = claims.get("events")
        sub_id = claims.get("sub_id")
        if not isinstance(events, dict) or len(events) != 1 or not isinstance(sub_id, dict):
            raise InvalidTokenError("malformed event")
        return claims
