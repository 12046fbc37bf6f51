"""Registered clients: registration, secrets, and an in-process cache for the hot paths."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from idp.audit.service import record
from idp.errors import IdpError
from idp.oidc.client_keys import InvalidClientKeysError
from idp.oidc.client_keys import import_public_jwks
from idp.oidc.models import Client
from idp.roles.assignments import ROLE_SCOPES
from idp.store.secrets import DataCipher

# What a client may ask for; anything else in a request is ignored (RFC 6749 §3.3).
STANDARD_SCOPES = ("openid", "profile", "email", "offline_access")
# The admin API acting as the signed-in user, within that user's administrative roles.
ADMIN_SCOPE = "admin"
SUPPORTED_SCOPES = (*STANDARD_SCOPES, *ROLE_SCOPES, ADMIN_SCOPE)
# OpenID Connect Client-Initiated Backchannel Authentication (CIBA Core 1.0 §10.1).
CIBA_GRANT_TYPE = "urn:openid:params:grant-type:ciba"
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials", CIBA_GRANT_TYPE)
# CIBA Core §5: push mode is not offered (FAPI-CIBA forbids it: tokens sent to the client
# unasked are tokens a forged notification endpoint could receive).
CIBA_DELIVERY_MODES = ("poll", "ping")
SECRET_METHODS = ("client_secret_basic", "client_secret_post")
# RFC 7523 §2.2 / OIDC Core §9: a JWT signed with one of the client's registered keys.
KEY_METHODS = ("private_key_jwt",)
# FAPI 2.0 Security Profile §5.4: only these (no RSA-PKCS1 v1.5, no HMAC, never "none"), for
# client assertions and request objects alike.
CLIENT_SIGNING_ALGS = ("ES256", "PS256")
# Scopes that only make sense with a user present.
USER_SCOPES = frozenset({*STANDARD_SCOPES, *ROLE_SCOPES, ADMIN_SCOPE})


_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def _is_allowed_uri(uri: str) -> bool:
    """https, or http on this machine (RFC 8252 §7.3); the host is parsed, never matched as a
    prefix ("http://127.0.0.1.example.net/" is not loopback)."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    if parts.fragment or "#" in uri or not parts.hostname:
        return False
    if parts.username is not None or parts.password is not None:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS)


class ClientRegistrationError(IdpError):
    code = "invalid_client_metadata"


def hash_client_secret(cipher: DataCipher, secret: str) -> str:
    # Client secrets are 256-bit random values, so a keyed hash is enough and it is fast; a
    # password hash (argon2) on every token request would cost more than the token itself.
    return cipher.keyed_hash(secret, purpose="client_secret")


def generate_client_secret() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class RegisteredClient:
    """An immutable view of a client, implementing what Authlib's ClientMixin asks for."""

    client_id: str
    client_name: str
    secret_hash: str | None
    auth_methods: tuple[str, ...]
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    scopes: tuple[str, ...]
    id_token_signed_response_alg: str | None
    backchannel_logout_uri: str | None
    security_event_uri: str | None
    may_introspect: bool
    _cipher: DataCipher = field(repr=False, compare=False)
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None
    require_pushed_authorization_requests: bool = False
    require_signed_request_object: bool = False
    # RFC 9449 §5.2: a token request without a DPoP proof is refused.
    dpop_bound_access_tokens: bool = False
    backchannel_token_delivery_mode: str | None = None
    backchannel_client_notification_endpoint: str | None = None

    @property
    def is_public(self) -> bool:
        # A private_key_jwt client holds no secret but proves itself with its key.
        return self.secret_hash is None and not set(self.auth_methods) & set(KEY_METHODS)

    @property
    def client_metadata(self) -> dict[str, Any]:
        return {"post_logout_redirect_uris": list(self.post_logout_redirect_uris)}

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # OIDC Core §3.1.2.1: redirect_uri is required; no default is ever assumed.
        return None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """The requested scopes this client may have; None when a request names none of them."""
        if not scope:
            return ""
        requested = scope.split()
        allowed = [s for s in dict.fromkeys(requested) if s in self.scopes]
        return " ".join(allowed) if allowed else None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # RFC 9700 §4.1.3: exact string comparison, no patterns or prefixes.
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        if self.secret_hash is None:
            return False
        return hmac.compare_digest(
            hash_client_secret(self._cipher, client_secret), self.secret_hash
        )

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if method == "none":
            # Public clients prove nothing about themselves: they may redeem codes and
            # refresh tokens (bound by PKCE and rotation), push requests and revoke, never
            # introspect.
            return self.is_public and endpoint in ("token", "par", "revocation")
        return method in self.auth_methods

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


def client_credentials_scope(client: RegisteredClient, requested: str | None) -> str | None:
    """The scope of a ``client_credentials`` token: what was asked for, or without a request
    every scope the client may have without a user; None when it asks for one it may not have
    (RFC 6749 §5.2: an error, not a silent drop). User scopes never go to a client alone."""
    wanted = set((requested or "").split())
    allowed = {s for s in client.scopes if s not in USER_SCOPES}
    if wanted - allowed:
        return None
    return " ".join(sorted(wanted or allowed))


class ClientRegistry:
    """Clients by id, cached in process; ``invalidate`` is called on change notices."""

    def __init__(
        self, sessions: sessionmaker[Session], cipher: DataCipher, *, ttl: float = 60.0
    ) -> None:
        self._sessions = sessions
        self._cipher = cipher
        self._ttl = ttl
        self._cache: dict[str, tuple[RegisteredClient | None, float]] = {}
        self._lock = threading.Lock()

    def get(self, client_id: str | None) -> RegisteredClient | None:
        if not client_id or len(client_id) > 64 or not client_id.isprintable():
            return None
        cached = self._cache.get(client_id)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        with self._sessions() as session:
            row = session.get(Client, client_id)
            client = self._view(row) if row is not None and row.disabled_at is None else None
        # Unknown ids are remembered briefly too, so a flood of them is not a flood of queries.
        ttl = self._ttl if client is not None else min(self._ttl, 5.0)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[client_id] = (client, now + ttl)
        return client

    def invalidate(self, client_id: str | None = None) -> None:
        with self._lock:
            if client_id is None:
                self._cache.clear()
            else:
                self._cache.pop(client_id, None)

    def _view(self, row: Client) -> RegisteredClient:
        return RegisteredClient(
            client_id=row.client_id,
            client_name=row.client_name,
            secret_hash=row.secret_hash,
            auth_methods=tuple(row.auth_methods),
            redirect_uris=tuple(row.redirect_uris),
            post_logout_redirect_uris=tuple(row.post_logout_redirect_uris),
            grant_types=tuple(row.grant_types),
            scopes=tuple(row.scope.split()),
            id_token_signed_response_alg=row.id_token_signed_response_alg,
            backchannel_logout_uri=row.backchannel_logout_uri,
            security_event_uri=row.security_event_uri,
            may_introspect=row.may_introspect,
            _cipher=self._cipher,
            jwks=row.jwks,
            jwks_uri=row.jwks_uri,
            require_pushed_authorization_requests=row.require_pushed_authorization_requests,
            require_signed_request_object=row.require_signed_request_object,
            dpop_bound_access_tokens=row.dpop_bound_access_tokens,
            backchannel_token_delivery_mode=row.backchannel_token_delivery_mode,
            backchannel_client_notification_endpoint=row.backchannel_client_notification_endpoint,
        )


@dataclass(frozen=True)
class NewClient:
    """A client to register, as its administrator describes it (RFC 7591 metadata).

    ``allow_weak_secret`` exists for the published demo secrets only. A client without a
    secret is public unless it authenticates with ``private_key_jwt``.
    """

    client_id: str
    client_name: str
    secret: str | None
    auth_methods: list[str]
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    grant_types: list[str]
    scope: str
    id_token_signed_response_alg: str | None = None
    backchannel_logout_uri: str | None = None
    security_event_uri: str | None = None
    may_introspect: bool = False
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None
    require_pushed_authorization_requests: bool = False
    require_signed_request_object: bool = False
    dpop_bound_access_tokens: bool = False
    backchannel_token_delivery_mode: str | None = None
    backchannel_client_notification_endpoint: str | None = None
    allow_weak_secret: bool = False

    @property
    def is_public(self) -> bool:
        return self.secret is None and not set(self.auth_methods) & set(KEY_METHODS)


class ClientRegistrations:
    """Registering clients, built once per process with the key their secrets are hashed
    with."""

    def __init__(self, cipher: DataCipher) -> None:
        self._cipher = cipher

    def register(
        self, db: Session, new: NewClient, *, now: datetime, actor: str | None = None
    ) -> Client:
        """Register or replace a client after checking its metadata.

        Raises:
            ClientRegistrationError: inconsistent metadata.
        """
        _validate(new)
        row = db.get(Client, new.client_id) or Client(client_id=new.client_id, created_at=now)
        row.client_name = new.client_name
        secret = new.secret
        row.secret_hash = hash_client_secret(self._cipher, secret) if secret is not None else None
        row.auth_methods = ["none"] if new.is_public else new.auth_methods
        row.redirect_uris = new.redirect_uris
        row.post_logout_redirect_uris = new.post_logout_redirect_uris
        row.grant_types = new.grant_types
        row.scope = new.scope
        row.id_token_signed_response_alg = new.id_token_signed_response_alg
        row.backchannel_logout_uri = new.backchannel_logout_uri
        row.security_event_uri = new.security_event_uri
        row.may_introspect = new.may_introspect
        row.jwks = new.jwks
        row.jwks_uri = new.jwks_uri
        row.require_pushed_authorization_requests = new.require_pushed_authorization_requests
        row.require_signed_request_object = new.require_signed_request_object
        row.dpop_bound_access_tokens = new.dpop_bound_access_tokens
        row.backchannel_token_delivery_mode = new.backchannel_token_delivery_mode
        row.backchannel_client_notification_endpoint = new.backchannel_client_notification_endpoint
        row.disabled_at = None
        db.add(row)
        db.flush()
        record(
            db,
            "client.registered",
            now=now,
            actor=actor,
            client_id=new.client_id,
            grant_types=new.grant_types,
            scope=new.scope,
            dpop_bound_access_tokens=new.dpop_bound_access_tokens,
        )
        return row


def _validate(new: NewClient) -> None:
    """Raises ClientRegistrationError."""
    _validate_keys(
        auth_methods=new.auth_methods,
        secret=new.secret,
        jwks=new.jwks,
        jwks_uri=new.jwks_uri,
        require_signed_request_object=new.require_signed_request_object,
    )
    if new.require_pushed_authorization_requests and "authorization_code" not in new.grant_types:
        raise ClientRegistrationError("Pushed requests need the authorization_code grant.")
    _validate_metadata(
        secret=new.secret if not new.allow_weak_secret else None,
        is_public=new.is_public,
        auth_methods=new.auth_methods,
        redirect_uris=new.redirect_uris,
        post_logout_redirect_uris=new.post_logout_redirect_uris,
        notification_uris=[
            u
            for u in (
                new.backchannel_logout_uri,
                new.security_event_uri,
                new.backchannel_client_notification_endpoint,
            )
            if u
        ],
        grant_types=new.grant_types,
        id_token_alg=new.id_token_signed_response_alg,
    )
    _validate_ciba_metadata(
        grant_types=new.grant_types,
        auth_methods=["none"] if new.is_public else new.auth_methods,
        delivery_mode=new.backchannel_token_delivery_mode,
        notification_endpoint=new.backchannel_client_notification_endpoint,
    )


def _validate_metadata(
    *,
    secret: str | None,
    is_public: bool,
    auth_methods: list[str],
    redirect_uris: list[str],
    post_logout_redirect_uris: list[str],
    notification_uris: list[str],
    grant_types: list[str],
    id_token_alg: str | None,
) -> None:
    if secret is not None and len(secret) < 32:
        raise ClientRegistrationError("Client secrets must have at least 32 characters.")
    if not is_public and not set(auth_methods) <= {*SECRET_METHODS, *KEY_METHODS}:
        raise ClientRegistrationError("Unknown client authentication method.")
    if not set(grant_types) <= set(GRANT_TYPES):
        raise ClientRegistrationError("Unknown grant type.")
    if is_public and "client_credentials" in grant_types:
        raise ClientRegistrationError("A public client cannot use client_credentials.")
    if "authorization_code" in grant_types and not redirect_uris:
        raise ClientRegistrationError("The code flow needs at least one redirect URI.")
    # Post-logout redirect URIs (checked with the redirect URIs: a browser is sent there), the
    # back-channel logout and security event (RFC 8935) URIs follow the redirect URIs' rule:
    # the IdP sends browsers and tokens there, which must not cross the network in the clear.
    for uri in [*redirect_uris, *post_logout_redirect_uris, *notification_uris]:
        if not _is_allowed_uri(uri):
            raise ClientRegistrationError(f"URI not allowed (https, or http on loopback): {uri}")
    if id_token_alg not in (None, "ES256", "RS256"):
        raise ClientRegistrationError("id_token_signed_response_alg must be ES256 or RS256.")


def _validate_keys(
    *,
    auth_methods: list[str],
    secret: str | None,
    jwks: dict[str, Any] | None,
    jwks_uri: str | None,
    require_signed_request_object: bool,
) -> None:
    """The client's public keys: needed to verify what it signs, and only public ones."""
    if (
        secret is None
        and set(auth_methods) & set(KEY_METHODS)
        and set(auth_methods) - {*KEY_METHODS}
    ):
        raise ClientRegistrationError("Secret authentication methods need a secret.")
    needs_keys = bool(set(auth_methods) & set(KEY_METHODS)) or require_signed_request_object
    if jwks is not None and jwks_uri is not None:
        # RFC 7591 §2: "jwks_uri and jwks parameters MUST NOT both be present".
        raise ClientRegistrationError("Give jwks or jwks_uri, not both.")
    if needs_keys and jwks is None and jwks_uri is None:
        raise ClientRegistrationError("private_key_jwt and signed requests need jwks or jwks_uri.")
    if jwks_uri is not None and not _is_allowed_uri(jwks_uri):
        raise ClientRegistrationError(f"URI not allowed (https, or http on loopback): {jwks_uri}")
    if jwks is not None:
        try:
            import_public_jwks(jwks)
        except InvalidClientKeysError as exc:
            raise ClientRegistrationError(str(exc)) from exc


# Named sets of client metadata. "fapi2" is the FAPI 2.0 Security Profile (§5.3.2.2, §5.3.3
# and §5.4.1): pushed authorization requests, private_key_jwt, ID tokens in ES256 whatever the
# server's default (RS256 is not allowed); PKCE with S256 is required of every client already.
# Signed request objects belong to FAPI 2.0 Message Signing, an optional profile on top: they
# are accepted, and required only with their own option. Sender-constrained tokens (DPoP) and
# CIBA add their settings here.
PROFILES: dict[str, dict[str, Any]] = {
    "fapi2": {
        "auth_methods": ["private_key_jwt"],
        "require_pushed_authorization_requests": True,
        # Sender-constrained access tokens (FAPI 2.0 §5.3.2.2: DPoP or mTLS).
        "dpop_bound_access_tokens": True,
        "id_token_signed_response_alg": "ES256",
    },
}


def apply_profile(name: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """``metadata`` with the profile's settings laid over it.

    Raises:
        ClientRegistrationError: unknown profile.
    """
    if name not in PROFILES:
        raise ClientRegistrationError(f"Unknown client profile: {name}")
    return {**metadata, **PROFILES[name]}


def with_ciba_poll(metadata: dict[str, Any]) -> dict[str, Any]:
    """Registration metadata with CIBA poll mode allowed (CIBA Core 1.0 §4), for a client
    registered in code (a demo client): ``NewClient(..., **with_ciba_poll({...}))``."""
    grant_types = [g for g in metadata.get("grant_types", []) if g != CIBA_GRANT_TYPE]
    return {
        **metadata,
        "grant_types": [*grant_types, CIBA_GRANT_TYPE],
        "backchannel_token_delivery_mode": "poll",
    }


def _validate_ciba_metadata(
    *,
    grant_types: list[str],
    auth_methods: list[str],
    delivery_mode: str | None,
    notification_endpoint: str | None,
) -> None:
    """CIBA Core 1.0 §4: a client of the CIBA grant names its delivery mode, and a ping client
    its notification endpoint."""
    if CIBA_GRANT_TYPE not in grant_types:
        if delivery_mode is not None or notification_endpoint is not None:
            raise ClientRegistrationError("CIBA metadata without the CIBA grant type.")
        return
    if "none" in auth_methods:
        # CIBA Core §7.1: the client authenticates at the backchannel authentication endpoint.
        raise ClientRegistrationError("A public client cannot use CIBA.")
    if delivery_mode not in CIBA_DELIVERY_MODES:
        raise ClientRegistrationError("backchannel_token_delivery_mode must be poll or ping.")
    if delivery_mode == "ping" and notification_endpoint is None:
        raise ClientRegistrationError("Ping mode needs backchannel_client_notification_endpoint.")
    if delivery_mode == "poll" and notification_endpoint is not None:
        raise ClientRegistrationError("Poll mode takes no client notification endpoint.")
