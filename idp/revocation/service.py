"""Revoking tokens and sessions, and answering "is this still good?" fast.

The database is the truth. Redis mirrors what is revoked, so that introspection answers with
one round trip, and the mirror is trusted only while it is known to be complete:

- a "complete" marker is written in the same Redis transaction as a full copy of the list,
  with a short lease; a Redis that restarted empty has no marker, and the first check after
  it rebuilds the mirror, answering from the database meanwhile;
- that transaction is guarded by an epoch, a random value read from Redis before the
  database snapshot is taken: a flush (or restart) between the snapshot and the write changes
  or removes it and the write is refused, so the marker never vouches for a snapshot older
  than the last time Redis lost data;
- each revocation is mirrored twice: before its commit (revoked a little early is the safe
  way to be wrong) and again just after it (a snapshot taken before the commit cannot hold
  it; the second write, made after the commit and before the caller is answered, puts it in
  any mirror such a snapshot vouches for). Together: once a revocation was answered, a
  complete marker implies its key is present;
- every instance re-sends the whole list each second (revocations live only as long as what
  they revoke, minutes, so the list is short), which also repairs writes a Redis acknowledged
  and then lost, or a stale replica;
- a revocation whose mirror write failed marks the mirror dirty in the database, in the same
  transaction, and the instance that failed stops trusting Redis at once; every instance sees
  the mark within a second and asks the database until its rebuild has succeeded;
- while Redis cannot be reached, the database answers.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime
from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy import event
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from idp.accounts.models import User
from idp.accounts.models import UserSession
from idp.audit.service import NO_CONTEXT
from idp.audit.service import AuditContext
from idp.audit.service import record
from idp.oidc.models import BackchannelRequest
from idp.oidc.models import BackchannelStatus
from idp.oidc.models import Client
from idp.oidc.models import Grant
from idp.oidc.models import GrantAccessToken
from idp.oidc.models import GrantKind
from idp.revocation.models import MirrorState
from idp.revocation.models import NoticeKind
from idp.revocation.models import RelyingPartyNotice
from idp.revocation.models import Revocation
from idp.revocation.models import RevokedKind
from idp.store.db import is_postgresql
from idp.store.ephemeral import EphemeralStore
from idp.store.ephemeral import EphemeralStoreError
from idp.store.ephemeral import Keys

log = logging.getLogger(__name__)

# The marker's lease: if no instance refreshes the mirror (they all do, each second), checks
# go back to the database soon after.
_COMPLETE_MARKER_TTL = 30.0
# The epoch outlives many rebuilds; when it expires the next rebuild simply starts a new one.
_EPOCH_TTL = 24 * 3600.0
# Where a session keeps the revocations to mirror again once its transaction has committed.
_AFTER_COMMIT = "idp.revocation.mirror_after_commit"
_MIRROR_STATE_ID = 1
_IN_FLIGHT_MARGIN = timedelta(seconds=60)
# The pub/sub topic that wakes every instance's notice sender.
NOTICES_TOPIC = "notices"


class RevocationList:
    def __init__(self, store: EphemeralStore, keys: Keys) -> None:
        self._store = store
        self._keys = keys
        # Spelled once: every introspection asks for these.
        self._loaded_key = keys.revocations_loaded()
        self._token_key = keys.revoked(RevokedKind.ACCESS_TOKEN.value, "")
        self._session_key = keys.revoked(RevokedKind.SESSION.value, "")
        # This instance's own doubt: set when it failed to mirror or saw the dirty mark,
        # cleared only by a complete rebuild after which the mark was found clear.
        self._distrusted = False

    def revoke(
        self,
        db: Session,
        kind: RevokedKind,
        value: str,
        *,
        expires_at: datetime,
        now: datetime,
        reason: str,
    ) -> None:
        """Record a revocation in the caller's transaction and mirror it at once.

        The mirror is written before the commit: if the commit then fails, the token looks
        revoked a little early, which is the safe way to be wrong. If the mirror write fails,
        the mirror is marked dirty in the same transaction as the revocation.
        """
        if expires_at <= now:
            return
        db.merge(
            Revocation(kind=kind, value=value, expires_at=expires_at, revoked_at=now, reason=reason)
        )
        if not self._mirror([(kind, value, expires_at)], now):
            self._distrusted = True
            _mark_dirty(db, now)
        db.info.setdefault(_AFTER_COMMIT, []).append((self, kind, value, expires_at, now))

    def is_revoked(
        self,
        *,
        jti: str | None,
        sid: str | None,
        now: datetime,
        open_session: Callable[[], Session],
    ) -> bool:
        """True when the access token ``jti`` or the session ``sid`` was revoked."""
        if self._distrusted:
            return self._ask_database(open_session, _present(jti, sid), now)
        keys = [self._loaded_key]
        if jti:
            keys.append(self._token_key + jti)
        if sid:
            keys.append(self._session_key + sid)
        try:
            values = self._store.mget(keys)
        except EphemeralStoreError:
            log.warning("idp.revocation.store_unavailable")
            return self._ask_database(open_session, _present(jti, sid), now)
        if values[0] is None:
            # The mirror is not known to be complete: rebuild it, answer from the database.
            with open_session() as db:
                self.reload(db, now)
            return self._ask_database(open_session, _present(jti, sid), now)
        return any(value is not None for value in values[1:])

    def reload(self, db: Session, now: datetime) -> bool:
        """Mirror every unexpired revocation and mark the mirror complete, in one Redis
        transaction (nothing or all of it lands) guarded by the epoch read before the
        snapshot; report success."""
        epoch_key = self._keys.revocations_epoch()
        try:
            self._store.set(epoch_key, secrets.token_bytes(16), ttl=_EPOCH_TTL, only_if_new=True)
            epoch = self._store.get(epoch_key)
        except EphemeralStoreError:
            log.warning("idp.revocation.mirror_failed")
            return False
        if epoch is None:  # flushed already: the next attempt starts a new epoch
            return False
        # A fresh snapshot: every revocation committed before this point is in it.
        db.rollback()
        rows = db.execute(
            select(Revocation.kind, Revocation.value, Revocation.expires_at).where(
                Revocation.expires_at > now
            )
        ).all()
        items = [
            (self._keys.revoked(kind, value), b"1", (expires - now).total_seconds())
            for kind, value, expires in rows
        ]
        items.append((self._keys.revocations_loaded(), b"1", _COMPLETE_MARKER_TTL))
        try:
            written = self._store.set_many(items, guard=(epoch_key, epoch))
        except EphemeralStoreError:
            log.warning("idp.revocation.mirror_failed")
            return False
        if not written:
            log.info("idp.revocation.mirror_epoch_changed")
        return written

    def mirror_committed(
        self, items: list[tuple[RevokedKind, str, datetime, datetime]], engine: Engine | None
    ) -> None:
        """Mirror revocations again now that they are committed (see the module docstring);
        on failure, stop trusting the mirror here and mark it dirty for the other instances."""
        now = max(item[3] for item in items)
        if self._mirror([(kind, value, expires) for kind, value, expires, _ in items], now):
            return
        self._distrusted = True
        if engine is None:
            return
        try:
            with Session(engine) as db, db.begin():
                _mark_dirty(db, now)
        except Exception:  # the database is away too: this instance already asks it
            log.exception("idp.revocation.dirty_mark_failed")

    def reconcile(self, db: Session, now: datetime) -> None:
        """Rebuild the mirror (each second, in every instance) and settle the dirty mark."""
        dirty_since = db.scalar(
            select(MirrorState.dirty_since).where(MirrorState.id == _MIRROR_STATE_ID)
        )
        if dirty_since is not None:
            self._distrusted = True
        if not self.reload(db, now):
            self._distrusted = True
            return
        if dirty_since is not None:
            # Clear only the mark that was seen: a newer failure keeps the mirror dirty.
            cleared = db.execute(
                update(MirrorState)
                .where(MirrorState.id == _MIRROR_STATE_ID)
                .where(MirrorState.dirty_since == dirty_since)
                .values(dirty_since=None)
            )
            db.commit()
            if cleared.rowcount != 1:  # type: ignore[attr-defined]
                return
            log.info("idp.revocation.mirror_rebuilt")
        self._distrusted = False

    def _mirror(self, items: list[tuple[RevokedKind, str, datetime]], now: datetime) -> bool:
        try:
            self._store.set_many(
                (self._keys.revoked(kind.value, value), b"1", (expires - now).total_seconds())
                for kind, value, expires in items
                if expires > now
            )
        except EphemeralStoreError:
            log.warning("idp.revocation.mirror_failed")
            return False
        return True

    @staticmethod
    def _ask_database(
        open_session: Callable[[], Session], present: list[tuple[RevokedKind, str]], now: datetime
    ) -> bool:
        if not present:
            return False
        with open_session() as db:
            found = db.scalar(
                select(Revocation.value)
                .where(
                    or_(*[(Revocation.kind == k) & (Revocation.value == v) for k, v in present]),
                    Revocation.expires_at > now,
                )
                .limit(1)
            )
        return found is not None


def _present(jti: str | None, sid: str | None) -> list[tuple[RevokedKind, str]]:
    wanted = [(RevokedKind.ACCESS_TOKEN, jti), (RevokedKind.SESSION, sid)]
    return [(kind, value) for kind, value in wanted if value]


@event.listens_for(Session, "after_commit")
def _mirror_after_commit(db: Session) -> None:
    pending = db.info.pop(_AFTER_COMMIT, None)
    if not pending:
        return
    bind = db.get_bind()
    engine = bind if isinstance(bind, Engine) else None
    by_list: dict[int, tuple[RevocationList, list[tuple[RevokedKind, str, datetime, datetime]]]]
    by_list = {}
    for revocations, kind, value, expires_at, now in pending:
        by_list.setdefault(id(revocations), (revocations, []))[1].append(
            (kind, value, expires_at, now)
        )
    for revocations, items in by_list.values():
        revocations.mirror_committed(items, engine)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(db: Session) -> None:
    db.info.pop(_AFTER_COMMIT, None)


def _mark_dirty(db: Session, now: datetime) -> None:
    # An upsert: two revocations failing at once must not collide on creating the row.
    insert = postgresql.insert if is_postgresql(db) else sqlite.insert
    statement = insert(MirrorState).values(id=_MIRROR_STATE_ID, dirty_since=now)
    db.execute(statement.on_conflict_do_update(index_elements=["id"], set_={"dirty_since": now}))


def revoke_grant(
    db: Session,
    revocations: RevocationList,
    grant: Grant,
    *,
    reason: str,
    now: datetime,
    context: AuditContext = NO_CONTEXT,
) -> None:
    """Revoke a token family: its refresh tokens and every unexpired access token from it."""
    # Lock the grant: a refresh in flight finishes first (its token is then found below) or
    # sees the revocation and fails.
    db.refresh(grant, with_for_update=True)
    if grant.revoked_at is not None:
        return
    grant.revoked_at = now
    grant.revoke_reason = reason
    tokens = db.scalars(
        select(GrantAccessToken).where(
            GrantAccessToken.grant_id == grant.id, GrantAccessToken.expires_at > now
        )
    ).all()
    for token in tokens:
        revocations.revoke(
            db,
            RevokedKind.ACCESS_TOKEN,
            token.jti,
            expires_at=token.expires_at,
            now=now,
            reason=reason,
        )
    record(
        db,
        "token.grant_revoked",
        now=now,
        client_id=grant.client_id,
        context=context,
        grant=grant.id,
        reason=reason,
        access_tokens=len(tokens),
    )


def end_session(
    db: Session,
    revocations: RevocationList,
    sid: str,
    *,
    reason: str,
    now: datetime,
    access_token_ttl: int,
    actor: str | None = None,
    context: AuditContext = NO_CONTEXT,
) -> UserSession | None:
    """End an IdP session, the token families bound to it and its access tokens."""
    user_session = db.get(UserSession, sid)
    if user_session is None or user_session.ended_at is not None:
        return None
    user_session.ended_at = now
    user_session.end_reason = reason
    # Access tokens carry the sid; none issued under this session outlives this window (the
    # margin covers a token request that found the session live just before it ended).
    revocations.revoke(
        db,
        RevokedKind.SESSION,
        sid,
        expires_at=now + timedelta(seconds=access_token_ttl) + _IN_FLIGHT_MARGIN,
        now=now,
        reason=reason,
    )
    grants = db.scalars(
        select(Grant).where(
            Grant.session_id == sid, Grant.kind == GrantKind.SESSION, Grant.revoked_at.is_(None)
        )
    ).all()
    for grant in grants:
        revoke_grant(db, revocations, grant, reason=reason, now=now, context=context)
    notified = queue_logout_notices(db, user_session, now=now)
    record(
        db,
        "session.ended",
        now=now,
        actor=actor,
        context=context,
        sid=sid,
        reason=reason,
        notified=notified,
    )
    return user_session


def queue_logout_notices(db: Session, user_session: UserSession, *, now: datetime) -> list[str]:
    """Owe a back-channel logout token to every client that obtained tokens in this session
    and registered a back-channel logout URI; return their ids."""
    clients = db.execute(
        select(Client.client_id, Client.backchannel_logout_uri)
        .join(Grant, Grant.client_id == Client.client_id)
        .where(Grant.session_id == user_session.id, Client.backchannel_logout_uri.is_not(None))
        .distinct()
    ).all()
    sub = db.scalar(select(User.sub).where(User.id == user_session.user_id))
    for client_id, uri in clients:
        db.add(
            RelyingPartyNotice(
                id=secrets.token_hex(16),
                client_id=client_id,
                target_uri=uri,
                sub=sub,
                sid=user_session.id,
                created_at=now,
                next_attempt_at=now,
            )
        )
    return [client_id for client_id, _ in clients]


def queue_backchannel_ping(
    db: Session, request: BackchannelRequest, *, sub: str, now: datetime
) -> bool:
    """Owe a ping-mode client the notice that its backchannel request has an answer (CIBA Core
    1.0 §10.2). The notice names the request; the sender reads the client notification token
    and derives the auth_req_id when it sends, so no bearer value sits in the outbox."""
    if request.delivery_mode != "ping":
        return False
    uri = db.scalar(
        select(Client.backchannel_client_notification_endpoint).where(
            Client.client_id == request.client_id
        )
    )
    if uri is None:
        return False
    db.add(
        RelyingPartyNotice(
            id=secrets.token_hex(16),
            kind=NoticeKind.CIBA_PING,
            client_id=request.client_id,
            target_uri=uri,
            sub=sub,
            payload={"request": request.id},
            created_at=now,
            next_attempt_at=now,
        )
    )
    return True


def end_backchannel_requests(
    db: Session,
    device_id: str | None = None,
    *,
    user_id: str | None = None,
    reason: str,
    now: datetime,
    actor: str | None = None,
    context: AuditContext = NO_CONTEXT,
) -> int:
    """End the backchannel (CIBA) requests the phone (``device_id``) or the account
    (``user_id``) was asked and that have not given tokens yet: waiting ones, and approved
    ones not yet fetched. Their clients get ``access_denied`` (and a ping, in ping mode).
    Return how many ended."""
    if (device_id is None) == (user_id is None):
        raise ValueError("end_backchannel_requests: give a device_id or a user_id")
    whose = (
        BackchannelRequest.device_id == device_id
        if device_id is not None
        else BackchannelRequest.user_id == user_id
    )
    ending = db.scalars(
        select(BackchannelRequest)
        .where(
            whose,
            BackchannelRequest.status.in_([BackchannelStatus.PENDING, BackchannelStatus.APPROVED]),
        )
        .with_for_update()
    ).all()
    for request in ending:
        request.status = BackchannelStatus.DENIED
        request.end_reason = reason
        sub = db.scalar(select(User.sub).where(User.id == request.user_id)) or ""
        pinged = queue_backchannel_ping(db, request, sub=sub, now=now)
        record(
            db,
            "ciba.ended",
            now=now,
            outcome="failure",
            actor=actor,
            client_id=request.client_id,
            context=context,
            request=request.id,
            reason=reason,
            pinged=pinged,
        )
    return len(ending)


def announce_notices(store: EphemeralStore, keys: Keys) -> None:
    """Wake every instance's notice sender: call after committing logout notices or security
    events, so that delivery starts now rather than at the next poll.

    Best effort: the notices are in the database, and the senders poll it anyway; when Redis
    cannot be reached they are sent at the next poll (half a second).
    """
    try:
        store.publish(keys.channel(NOTICES_TOPIC), b"")
    except EphemeralStoreError:
        log.warning("idp.notices.announce_failed")
