"""The portal as a relying party of the IdP, over HTTP only, under the FAPI 2.0 Security
Profile: discovery, pushed authorization requests (RFC 9126) with PKCE S256, client
authentication with ``private_key_jwt`` (RFC 7523, Authlib's requests client), DPoP-bound access
tokens (RFC 9449), CIBA in poll mode, and the checks of every token the IdP sends (ID tokens,
access tokens, logout tokens, security event tokens) with joserfc and the JWKS."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote
from urllib.parse import urlencode

import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from authlib.oauth2.rfc7523 import private_key_jwt_sign
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
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


CIBA_GRANT_TYPE = "urn:openid:params:grant-type:ciba"
# How long a client assertion is good for: one request, with room for clock skew (the IdP
# takes at most 10 minutes).
_ASSERTION_TTL = 60


class _Assertion(PrivateKeyJWT):  # type: ignore[misc]  # Authlib is untyped
    """private_key_jwt (RFC 7523 §2.2) as FAPI 2.0 wants it: ``aud`` the issuer, a fresh
    ``jti`` and a short ``exp`` for every request. (Authlib's own keeps the ``jti`` it made
    in its ``claims`` and reuses it, which a server refuses as a replay.)"""

    alg = "ES256"

    def __init__(self, issuer: str) -> None:
        super().__init__()
        self._issuer = issuer

    def sign(self, auth: Any, token_endpoint: str) -> str:
        key: ECKey = auth.client_secret
        issued = int(time.time())
        return str(private_key_jwt_sign(
            key, client_id=auth.client_id, token_endpoint=self._issuer, alg=self.alg,
            claims={"iat": issued, "exp": issued + _ASSERTION_TTL,
                    "jti": secrets.token_urlsafe(24)},
            header={"kid": key.kid, "typ": "JWT"},
        ))  # fmt: skip


@dataclass(frozen=True)
class CibaStart:
    """CIBA Core §7.3: the request's id, its lifetime and the polling interval."""

    auth_req_id: str
    expires_in: int
    interval: int


class CibaPending(Exception):  # noqa: N818 - not an error: the phone has not answered yet
    """The token endpoint's ``authorization_pending`` or ``slow_down`` (CIBA Core §11)."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.slow_down = error == "slow_down"


class CibaEnded(Exception):  # noqa: N818 - the request's outcome, told to the approver
    """``access_denied`` or ``expired_token`` (or anything else final) from the token
    endpoint."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@dataclass(frozen=True)
class AuthorizationStart:
    url: str
    state: str
    nonce: str
    code_verifier: str


class IdpClient:
    def __init__(self, *, issuer: str, client_id: str, client_key: ECKey, client_secret: str,
                 redirect_uri: str, timeout: float, leeway: int) -> None:  # fmt: skip
        self.issuer = issuer
        self.client_id = client_id
        self._client_key = client_key
        # Only for GET /evidence, which takes client_secret_basic alone.
        self._secret = client_secret
        # RFC 9449: the key this process's access tokens are bound to. A token is used right
        # after it is issued (userinfo, introspection), never after a restart: one key per
        # process is enough, and it never leaves memory.
        self.dpop_key = ECKey.generate_key("P-256", parameters={"alg": "ES256"}, private=True)
        # RFC 9449 §8-9: the IdP's latest DPoP nonce, when it requires them (a stale one only
        # costs a retry).
        self._dpop_nonce: str | None = None
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
            self._client_key,
            token_endpoint_auth_method=_Assertion(self.issuer),
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",  # RFC 7636: S256 only
            default_timeout=self._timeout,
            **kwargs,
        )

    def _post(self, url: str, data: dict[str, str], **kwargs: Any) -> requests.Response:
        """A form POST authenticated with private_key_jwt (PAR, introspection, CIBA)."""
        session = self._oauth()
        auth = session.client_auth(session.token_endpoint_auth_method)
        try:
            return requests.post(url, data=data, auth=auth, timeout=self._timeout, **kwargs)
        except requests.RequestException as exc:
            raise IdpUnavailableError(str(exc)) from exc

    def dpop_proof(self, method: str, url: str, *, access_token: str | None = None) -> str:
        """A DPoP proof (RFC 9449 §4.2) for one request, signed by this process's key; with
        ``ath`` when it goes with an access token."""
        claims: dict[str, Any] = {
            "jti": secrets.token_urlsafe(24),
            "htm": method,
            "htu": url.split("?")[0].split("#")[0],
            "iat": int(time.time()),
        }
        if self._dpop_nonce is not None:
            claims["nonce"] = self._dpop_nonce
        if access_token is not None:
            digest = hashlib.sha256(access_token.encode("ascii")).digest()
            claims["ath"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.dpop_key.as_dict(private=False)}
        return jwt.encode(header, claims, self.dpop_key, algorithms=["ES256"])

    def _remember_nonce(self, answer: requests.Response) -> requests.Response:
        nonce = answer.headers.get("DPoP-Nonce")
        if nonce:
            self._dpop_nonce = nonce
        return answer

    def _fetch_token(self, **data: str) -> dict[str, Any]:
        """The token endpoint with private_key_jwt and a DPoP proof; the access token must come
        back bound to our key (``token_type`` DPoP)."""
        endpoint = self.metadata()["token_endpoint"]
        for retry in (False, True):
            session = self._oauth()
            session.register_compliance_hook("access_token_response", self._remember_nonce)
            headers = {"Accept": "application/json",
                       "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8",
                       "DPoP": self.dpop_proof("POST", endpoint)}  # fmt: skip
            try:
                token = session.fetch_token(endpoint, headers=headers, **data)
                break
            except OAuthError as exc:
                # RFC 9449 §8: the IdP wants its nonce in the proof: once more, with it.
                if exc.error != "use_dpop_nonce" or retry:
                    raise
        if str(token.get("token_type", "")).lower() != "dpop":
            raise InvalidTokenError("the access token is not bound to our key")
        return dict(token)

    # --- the code flow ------------------------------------------------------------------------

    def start_authorization(
        self, *, scope: str, authorization_details: list[dict[str, Any]] | None = None
    ) -> AuthorizationStart:
        """Push the authorization request (RFC 9126, private_key_jwt: code flow, PKCE S256,
        state, nonce; RFC 9396 ``authorization_details`` to confirm one transaction) and
        return where to send the browser: ``/authorize`` with only the ``request_uri``.

        Raises:
            IdpUnavailableError
        """
        metadata = self.metadata()
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        params: dict[str, str] = {
            "response_type": "code", "client_id": self.client_id,
            "redirect_uri": self.redirect_uri, "scope": scope, "state": state, "nonce": nonce,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256", "claims": ID_TOKEN_CLAIMS,
        }  # fmt: skip
        if authorization_details is not None:
            params["authorization_details"] = _json(authorization_details)
        answer = self._post(metadata["pushed_authorization_request_endpoint"], params)
        if answer.status_code != 201:
            raise IdpUnavailableError(
                f"pushed request answered {answer.status_code}: {_error_of(answer)}"
            )
        query = urlencode({"client_id": self.client_id,
                           "request_uri": str(answer.json()["request_uri"])})  # fmt: skip
        return AuthorizationStart(f"{metadata['authorization_endpoint']}?{query}", state, nonce,
                                  verifier)  # fmt: skip

    def exchange_code(self, code: str, *, code_verifier: str) -> dict[str, Any]:
        """Redeem the code at the token endpoint (private_key_jwt, a DPoP proof, the PKCE
        verifier).

        Raises:
            IdpUnavailableError, InvalidTokenError
        """
        try:
            return self._fetch_token(grant_type="authorization_code", code=code,
                                     redirect_uri=self.redirect_uri,
                                     code_verifier=code_verifier)  # fmt: skip
        except OAuthError as exc:
            raise InvalidTokenError(f"token endpoint: {exc.error}") from exc
        except requests.RequestException as exc:
            raise IdpUnavailableError(str(exc)) from exc

    # --- CIBA (poll mode) ---------------------------------------------------------------------

    def backchannel_authorize(
        self, *, scope: str, login_hint: str, binding_message: str,
        authorization_details: list[dict[str, Any]],
    ) -> CibaStart:  # fmt: skip
        """CIBA Core §7.1: ask the user's phone directly (private_key_jwt).

        Raises:
            IdpUnavailableError, CibaEnded (the IdP refused: unknown user, no phone, ...)
        """
        answer = self._post(self.metadata()["backchannel_authentication_endpoint"], {
            "scope": scope, "login_hint": login_hint, "binding_message": binding_message,
            "authorization_details": _json(authorization_details),
        })  # fmt: skip
        if answer.status_code in (400, 403, 429):
            raise CibaEnded(str(_error_of(answer)))
        if answer.status_code != 200:
            raise IdpUnavailableError(f"backchannel authentication answered {answer.status_code}")
        body = answer.json()
        return CibaStart(str(body["auth_req_id"]), int(body["expires_in"]),
                         int(body.get("interval") or 5))  # fmt: skip

    def poll_ciba(self, auth_req_id: str) -> dict[str, Any]:
        """CIBA Core §10.1: one poll of the token endpoint (private_key_jwt, DPoP).

        Raises:
            CibaPending, CibaEnded, IdpUnavailableError, InvalidTokenError
        """
        try:
            return self._fetch_token(grant_type=CIBA_GRANT_TYPE, auth_req_id=auth_req_id)
        except OAuthError as exc:
            if exc.error in ("authorization_pending", "slow_down"):
                raise CibaPending(str(exc.error)) from exc
            raise CibaEnded(str(exc.error)) from exc
        except requests.RequestException as exc:
            raise IdpUnavailableError(str(exc)) from exc

    def logout_url(self, id_token: str, post_logout_redirect_uri: str) -> str:
        endpoint = self.metadata().get("end_session_endpoint", f"{self.issuer}/logout")
        return (
            f"{endpoint}?id_token_hint={quote(id_token)}"
            f"&post_logout_redirect_uri={quote(post_logout_redirect_uri, safe='')}"
            f"&client_id={quote(self.client_id)}"
        )

    def introspect(self, token: str) -> dict[str, Any]:
        """RFC 7662: ask the IdP whether a token is active now (a revocation shows at once;
        private_key_jwt).

        Raises:
            IdpUnavailableError
        """
        answer = self._post(self.metadata()["introspection_endpoint"], {"token": token})
        if answer.status_code != 200:
            raise IdpUnavailableError(f"introspection answered {answer.status_code}")
        return dict(answer.json())

    def userinfo(self, access_token: str, *, sub: str) -> dict[str, Any]:
        """The claims userinfo releases for the token's scope (OIDC Core §5.3), where the
        names are when an access token was issued (§5.4).

        Raises:
            IdpUnavailableError, InvalidTokenError
        """
        endpoint = self.metadata()["userinfo_endpoint"]
        for retry in (False, True):
            # RFC 9449 §7.1: the bound token with a proof of our key for this request.
            proof = self.dpop_proof("GET", endpoint, access_token=access_token)
            answer = self._get(endpoint, headers={"Authorization": f"DPoP {access_token}",
                                                  "DPoP": proof})  # fmt: skip
            self._remember_nonce(answer)
            # RFC 9449 §9: a resource asking for its nonce: once more, with it.
            challenge = answer.headers.get("WWW-Authenticate", "")
            if retry or answer.status_code != 401 or "use_dpop_nonce" not in challenge:
                break
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
        """The evidence of a confirmed transaction (client_secret_basic: the one IdP endpoint
        that takes nothing else).

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

    def validate_id_token(self, token: str, *, nonce: str | None, now: float) -> dict[str, Any]:
        """OIDC Core §3.1.3.7: signature, iss, aud, exp, iat, nonce. ``nonce`` None: a CIBA
        ID token (CIBA Core §10.1.1: no nonce; the auth_req_id, redeemed once by this
        authenticated client, ties it to the request).

        Raises:
            InvalidTokenError
        """
        claims = self._issued_to_us(token, typs=(None, "jwt"), now=now, needs_exp=True)
        # SECURITY: the nonce ties the token to this browser's request (replay, injection).
        if nonce is None:
            if "nonce" in claims:
                raise InvalidTokenError("a nonce in a CIBA ID token")
        elif not nonce or claims.get("nonce") != nonce:
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


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _error_of(answer: requests.Response) -> str:
    try:
        return str(answer.json().get("error") or "invalid_request")
    except ValueError:
        return "invalid_request"
