"""OpenID Connect Client-Initiated Backchannel Authentication (CIBA Core 1.0), poll and ping
modes: an application that knows who the user is asks for tokens, and the user's phone is asked
to approve, exactly as a browser login's push is, with the binding message in place of the
number (there is no sign-in page to type a number from).

- ``BackchannelAuthenticationEndpoint``: ``POST /bc-authorize`` (§7), client authentication as
  at the token endpoint; answers ``{auth_req_id, expires_in, interval}`` (§7.3).
- ``record_phone_answer``: the phone's signed answer settles the request (and owes a ping-mode
  client its notification, §10.2).
- ``CibaGrant``: the token endpoint's ``urn:openid:params:grant-type:ciba`` (§10.1, §11).

Push mode is not offered: FAPI-CIBA forbids it, and discovery leaves it out.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from typing import TYPE_CHECKING
from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.endpoint import Endpoint
from authlib.oauth2.rfc6749.errors import AccessDeniedError
from authlib.oauth2.rfc6749.errors import InvalidGrantError
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc6749.errors import UnauthorizedClientError
from authlib.oauth2.rfc8628.errors import AuthorizationPendingError
from authlib.oauth2.rfc8628.errors import ExpiredTokenError
from authlib.oauth2.rfc8628.errors import SlowDownError
from authlib.oidc.core.grants.util import is_openid_scope
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from idp.accounts.flow import AMR_PUSH
from idp.accounts.flow import Assurance
from idp.accounts.flow import acr_uri
from idp.accounts.models import User
from idp.accounts.service import get_user_by_username
from idp.audit.service import AuditContext
from idp.audit.service import record
from idp.dpop import DpopProof
from idp.mfa.challenges import Challenge
from idp.mfa.challenges import Outcome
from idp.mfa.challenges import new_challenge_id
from idp.mfa.errors import ChallengePendingError
from idp.mfa.errors import PushLimitError
from idp.mfa.errors import PushPausedError
from idp.mfa.errors import PushUnavailableError
from idp.mfa.service import active_device
from idp.mfa.service import device_still_active
from idp.mfa.service import evidence_for
from idp.oidc.authorization_details import parse_authorization_details
from idp.oidc.backchannel import derive_auth_req_id
from idp.oidc.clients import CIBA_GRANT_TYPE
from idp.oidc.clients import RegisteredClient
from idp.oidc.grants import SECRET_AUTH
from idp.oidc.grants import _IdpGrant
from idp.oidc.interaction import MAX_DETAILS_LENGTH
from idp.oidc.interaction import MAX_PARAM_LENGTH
from idp.oidc.models import BackchannelRequest
from idp.oidc.models import BackchannelStatus
from idp.oidc.models import Grant
from idp.oidc.models import GrantKind
from idp.oidc.tokens import InvalidAccessTokenError
from idp.revocation.service import queue_backchannel_ping
from idp.store.ephemeral import EphemeralStoreError
from idp.store.secrets import sha256_hex

if TYPE_CHECKING:
    from idp.oidc.server import IdpAuthorizationServer

# The phone's confirmation without a password: a software-secured key (swk) on a second
# channel (mca). Not "pwd", and so not "mfa": RFC 8176 values say what was used.
AMR_BACKCHANNEL = tuple(m for m in AMR_PUSH if m != "mfa")
# CIBA Core §7.1: "relatively short", in "a limited set of plain text characters". Thai text
# is allowed (letters with their vowel and tone marks), markup and control characters are not.
BINDING_MESSAGE_MAX = 64
_BINDING_PUNCTUATION = frozenset(" .,:;#/()+-_")
# RFC 6750 §2.1 b64token, the syntax CIBA Core §7.1 asks of client_notification_token.
_BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_NOTIFICATION_TOKEN_MAX = 1024  # CIBA Core §7.1
# unknown_user_id answers are counted per client over this window (account enumeration).
_UNKNOWN_USER_WINDOW = 900
_BANGKOK = timezone(timedelta(hours=7), "ICT")
_HINTS = ("login_hint", "id_token_hint", "login_hint_token")


# --- CIBA Core §13 errors -------------------------------------------------------------------


class UnknownUserIdError(OAuth2Error):
    error = "unknown_user_id"


class InvalidBindingMessageError(OAuth2Error):
    error = "invalid_binding_message"


class BackchannelAccessDeniedError(OAuth2Error):
    error = "access_denied"
    status_code = 403  # CIBA Core §13


class TemporarilyUnavailableError(OAuth2Error):
    error = "temporarily_unavailable"
    status_code = 503


class TooManyRequestsError(OAuth2Error):
    """Not a CIBA error code: the client is told to slow down, with the HTTP status for it."""

    error = "slow_down"
    status_code = 429

    def get_headers(self) -> list[tuple[str, str]]:
        return [*super().get_headers(), ("Retry-After", str(_UNKNOWN_USER_WINDOW))]


# --- the authentication request -------------------------------------------------------------


@dataclass(frozen=True)
class AuthenticationRequest:
    """A validated CIBA authentication request (CIBA Core §7.1)."""

    scope: str
    hint: str  # "login_hint" or "id_token_hint"
    hint_value: str
    binding_message: str | None
    authorization_details: list[dict[str, Any]] | None
    requested_expiry: int | None
    client_notification_token: str | None


def validate_authentication_request(
    params: dict[str, str], client: RegisteredClient
) -> AuthenticationRequest:
    """Check an authentication request's parameters (CIBA Core §7.1, §7.2).

    Raises:
        OAuth2Error: ``unauthorized_client``, ``invalid_request``,
            ``invalid_binding_message``, ``invalid_authorization_details``.
    """
    mode = client.backchannel_token_delivery_mode
    if not client.check_grant_type(CIBA_GRANT_TYPE) or mode not in ("poll", "ping"):
        raise UnauthorizedClientError("The client is not registered for CIBA.")
    for key, value in params.items():
        limit = MAX_DETAILS_LENGTH if key == "authorization_details" else MAX_PARAM_LENGTH
        if len(value) > limit:
            raise InvalidRequestError("A request parameter is too long.")
    if "request" in params or "request_uri" in params:
        # Signed authentication requests (§7.1.1) are not offered: discovery names no alg.
        raise InvalidRequestError("Signed authentication requests are not supported.")
    scope = client.get_allowed_scope(params.get("scope"))
    if not scope or not is_openid_scope(scope):
        raise InvalidRequestError("'scope' must include 'openid'.")
    hints = [h for h in _HINTS if params.get(h)]
    if len(hints) != 1:
        # §7.1: exactly one of the three hints.
        raise InvalidRequestError(
            "Give exactly one of 'login_hint', 'id_token_hint' and 'login_hint_token'."
        )
    if hints[0] == "login_hint_token":
        raise InvalidRequestError("'login_hint_token' is not supported; use 'login_hint'.")
    details = parse_authorization_details(params.get("authorization_details"))
    message = validate_binding_message(params.get("binding_message"))
    if details and message is None:
        # The phone shows what is approved; the client's screen must show the same reference,
        # or a user could approve someone else's transaction sent at the same moment.
        raise InvalidBindingMessageError("'binding_message' is required with a transaction.")
    return AuthenticationRequest(
        scope=scope,
        hint=hints[0],
        hint_value=params[hints[0]],
        binding_message=message,
        authorization_details=details,
        requested_expiry=_requested_expiry(params.get("requested_expiry")),
        client_notification_token=_notification_token(
            params.get("client_notification_token"), client
        ),
    )


def validate_binding_message(value: str | None) -> str | None:
    """CIBA Core §7.1 ``binding_message``: short plain text, shown on both devices.

    Raises:
        InvalidBindingMessageError
    """
    if value is None:
        return None
    text = " ".join(value.split())
    if not text or len(text) > BINDING_MESSAGE_MAX:
        raise InvalidBindingMessageError(
            f"'binding_message' must have 1 to {BINDING_MESSAGE_MAX} characters."
        )
    for char in text:
        if char not in _BINDING_PUNCTUATION and unicodedata.category(char)[0] not in "LNM":
            raise InvalidBindingMessageError("'binding_message' holds a character not allowed.")
    return text


def _requested_expiry(value: str | None) -> int | None:
    """CIBA Core §7.1: a positive integer (seconds)."""
    if value is None:
        return None
    if not value.isdigit() or len(value) > 6 or int(value) < 1:
        raise InvalidRequestError("'requested_expiry' must be a positive integer.")
    return int(value)


def _notification_token(value: str | None, client: RegisteredClient) -> str | None:
    """CIBA Core §7.1: required in ping mode, an RFC 6750 bearer token of at most 1024
    characters; ignored in poll mode (nothing is sent to a poll client)."""
    if client.backchannel_token_delivery_mode != "ping":
        return None
    if not value:
        raise InvalidRequestError("'client_notification_token' is required in ping mode.")
    if len(value) > _NOTIFICATION_TOKEN_MAX or not _BEARER_TOKEN.fullmatch(value):
        raise InvalidRequestError("'client_notification_token' is not a bearer token.")
    return value


# --- the backchannel authentication endpoint ------------------------------------------------


class BackchannelAuthenticationEndpoint(Endpoint):
    """CIBA Core §7: ``POST /bc-authorize``."""

    ENDPOINT_NAME = "backchannel_authentication"
    server: IdpAuthorizationServer

    def create_endpoint_response(self, request: Any) -> tuple[int, dict[str, Any], list[Any]]:
        # §7.1: the client authenticates as it does at the token endpoint, with the methods
        # the token endpoint's CIBA grant accepts (one list: what is added there applies here).
        client: RegisteredClient = self.server.authenticate_client(
            request, CibaGrant.TOKEN_ENDPOINT_AUTH_METHODS, self.ENDPOINT_NAME
        )
        request.client = client
        params = {key: str(value) for key, value in request.payload.data.items()}
        validated = validate_authentication_request(params, client)
        self._check_unknown_user_budget(client)
        user = self._identify(validated, client)
        row, auth_req_id = self._start(client, user, validated)
        # CIBA Core §7.3.
        body = {
            "auth_req_id": auth_req_id,
            "expires_in": _seconds_left(row),
            "interval": row.interval,
        }
        headers = [
            ("Content-Type", "application/json"),
            ("Cache-Control", "no-store"),
            ("Pragma", "no-cache"),
        ]
        return 200, body, headers

    @property
    def _db(self) -> Session:
        return self.server.db()

    def _check_unknown_user_budget(self, client: RegisteredClient) -> None:
        """SECURITY: unknown_user_id is the spec's answer and tells whether a username exists;
        a client that gets it too often is refused for a while (enumeration of accounts).

        Raises:
            TooManyRequestsError
        """
        deps = self.server.deps
        try:
            raw = deps.store.get(deps.keys.ciba_unknown_users(client.client_id))
        except EphemeralStoreError:
            return  # counting is lost with the store; push fatigue limits still hold
        if raw is not None and int(raw) >= deps.settings.ciba_unknown_user_limit:
            self._refuse(client, None, "rate_limited")
            raise TooManyRequestsError("Too many requests for unknown users; try again later.")

    def _identify(self, validated: AuthenticationRequest, client: RegisteredClient) -> User:
        """The user the hint names (CIBA Core §7.1).

        Raises:
            UnknownUserIdError, BackchannelAccessDeniedError, InvalidRequestError
        """
        deps = self.server.deps
        user: User | None = None
        if validated.hint == "login_hint":
            user = get_user_by_username(self._db, validated.hint_value)
        else:
            try:
                claims = deps.signer.verify_own_id_token(validated.hint_value)
            except InvalidAccessTokenError as exc:
                # Not an ID token of ours (expired ones are): a malformed request, as at
                # the authorization endpoint.
                raise InvalidRequestError("Invalid 'id_token_hint'.") from exc
            audience = claims.get("aud")
            if client.client_id not in (audience if isinstance(audience, list) else [audience]):
                # §7.1: an ID token "previously issued to the Client"; another application's
                # (leaked or shared) is not this client's to name a user with.
                raise InvalidRequestError("Invalid 'id_token_hint'.")
            user = self._db.scalar(select(User).where(User.sub == claims["sub"]))
        if user is None:
            # SECURITY: counted, then compared: requests sent at once all pass the check
            # above before any is counted, so the count each one gets decides its answer.
            try:
                count = deps.store.incr(
                    deps.keys.ciba_unknown_users(client.client_id), ttl=_UNKNOWN_USER_WINDOW
                )
            except EphemeralStoreError:
                count = 0  # counting is lost with the store; push fatigue limits still hold
            if count > deps.settings.ciba_unknown_user_limit:
                self._refuse(client, None, "rate_limited")
                raise TooManyRequestsError("Too many requests for unknown users; try again later.")
            self._refuse(client, None, "unknown_user_id")
            raise UnknownUserIdError("The hint does not name a user of this provider.")
        if not user.is_active:
            self._refuse(client, user, "account_inactive")
            raise BackchannelAccessDeniedError("The user may not sign in.")
        return user

    def _start(
        self, client: RegisteredClient, user: User, validated: AuthenticationRequest
    ) -> tuple[BackchannelRequest, str]:
        """Record the request and ask the user's phone.

        Raises:
            BackchannelAccessDeniedError: no active phone, or pushes to it are held back
                (another confirmation waiting, too many requests, paused after denials).
            TemporarilyUnavailableError: the push relay did not take the request.
        """
        deps = self.server.deps
        settings = deps.settings
        now = deps.clock.now()
        audit = self.server.audit_context()
        device = active_device(self._db, user.id)
        if device is None:
            # A suspended phone, or none bound: nothing can confirm (§13 access_denied).
            self._refuse(client, user, "no_device")
            raise BackchannelAccessDeniedError("No phone can confirm for this user.")
        ttl = min(
            validated.requested_expiry or settings.ciba_request_ttl, settings.ciba_max_request_ttl
        )
        request_id = secrets.token_hex(16)
        auth_req_id = derive_auth_req_id(deps.cipher, request_id)
        row = BackchannelRequest(
            id=request_id,
            auth_req_id_hash=sha256_hex(auth_req_id),
            challenge_id=new_challenge_id(),
            client_id=client.client_id,
            user_id=user.id,
            device_id=device.id,
            scope=validated.scope,
            binding_message=validated.binding_message,
            authorization_details=validated.authorization_details,
            delivery_mode=client.backchannel_token_delivery_mode or "poll",
            client_notification_token=validated.client_notification_token,
            status=BackchannelStatus.PENDING,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl),
            interval=settings.ciba_poll_interval,
        )
        self._db.add(row)
        # Committed before the phone is asked: its answer may come back before this request
        # ends, and must find the request.
        self._db.commit()
        try:
            challenge = deps.confirmation.start_push(
                self._db,
                user=user,
                device=device,
                login_tx=row.id,
                client_id=client.client_id,
                client_name=client.client_name,
                context={
                    "ip": audit.client_ip or "",
                    "browser": "",
                    "time": now.astimezone(_BANGKOK).isoformat(timespec="seconds"),
                    "request_id": audit.request_id or "",
                },
                authorization_details=validated.authorization_details,
                ttl=ttl,
                now=now,
                audit=audit,
                backchannel=True,
                binding_message=validated.binding_message,
                challenge_id=row.challenge_id,
            )
        except (ChallengePendingError, PushLimitError, PushPausedError) as refusal:
            self._refuse(client, user, refusal.code, row)
            raise BackchannelAccessDeniedError(_REFUSALS[refusal.code]) from refusal
        except PushUnavailableError as exc:
            self._refuse(client, user, exc.code, row)
            raise TemporarilyUnavailableError("The user's phone cannot be reached now.") from exc
        record(
            self._db,
            "ciba.requested",
            now=now,
            actor=user.sub,
            client_id=client.client_id,
            context=audit,
            request=row.id,
            challenge=challenge.id,
            mode=row.delivery_mode,
            scope=row.scope,
            binding_message=row.binding_message,
            transaction=challenge.txn_hash,
            expires_in=ttl,
        )
        return row, auth_req_id

    def _refuse(
        self,
        client: RegisteredClient,
        user: User | None,
        reason: str,
        row: BackchannelRequest | None = None,
    ) -> None:
        """Keep the refusal in the audit trail, though the answer (an error) is rolled back;
        a request recorded already is ended."""
        db = self._db
        if row is not None:
            row.status = BackchannelStatus.DENIED
            row.end_reason = reason
        record(
            db,
            "ciba.refused",
            now=self.server.deps.clock.now(),
            outcome="failure",
            actor=user.sub if user else None,
            client_id=client.client_id,
            context=self.server.audit_context(),
            reason=reason,
        )
        db.commit()


_REFUSALS = {
    ChallengePendingError.code: "Another confirmation is waiting on the user's phone.",
    PushLimitError.code: "Too many requests were sent to the user's phone; try again later.",
    PushPausedError.code: "Requests to the user's phone are paused after several denials.",
}


def _seconds_left(row: BackchannelRequest) -> int:
    return max(int((row.expires_at - row.created_at).total_seconds()), 1)


# --- the phone's answer ---------------------------------------------------------------------


def record_phone_answer(
    db: Session,
    challenge: Challenge,
    outcome: Outcome,
    *,
    now: datetime,
    audit: AuditContext,
) -> bool:
    """Settle the backchannel request a phone just answered: approved (with the evidence of a
    confirmed transaction) or denied. Return True when a ping is owed to the client."""
    # The phone first, then the request: a suspension takes them in that order (no deadlock
    # with "this was not me" reported while the helpdesk suspends the phone).
    if not device_still_active(db, challenge.device_id):
        return False  # suspended meanwhile: the suspension ended the request
    row = db.scalar(
        select(BackchannelRequest)
        .where(BackchannelRequest.challenge_id == challenge.id)
        .with_for_update()
    )
    if row is None or row.status != BackchannelStatus.PENDING:
        return False  # ended already (a suspension), or not a backchannel request
    if outcome == Outcome.APPROVED:
        evidence = evidence_for(db, challenge.id) if row.authorization_details else None
        if row.authorization_details and evidence is None:
            return False  # cannot happen: the evidence is kept before "approved" is told
        row.status = BackchannelStatus.APPROVED
        row.txn = evidence.id if evidence is not None else None
    elif outcome in (Outcome.DENIED, Outcome.REPORTED):
        row.status = BackchannelStatus.DENIED
        row.end_reason = outcome.value
    else:
        return False
    row.answered_at = now
    sub = db.scalar(select(User.sub).where(User.id == row.user_id)) or ""
    pinged = queue_backchannel_ping(db, row, sub=sub, now=now)
    record(
        db,
        "ciba.answered",
        now=now,
        outcome="success" if outcome == Outcome.APPROVED else "failure",
        actor=sub,
        client_id=row.client_id,
        context=audit,
        request=row.id,
        answer=outcome.value,
        pinged=pinged,
    )
    return pinged


# --- the token endpoint ---------------------------------------------------------------------


class CibaGrant(_IdpGrant, grants.BaseGrant, grants.TokenEndpointMixin):
    """CIBA Core §10.1: ``grant_type=urn:openid:params:grant-type:ciba`` with ``auth_req_id``,
    answered per §11 until the phone has answered, then with tokens, once."""

    GRANT_TYPE = CIBA_GRANT_TYPE
    TOKEN_ENDPOINT_AUTH_METHODS = SECRET_AUTH

    def validate_token_request(self) -> None:
        client: RegisteredClient = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError("The client is not registered for CIBA.")
        auth_req_id = self.request.payload.data.get("auth_req_id")
        if not auth_req_id:
            raise InvalidRequestError("Missing 'auth_req_id'.")
        row = self.db.scalar(
            select(BackchannelRequest).where(
                BackchannelRequest.auth_req_id_hash == sha256_hex(str(auth_req_id)[:256])
            )
        )
        # §11 invalid_grant: unknown, or issued to another client.
        if row is None or row.client_id != client.client_id:
            raise InvalidGrantError("The 'auth_req_id' is invalid.")
        self.request.client = client
        self.request.backchannel_request = row

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        client: RegisteredClient = self.request.client
        row: BackchannelRequest = self.request.backchannel_request
        now = self.now
        # RFC 9449: checked before the request is redeemed, so a refused proof uses nothing up.
        proof = self._verify_dpop(client, bound_jkt=None)
        if row.status == BackchannelStatus.REDEEMED:
            raise InvalidGrantError("The 'auth_req_id' was used already.")
        if row.status == BackchannelStatus.DENIED:
            raise AccessDeniedError("The request was denied or has ended.")
        if now >= row.expires_at:
            raise ExpiredTokenError("The request expired before it was approved.")
        if row.status == BackchannelStatus.PENDING:
            raise self._pace(row, now)
        # SECURITY: the phone that approved must still be active, held (FOR SHARE) until the
        # session is committed: a suspension now either sees the session or is seen here.
        # Taken before the request's row, in the order a suspension takes them (the phone,
        # then its requests), so the two wait for each other rather than deadlock.
        if not device_still_active(self.db, row.device_id):
            raise AccessDeniedError("The phone that approved is suspended.")
        grant_id = secrets.token_hex(16)
        # Used once: one conditional UPDATE, so parallel redemptions give one success.
        claimed = self.db.execute(
            update(BackchannelRequest)
            .where(
                BackchannelRequest.id == row.id,
                BackchannelRequest.status == BackchannelStatus.APPROVED,
            )
            .values(status=BackchannelStatus.REDEEMED, redeemed_at=now, grant_id=grant_id)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            raise InvalidGrantError("The 'auth_req_id' was used already.")
        user = self.db.get(User, row.user_id)
        if user is None or not user.is_active:
            raise AccessDeniedError("The user may no longer sign in.")
        token = self._issue_for(client, row, user, grant_id, now, proof)
        return 200, token, self._response_headers(proof)

    def _pace(self, row: BackchannelRequest, now: datetime) -> OAuth2Error:
        """authorization_pending, or slow_down for a poll sooner than the interval (§11: the
        interval grows by 5 s for this and every later poll). Kept though the answer is an
        error."""
        early = row.last_polled_at is not None and now < row.last_polled_at + timedelta(
            seconds=row.interval
        )
        if early:
            row.interval += 5
        row.last_polled_at = now
        self.db.commit()
        if early:
            return SlowDownError(f"Poll at most every {row.interval} seconds.")
        return AuthorizationPendingError("The user has not answered on the phone yet.")

    def _issue_for(
        self,
        client: RegisteredClient,
        row: BackchannelRequest,
        user: User,
        grant_id: str,
        now: datetime,
        proof: DpopProof | None,
    ) -> dict[str, Any]:
        """A session confirmed by the phone (so suspending the phone ends it and every token
        issued here, as for a browser login), a grant in it, and the tokens."""
        deps = self.server.deps
        issuer = deps.settings.issuer
        level = Assurance.SOFT_TOKEN_TXN if row.txn else Assurance.SOFT_TOKEN
        user_session, _ = deps.login_sessions.start(
            self.db,
            user,
            acr=acr_uri(issuer, Assurance.SOFT_TOKEN),
            amr=list(AMR_BACKCHANNEL),
            now=now,
            context=self.server.audit_context(),
            device_id=row.device_id,
        )
        answered_at = row.answered_at or now
        user_session.auth_time = answered_at  # OIDC Core §2: when the user approved
        grant = Grant(
            id=grant_id,
            kind=GrantKind.SESSION,
            client_id=client.client_id,
            user_id=user.id,
            session_id=user_session.id,
            scope=row.scope,
            auth_time=answered_at,
            acr=acr_uri(issuer, level),
            amr=list(AMR_BACKCHANNEL),
            created_at=now,
            expires_at=user_session.expires_at,
            claims_request=None,
            authorization_details=row.authorization_details,
            txn=row.txn,
        )
        self.db.add(grant)
        # A confirmed transaction is acted on once: no refresh token carries it further.
        with_refresh = client.check_grant_type("refresh_token") and row.txn is None
        return self._issue(
            client=client,
            grant=grant,
            user=user,
            scope=row.scope,
            nonce=None,
            with_refresh_token=with_refresh,
            now=now,
            proof=proof,
        )


def discovery_metadata(issuer: str) -> dict[str, Any]:
    """CIBA Core §4 provider metadata: poll and ping, no user code, no signed requests."""
    return {
        "backchannel_authentication_endpoint": f"{issuer}/bc-authorize",
        "backchannel_token_delivery_modes_supported": ["poll", "ping"],
        "backchannel_user_code_parameter_supported": False,
    }
