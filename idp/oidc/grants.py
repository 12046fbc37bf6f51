"""Authlib grants with the rules Authlib leaves to us or gets wrong for this IdP.

- PKCE with S256 for every client, confidential ones included (RFC 9700 §2.1.1); ``plain``
  is refused.
- A code is redeemed once, even by parallel requests: the redemption is one conditional
  UPDATE, and a second attempt revokes what the first one issued (RFC 6749 §4.1.2).
- Refresh tokens rotate; presenting a used one revokes the whole family (RFC 9700 §4.14.2).
- Client credentials get only the scopes the client is registered for.
- A DPoP proof (RFC 9449) binds the access token to its key, for every grant; it is checked
  before anything is redeemed or rotated, so a refused proof leaves the code or refresh token
  usable (the nonce flow, §8, retries with them).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from dataclasses import replace
from datetime import datetime
from datetime import timedelta
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal

from authlib.consts import default_json_headers
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc6749.errors import InvalidScopeError
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7636.challenge import compare_s256_code_challenge
from authlib.oidc.core import OpenIDCode
from authlib.oidc.core.grants.util import is_openid_scope
from authlib.oidc.core.grants.util import validate_request_prompt
from joserfc.jwk import ECKey
from sqlalchemy import update
from sqlalchemy.orm import Session

from idp.accounts.flow import Assurance
from idp.accounts.flow import acr_uri
from idp.accounts.flow import assurance_of
from idp.accounts.flow import meets
from idp.accounts.models import User
from idp.accounts.models import UserSession
from idp.accounts.sessions import SessionPolicy
from idp.accounts.sessions import is_live
from idp.audit.catalogue import EventName
from idp.audit.service import record
from idp.dpop import DpopProof
from idp.mfa.models import TransactionEvidence
from idp.oidc.claims import requested_id_token_claims
from idp.oidc.claims import requested_verified_claims
from idp.oidc.claims import user_claims
from idp.oidc.clients import ADMIN_SCOPE
from idp.oidc.clients import RegisteredClient
from idp.oidc.clients import client_credentials_scope
from idp.oidc.dpop import DPOP_TOKEN_TYPE
from idp.oidc.dpop import proofs_in
from idp.oidc.dpop import validate_proof_binding
from idp.oidc.dpop import verify_token_request_proof
from idp.oidc.interaction import parse_claims_request
from idp.oidc.models import AuthorizationCode
from idp.oidc.models import Grant
from idp.oidc.models import GrantAccessToken
from idp.oidc.models import GrantKind
from idp.oidc.models import RefreshToken
from idp.oidc.tokens import Authentication
from idp.revocation.service import revoke_grant
from idp.roles.assignments import grant_roles
from idp.roles.periods import thai_date
from idp.store.secrets import sha256_hex

if TYPE_CHECKING:
    from idp.oidc.server import IdpAuthorizationServer

# Confidential clients: a secret, or a JWT signed with their key (RFC 7523).
SECRET_AUTH = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
# A credential presented again: RFC 6749 §4.1.2 (a code), RFC 9700 §4.14.2 (a refresh token).
ReuseReason = Literal["code_reused", "refresh_reused"]
_REUSE_EVENTS: dict[ReuseReason, EventName] = {
    "code_reused": "token.code_reused",
    "refresh_reused": "token.refresh_reused",
}


@dataclass(frozen=True)
class AuthenticatedUser:
    """The resource owner at the authorization endpoint: a user in a live session."""

    user: User
    login_session: UserSession
    # A transaction the user has just confirmed on the phone, for this authorization only.
    transaction: TransactionEvidence | None = None

    def get_user_id(self) -> str:
        return self.user.sub


class S256CodeChallenge(CodeChallenge):
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]  # noqa: RUF012 - Authlib's class attribute
    CODE_CHALLENGE_METHODS = {"S256": compare_s256_code_challenge}  # noqa: RUF012

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        # SECURITY: without PKCE a stolen code could be redeemed (RFC 9700 §2.1.1).
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge': PKCE with S256 is required.")
        # SECURITY: 'plain' offers nothing against a code intercepted with its challenge.
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256.")
        super().validate_code_challenge(grant, redirect_uri)


class OpenIDAuthorization(OpenIDCode):
    """Authlib's OpenID Connect checks at the authorization endpoint (nonce, prompt).

    ID tokens themselves are made by the grants below, from the grant's recorded
    authentication, so that refreshes carry the same auth_time, acr and amr.
    """

    def __call__(self, grant: Any) -> None:
        if is_openid_scope(grant.request.payload.scope):
            grant.register_hook(
                "after_validate_authorization_request_payload",
                self.validate_openid_authorization_request,
            )
            grant.register_hook("after_validate_consent_request", validate_request_prompt)

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        # Replay of a whole response is already stopped by single-use codes bound to a PKCE
        # verifier; the nonce is carried into the ID token for the client to check.
        return False


class _IdpGrant:
    """Shared by our grants: the database session, the clock and token issuance."""

    server: IdpAuthorizationServer
    request: Any

    @property
    def db(self) -> Session:
        return self.server.db()

    @property
    def now(self) -> datetime:
        return self.server.deps.clock.now()

    def _verify_dpop(self, client: RegisteredClient, *, bound_jkt: str | None) -> DpopProof | None:
        """The request's DPoP proof (RFC 9449 §5), checked against the client's registration
        and the key the code or grant is bound to; None for a bearer-token request.

        Raises:
            UseDpopNonceError, InvalidDpopProofError
        """
        proof = verify_token_request_proof(
            self.server.dpop, proofs_in(self.request.headers), now=self.now
        )
        validate_proof_binding(
            proof, client_requires_proof=client.dpop_bound_access_tokens, bound_jkt=bound_jkt
        )
        return proof

    def _issue(
        self,
        *,
        client: RegisteredClient,
        grant: Grant,
        user: User,
        scope: str,
        nonce: str | None,
        with_refresh_token: bool,
        now: datetime,
        proof: DpopProof | None,
    ) -> dict[str, Any]:
        deps = self.server.deps
        # The ID token always names the login session it came from; access tokens of an
        # offline grant do not, since logging out must not end them (OIDC Core §11).
        auth = Authentication(
            sub=user.sub,
            sid=grant.session_id,
            auth_time=grant.auth_time,
            acr=grant.acr,
            amr=tuple(grant.amr),
            authorization_details=grant.authorization_details,
            txn=grant.txn,
            txn_evidence=evidence_binding(self.db, grant.txn) if grant.txn else None,
        )
        access_auth = auth if grant.kind == GrantKind.SESSION else replace(auth, sid=None)
        # Role scopes narrowed to the roles held today, and only for a login the
        # phone confirmed (password-only logins never do portal work).
        roles = grant_roles(
            self.db,
            user,
            scope=scope,
            now=now,
            day=thai_date(now),
            may_hold_roles=meets(
                assurance_of(deps.settings.issuer, grant.acr), Assurance.SOFT_TOKEN
            ),
            client_id=client.client_id,
            audit=self.server.audit_context(),
        )
        scope = roles.scope
        if grant.kind == GrantKind.OFFLINE:
            # Administration needs the login itself: an offline grant never carries it.
            scope = " ".join(s for s in scope.split() if s != ADMIN_SCOPE)
        if self.request.payload.grant_type == "authorization_code":
            # What the first token got is the grant: a refresh never gets more.
            grant.scope = scope
        access = deps.signer.issue_access_token(
            client_id=client.client_id,
            scope=scope,
            now=now,
            auth=access_auth,
            alg=deps.settings.signing_alg,
            extra=roles.claims(),
            jkt=proof.thumbprint if proof else None,
        )
        self.db.add(
            GrantAccessToken(jti=access.jti, grant_id=grant.id, expires_at=access.expires_at)
        )
        token = self._token_response(access.token, scope, proof)
        if grant.authorization_details:
            # RFC 9396 §7: the token response names what the token was granted for.
            token["authorization_details"] = grant.authorization_details
        if with_refresh_token:
            value = secrets.token_urlsafe(32)
            self.db.add(
                RefreshToken(
                    token_hash=sha256_hex(value),
                    grant_id=grant.id,
                    issued_at=now,
                    expires_at=grant.expires_at,
                )
            )
            token["refresh_token"] = value
        if is_openid_scope(scope):
            token["id_token"] = deps.signer.issue_id_token(
                client_id=client.client_id,
                auth=auth,
                now=now,
                nonce=nonce,
                access_token=access.token,
                claims=user_claims(user, scope, in_id_token=True)
                | requested_id_token_claims(user, scope, grant.claims_request)
                | requested_verified_claims(user, grant.claims_request, "id_token")
                | roles.claims(),
                alg=client.id_token_signed_response_alg or deps.settings.signing_alg,
            )
        self._record_issued(
            actor=user.sub,
            client_id=client.client_id,
            jti=access.jti,
            scope=scope,
            now=now,
            grant=grant.id,
            refresh_token=with_refresh_token,
            proof=proof,
        )
        return token

    def _token_response(
        self, access_token: str, scope: str, proof: DpopProof | None
    ) -> dict[str, Any]:
        # RFC 6749 §5.1: the successful token response; RFC 9449 §5: "DPoP" for a bound one.
        return {
            "access_token": access_token,
            "token_type": DPOP_TOKEN_TYPE if proof else "Bearer",
            "expires_in": self.server.deps.signer.access_ttl,
            "scope": scope,
        }

    def _response_headers(self, proof: DpopProof | None) -> list[tuple[str, str]]:
        headers = list(default_json_headers)
        # RFC 9449 §8.2: the next nonce comes with the answer, saving the client a refusal.
        if proof is not None and (nonce := self.server.dpop.fresh_nonce(self.now)):
            headers.append(("DPoP-Nonce", nonce))
        return headers

    def _record_issued(
        self,
        *,
        actor: str,
        client_id: str,
        jti: str,
        scope: str,
        now: datetime,
        proof: DpopProof | None = None,
        **details: Any,
    ) -> None:
        grant_type = self.request.payload.grant_type
        if proof is not None:
            details["dpop_jkt"] = proof.thumbprint
        record(
            self.db,
            "token.issued",
            now=now,
            actor=actor,
            client_id=client_id,
            context=self.server.audit_context(),
            grant_type=grant_type,
            jti=jti,
            scope=scope,
            **details,
        )
        self.server.count_token(grant_type)

    def _revoke_family_and_fail(
        self, grant_id: str | None, reason: ReuseReason, client_id: str
    ) -> InvalidGrantError:
        """Revoke what a replayed credential issued, durably, and return the error to raise."""
        now = self.now
        if grant_id is not None and (grant := self.db.get(Grant, grant_id)) is not None:
            revoke_grant(
                self.db,
                self.server.deps.revocations,
                grant,
                reason=reason,
                now=now,
                context=self.server.audit_context(),
            )
        record(
            self.db,
            _REUSE_EVENTS[reason],
            now=now,
            outcome="failure",
            client_id=client_id,
            context=self.server.audit_context(),
            grant=grant_id,
        )
        # Durable on its own: the caller answers with an error and rolls back its session.
        self.db.commit()
        return InvalidGrantError("The grant was already used; its tokens have been revoked.")


class AuthorizationCodeGrant(_IdpGrant, grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = [*SECRET_AUTH, "none"]  # noqa: RUF012

    def save_authorization_code(self, code: str, request: Any) -> None:
        owner: AuthenticatedUser = request.user
        data = request.payload.data
        now = self.now
        transaction = owner.transaction
        acr = owner.login_session.acr
        if transaction is not None:
            acr = acr_uri(self.server.deps.settings.issuer, Assurance.SOFT_TOKEN_TXN)
        self.db.add(
            AuthorizationCode(
                code_hash=sha256_hex(code),
                client_id=request.client.client_id,
                user_id=owner.user.id,
                session_id=owner.login_session.id,
                redirect_uri=request.payload.redirect_uri,
                scope=request.scope,
                nonce=data.get("nonce"),
                code_challenge=data["code_challenge"],
                code_challenge_method=data["code_challenge_method"],
                auth_time=owner.login_session.auth_time,
                acr=acr,
                amr=list(owner.login_session.amr),
                expires_at=now
                + timedelta(seconds=self.server.deps.settings.authorization_code_ttl),
                claims_request=parse_claims_request(data.get("claims")),
                authorization_details=transaction.authorization_details if transaction else None,
                txn=transaction.id if transaction else None,
                # RFC 9449 §10 (checked at the authorization request, interaction.py).
                dpop_jkt=data.get("dpop_jkt"),
            )
        )
        record(
            self.db,
            "authorization.code_issued",
            now=now,
            actor=owner.user.sub,
            client_id=request.client.client_id,
            context=self.server.audit_context(),
            sid=owner.login_session.id,
            scope=request.scope,
        )

    def query_authorization_code(
        self, code: str, client: RegisteredClient
    ) -> AuthorizationCode | None:
        row = self.db.get(AuthorizationCode, sha256_hex(code))
        if row is None or row.client_id != client.client_id:
            return None
        if row.redeemed_at is not None:
            # SECURITY: a code seen twice was stolen or replayed (RFC 6749 §4.1.2).
            raise self._revoke_family_and_fail(row.grant_id, "code_reused", client.client_id)
        if row.expires_at <= self.now:
            return None
        return row

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        client: RegisteredClient = self.request.client
        code: AuthorizationCode = self.request.authorization_code
        proof = self._verify_dpop(client, bound_jkt=code.dpop_jkt)
        now = self.now
        grant_id = secrets.token_hex(16)
        claimed = self.db.execute(
            update(AuthorizationCode)
            .where(
                AuthorizationCode.code_hash == code.code_hash,
                AuthorizationCode.redeemed_at.is_(None),
            )
            .values(redeemed_at=now, grant_id=grant_id)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            # A parallel redemption won: this one is the replay.
            self.db.rollback()
            fresh = self.db.get(AuthorizationCode, code.code_hash)
            raise self._revoke_family_and_fail(
                fresh.grant_id if fresh else None, "code_reused", client.client_id
            )

        user = self.db.get(User, code.user_id)
        if user is None or not user.is_active:
            raise InvalidGrantError("The user may no longer sign in.")
        # Held (FOR SHARE) while the grant is made: a suspension or logout ending this session
        # now either sees the new grant or is seen by this exchange.
        user_session = self.db.get(UserSession, code.session_id, with_for_update={"read": True})
        policy = self.server.deps.session_policy
        if user_session is None or not is_live(user_session, now=now, policy=policy):
            # The login that produced the code has ended (logout, timeout): nothing more may be
            # issued from it, or a logout could be outlived by a code fetched just before.
            raise InvalidGrantError("The session that authorized this code has ended.")
        scope = code.scope
        offline = "offline_access" in scope.split() and client.check_grant_type("refresh_token")
        settings = self.server.deps.settings
        lifetime = settings.refresh_token_ttl if offline else settings.session_max_age
        grant = Grant(
            id=grant_id,
            kind=GrantKind.OFFLINE if offline else GrantKind.SESSION,
            client_id=client.client_id,
            user_id=user.id,
            session_id=code.session_id,
            scope=scope,
            auth_time=code.auth_time,
            acr=code.acr,
            amr=list(code.amr),
            created_at=now,
            expires_at=now + timedelta(seconds=lifetime),
            claims_request=code.claims_request,
            authorization_details=code.authorization_details,
            txn=code.txn,
            # RFC 9449 §5: a public client's refresh tokens are bound to the key it used here;
            # a confidential client's are bound by its own authentication instead.
            dpop_jkt=proof.thumbprint if proof and client.is_public else None,
        )
        self.db.add(grant)
        # Public clients get refresh tokens only for offline_access; confidential clients
        # also get session-bound ones, which die with the IdP session.
        # A confirmed transaction is acted on once: no refresh token carries it further.
        with_refresh = (
            client.check_grant_type("refresh_token")
            and (offline or not client.is_public)
            and code.txn is None
        )
        token = self._issue(
            client=client,
            grant=grant,
            user=user,
            scope=scope,
            nonce=code.nonce,
            with_refresh_token=with_refresh,
            now=now,
            proof=proof,
        )
        return 200, token, self._response_headers(proof)


class RefreshTokenGrant(_IdpGrant, grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = [*SECRET_AUTH, "none"]  # noqa: RUF012

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshToken | None:
        row = self.db.get(RefreshToken, sha256_hex(refresh_token))
        if row is None:
            return None
        grant = self.db.get(Grant, row.grant_id)
        if grant is None or grant.client_id != self.request.client.client_id:
            return None
        if row.used_at is not None:
            # SECURITY: a rotated-out token came back: one of its holders is not the client.
            raise self._revoke_family_and_fail(grant.id, "refresh_reused", grant.client_id)
        if not refresh_token_is_live(
            self.db, row, grant, now=self.now, policy=self.server.deps.session_policy
        ):
            return None
        self.request.grant = grant
        return row

    def _validate_request_token(self, client: RegisteredClient) -> RefreshToken:
        refresh_token = self.request.form.get("refresh_token")
        if refresh_token is None:
            raise InvalidRequestError("Missing 'refresh_token' in request.")
        row = self.authenticate_refresh_token(refresh_token)
        if row is None:
            raise InvalidGrantError("The refresh token is invalid, expired or revoked.")
        return row

    def _validate_token_scope(self, token: RefreshToken) -> None:
        # RFC 6749 §6: a refresh never grants more than the original grant.
        requested = self.request.payload.scope
        if requested and not set(requested.split()) <= set(self.request.grant.scope.split()):
            raise InvalidScopeError()

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        client: RegisteredClient = self.request.client
        row: RefreshToken = self.request.refresh_token
        grant: Grant = self.request.grant
        proof = self._verify_dpop(client, bound_jkt=grant.dpop_jkt)
        now = self.now
        rotated = self.db.execute(
            update(RefreshToken)
            .where(RefreshToken.token_hash == row.token_hash, RefreshToken.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        if rotated.rowcount != 1:  # type: ignore[attr-defined]
            self.db.rollback()
            raise self._revoke_family_and_fail(grant.id, "refresh_reused", grant.client_id)
        # SECURITY: hold the grant while issuing, so a revocation running now either sees the
        # new access token or makes this refresh fail; never a live token from a dead grant.
        self.db.refresh(grant, with_for_update=True)
        if grant.revoked_at is not None:
            self.db.rollback()
            raise InvalidGrantError("The refresh token is invalid, expired or revoked.")
        user = self.db.get(User, grant.user_id)
        if user is None or not user.is_active:
            raise InvalidGrantError("The user may no longer sign in.")
        scope = self.request.payload.scope or grant.scope
        token = self._issue(
            client=client,
            grant=grant,
            user=user,
            scope=scope,
            nonce=None,
            with_refresh_token=True,
            now=now,
            proof=proof,
        )
        return 200, token, self._response_headers(proof)


class ClientCredentialsGrant(_IdpGrant, grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = SECRET_AUTH

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        client: RegisteredClient = self.request.client
        scope = client_credentials_scope(client, self.request.payload.scope)
        if scope is None:
            raise InvalidScopeError()
        proof = self._verify_dpop(client, bound_jkt=None)
        deps = self.server.deps
        now = self.now
        access = deps.signer.issue_access_token(
            client_id=client.client_id,
            scope=scope,
            now=now,
            auth=None,
            alg=deps.settings.signing_alg,
            jkt=proof.thumbprint if proof else None,
        )
        self._record_issued(
            actor=client.client_id,
            client_id=client.client_id,
            jti=access.jti,
            scope=scope,
            now=now,
            proof=proof,
        )
        return 200, self._token_response(access.token, scope, proof), self._response_headers(proof)


def evidence_binding(db: Session, txn: str) -> dict[str, str] | None:
    """The key and the signed answer a transaction token stands for (see Authentication)."""
    evidence = db.get(TransactionEvidence, txn)
    if evidence is None:
        return None
    return {
        "jkt": ECKey.import_key(evidence.device_public_jwk).thumbprint(),
        "answer_sha256": sha256_hex(evidence.signed_answer),
    }


def refresh_token_is_live(
    db: Session, row: RefreshToken, grant: Grant, *, now: datetime, policy: SessionPolicy
) -> bool:
    """The one answer to "may this refresh token still be used?", for refreshing and for
    introspection alike: unused, unexpired, its grant unrevoked, its user active, and for a
    session-bound grant its session still live."""
    if row.used_at is not None or row.expires_at <= now:
        return False
    if grant.revoked_at is not None or grant.expires_at <= now:
        return False
    user = db.get(User, grant.user_id)
    if user is None or not user.is_active:
        return False
    if grant.kind == GrantKind.SESSION:
        user_session = db.get(UserSession, grant.session_id)
        if user_session is None or not is_live(user_session, now=now, policy=policy):
            return False
    return True


def find_grant_of_refresh_token(db: Session, value: str) -> Grant | None:
    row = db.get(RefreshToken, sha256_hex(value))
    return db.get(Grant, row.grant_id) if row is not None else None
