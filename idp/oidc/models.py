"""Clients, authorization codes, grants with their refresh tokens, and signing keys.

The models implement the methods Authlib's mixins ask for on our own typed columns (we do not
inherit ``authlib.integrations.sqla_oauth2``, whose mixins use legacy columns).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import false
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from idp.store.db import Base


class Client(Base):
    __tablename__ = "oauth_clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_name: Mapped[str] = mapped_column(String(200))
    # Keyed hash (HMAC-SHA256) of a high-entropy secret; None for public clients.
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    auth_methods: Mapped[list[str]]
    redirect_uris: Mapped[list[str]]
    post_logout_redirect_uris: Mapped[list[str]]
    grant_types: Mapped[list[str]]
    scope: Mapped[str] = mapped_column(Text)
    id_token_signed_response_alg: Mapped[str | None] = mapped_column(String(16))
    backchannel_logout_uri: Mapped[str | None] = mapped_column(String(500))
    # RFC 8935: where Security Event Tokens (CAEP) are pushed; None when not subscribed.
    security_event_uri: Mapped[str | None] = mapped_column(String(500))
    # RFC 7662 §2.1: a protected resource may introspect tokens issued to other clients.
    may_introspect: Mapped[bool] = mapped_column(default=False)
    # The client's public keys (RFC 7591 §2): inline, or where to fetch them. They verify its
    # client assertions (private_key_jwt) and its request objects (RFC 9101).
    jwks: Mapped[dict[str, Any] | None]
    jwks_uri: Mapped[str | None] = mapped_column(String(500))
    # RFC 9126 §6 and RFC 9101 §10.5: authorization requests only pushed, only signed.
    require_pushed_authorization_requests: Mapped[bool] = mapped_column(default=False)
    require_signed_request_object: Mapped[bool] = mapped_column(default=False)
    # RFC 9449 §5.2: every token request of this client must carry a DPoP proof.
    dpop_bound_access_tokens: Mapped[bool] = mapped_column(default=False, server_default=false())
    # CIBA Core 1.0 §4: "poll" or "ping" (push mode is not offered); None when the client does
    # not use CIBA. Ping mode's notifications go to the client notification endpoint.
    backchannel_token_delivery_mode: Mapped[str | None] = mapped_column(String(8))
    backchannel_client_notification_endpoint: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]


class AuthorizationCode(Base):
    __tablename__ = "authorization_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("oauth_clients.client_id"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    session_id: Mapped[str] = mapped_column(String(43))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    nonce: Mapped[str | None] = mapped_column(Text)
    code_challenge: Mapped[str] = mapped_column(String(128))
    code_challenge_method: Mapped[str] = mapped_column(String(8))
    auth_time: Mapped[datetime]
    acr: Mapped[str] = mapped_column(String(255))
    amr: Mapped[list[str]]
    expires_at: Mapped[datetime]
    # Set once, atomically, by the one redemption that wins (RFC 6749 §4.1.2: use once).
    redeemed_at: Mapped[datetime | None]
    grant_id: Mapped[str | None] = mapped_column(String(32))
    # OIDC Core §5.5: the claims the client asked for (verified_claims among them).
    claims_request: Mapped[dict[str, Any] | None]
    # A confirmed transaction (RFC 9396) and its device-signed evidence (the JWT "txn" claim).
    authorization_details: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    txn: Mapped[str | None] = mapped_column(String(32))
    # RFC 9449 §10: the thumbprint of the key the code may only be redeemed with.
    dpop_jkt: Mapped[str | None] = mapped_column(String(43))

    # What Authlib's code grant asks of a code (AuthorizationCodeMixin).
    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


class GrantKind(enum.StrEnum):
    SESSION = "session"  # ends with the IdP session
    OFFLINE = "offline"  # offline_access (OIDC Core §11): outlives the session


class Grant(Base):
    """What one code redemption granted: the family of every token issued from it."""

    __tablename__ = "grants"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[GrantKind] = mapped_column(String(16))
    client_id: Mapped[str] = mapped_column(ForeignKey("oauth_clients.client_id"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[str] = mapped_column(String(43), index=True)
    scope: Mapped[str] = mapped_column(Text)
    auth_time: Mapped[datetime]
    acr: Mapped[str] = mapped_column(String(255))
    amr: Mapped[list[str]]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoke_reason: Mapped[str | None] = mapped_column(String(64))
    claims_request: Mapped[dict[str, Any] | None]
    # A confirmed transaction (RFC 9396) and its device-signed evidence (the JWT "txn" claim).
    authorization_details: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    txn: Mapped[str | None] = mapped_column(String(32))
    # RFC 9449 §5: a public client's refresh tokens work only with a proof of this key.
    dpop_jkt: Mapped[str | None] = mapped_column(String(43))


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    # Rotation: set when exchanged; a second exchange is reuse and revokes the whole family.
    used_at: Mapped[datetime | None]


class GrantAccessToken(Base):
    """The ``jti`` of each access token issued under a grant, so revoking the family reaches
    the self-contained JWTs too (introspection then reports them inactive)."""

    __tablename__ = "grant_access_tokens"

    jti: Mapped[str] = mapped_column(String(43), primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime]


class BackchannelStatus(enum.StrEnum):
    PENDING = "pending"  # the phone has not answered
    APPROVED = "approved"  # approved on the phone; tokens not fetched yet
    DENIED = "denied"  # declined on the phone, or ended (a suspended phone)
    REDEEMED = "redeemed"  # tokens issued, once


class BackchannelRequest(Base):
    """A CIBA authentication request (CIBA Core 1.0 §7): the client waits (polls, or is pinged)
    while the user's phone is asked. The database holds it, not the ephemeral store, so an
    approval is never lost with Redis."""

    __tablename__ = "backchannel_requests"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # The auth_req_id is the client's bearer handle on the request: only its hash is stored.
    auth_req_id_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("oauth_clients.client_id"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The phone asked; the session opened at redemption names it, so suspending the phone
    # ends that session and its tokens like a browser login's.
    device_id: Mapped[str] = mapped_column(String(32))
    challenge_id: Mapped[str] = mapped_column(String(32), unique=True)
    scope: Mapped[str] = mapped_column(Text)
    binding_message: Mapped[str | None] = mapped_column(String(200))
    authorization_details: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    delivery_mode: Mapped[str] = mapped_column(String(8))
    # Ping mode's bearer token for the client notification endpoint (CIBA Core §7.1): it only
    # lets us tell the client to poll, so it is kept as given for the request's life.
    client_notification_token: Mapped[str | None] = mapped_column(Text)
    status: Mapped[BackchannelStatus] = mapped_column(String(16))
    end_reason: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    # CIBA Core §7.3 interval, grown by 5 s at each slow_down (§11).
    interval: Mapped[int]
    last_polled_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    # The device-signed evidence of a confirmed transaction (the JWT "txn" claim).
    txn: Mapped[str | None] = mapped_column(String(32))
    redeemed_at: Mapped[datetime | None]
    grant_id: Mapped[str | None] = mapped_column(String(32))


class KeyStatus(enum.StrEnum):
    NEXT = "next"  # published, not yet signing: relying parties' JWKS caches learn it first
    CURRENT = "current"  # signing and published
    PREVIOUS = "previous"  # published until what it signed has expired
    RETIRED = "retired"


class SigningKey(Base):
    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16))
    status: Mapped[KeyStatus] = mapped_column(String(16))
    public_jwk: Mapped[dict[str, Any]]
    private_jwk_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    activated_at: Mapped[datetime | None]
    superseded_at: Mapped[datetime | None]
