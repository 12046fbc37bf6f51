"""Signing keys: creation, rotation with overlap, the published JWKS, the in-process cache.

Each algorithm (ES256, RS256) has one ``current`` and one ``next`` key. A rotation promotes
the already-published ``next`` key to ``current``, keeps the old ``current`` published as
``previous`` for ``key_overlap`` seconds after it stopped signing (however many rotations
follow), and publishes a fresh ``next``. Relying parties therefore see a key in the JWKS
before anything is signed with it, and keep seeing it until what it signed has expired. A key
that must go at once (a compromise) is retired by hand.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from joserfc.jwk import ECKey
from joserfc.jwk import KeySet
from joserfc.jwk import RSAKey
from joserfc.jwk import import_key
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from idp.clock import Clock
from idp.errors import IdpError
from idp.oidc.jsondoc import serialise
from idp.oidc.models import KeyStatus
from idp.oidc.models import SigningKey
from idp.store.secrets import DataCipher

log = logging.getLogger(__name__)

SUPPORTED_ALGS = ("ES256", "RS256")
# How long relying parties may cache the JWKS (its Cache-Control max-age).
JWKS_MAX_AGE = 300
PUBLISHED = (KeyStatus.NEXT, KeyStatus.CURRENT, KeyStatus.PREVIOUS)


def _generate(alg: str) -> ECKey | RSAKey:
    if alg == "ES256":
        return ECKey.generate_key("P-256", private=True)
    if alg == "RS256":
        return RSAKey.generate_key(2048, private=True)
    raise ValueError(f"unsupported signing algorithm {alg}")


def _context(kid: str) -> str:
    return f"signing_keys.private_jwk:{kid}"


def create_key(
    db: Session, cipher: DataCipher, *, alg: str, status: KeyStatus, now: datetime
) -> SigningKey:
    key = _generate(alg)
    # RFC 7638 thumbprint as kid: stable, derived from the key, no counter to coordinate.
    kid = key.thumbprint()
    public = dict(key.as_dict(private=False))
    public.update({"kid": kid, "use": "sig", "alg": alg})
    private = dict(key.as_dict(private=True))
    row = SigningKey(
        kid=kid,
        alg=alg,
        status=status,
        public_jwk=public,
        private_jwk_encrypted=cipher.encrypt(json.dumps(private).encode(), context=_context(kid)),
        created_at=now,
        activated_at=now if status == KeyStatus.CURRENT else None,
    )
    db.add(row)
    db.flush()
    return row


def ensure_keys(db: Session, cipher: DataCipher, *, now: datetime) -> list[SigningKey]:
    """Make sure each algorithm has a current and a next key; return what was created."""
    created = []
    for alg in SUPPORTED_ALGS:
        statuses = set(
            db.scalars(
                select(SigningKey.status).where(
                    SigningKey.alg == alg, SigningKey.status.in_(PUBLISHED)
                )
            )
        )
        for status in (KeyStatus.CURRENT, KeyStatus.NEXT):
            if status not in statuses:
                created.append(create_key(db, cipher, alg=alg, status=status, now=now))
    return created


def rotate_keys(
    db: Session,
    cipher: DataCipher,
    *,
    now: datetime,
    overlap: int,
    algs: tuple[str, ...],
    force: bool = False,
) -> list[str]:
    """Rotate the given algorithms' keys; return the kids that now sign.

    Raises:
        KeyRotationError: a next key has been published for less than the JWKS cache
            lifetime, so relying parties may not know it yet (``force`` overrides).
    """
    ensure_keys(db, cipher, now=now)
    if not force:
        fresh = db.scalar(
            select(SigningKey.kid).where(
                SigningKey.alg.in_(algs),
                SigningKey.status == KeyStatus.NEXT,
                SigningKey.created_at > now - timedelta(seconds=JWKS_MAX_AGE),
            )
        )
        if fresh is not None:
            raise KeyRotationError()
    signing = []
    for alg in algs:
        rows = {
            row.status: row
            for row in db.scalars(
                select(SigningKey).where(
                    SigningKey.alg == alg,
                    SigningKey.status.in_((KeyStatus.CURRENT, KeyStatus.NEXT)),
                )
            )
        }
        rows[KeyStatus.CURRENT].status = KeyStatus.PREVIOUS
        rows[KeyStatus.CURRENT].superseded_at = now
        rows[KeyStatus.NEXT].status = KeyStatus.CURRENT
        rows[KeyStatus.NEXT].activated_at = now
        db.flush()
        create_key(db, cipher, alg=alg, status=KeyStatus.NEXT, now=now)
        signing.append(rows[KeyStatus.NEXT].kid)
    retire_expired(db, now=now, overlap=overlap)
    return signing


def retire_expired(db: Session, *, now: datetime, overlap: int) -> None:
    for row in db.scalars(select(SigningKey).where(SigningKey.status == KeyStatus.PREVIOUS)):
        if not _within_overlap(row, now=now, overlap=overlap):
            row.status = KeyStatus.RETIRED


class KeyRetirementError(IdpError):
    code = "key_in_use"
    message = "That key signs now: rotate first, then retire it."


class KeyRotationError(IdpError):
    code = "next_key_too_new"
    message = (
        "The next key was published less than the JWKS cache lifetime ago; relying parties "
        "may not have fetched it yet. Wait, or force the rotation."
    )


def retire_key(db: Session, cipher: DataCipher, kid: str, *, now: datetime) -> SigningKey:
    """Withdraw a key at once (it leaked): nothing it signed verifies any more. A retired
    next key is replaced by a new one, which must then be published a while before use.

    Raises:
        KeyRetirementError: the key is signing now, or there is no such key.
    """
    row = db.get(SigningKey, kid)
    if row is None:
        raise KeyRetirementError("There is no key with that kid.")
    if row.status == KeyStatus.CURRENT:
        raise KeyRetirementError()
    was_next = row.status == KeyStatus.NEXT
    row.status = KeyStatus.RETIRED
    db.flush()
    if was_next:
        create_key(db, cipher, alg=row.alg, status=KeyStatus.NEXT, now=now)
    return row


# Processes learn of a rotation by pub/sub or their one-minute reload: one that missed the
# message may still sign with the old key that long, and a little clock drift on top.
HISTORY_GRACE = 120


def build_key_history(db: Session) -> dict[str, Any]:
    """The public part of every key that ever signed, with the period it signed in: a JWK
    Set whose keys carry ``signed_from`` and, once superseded, ``signed_until`` (RFC 3339,
    UTC). A retired key stays: what it signed must still verify for as long as the archive
    is kept. Keys that never signed (``next``) are not listed.
    """
    rows = db.scalars(
        select(SigningKey)
        .where(SigningKey.activated_at.is_not(None))
        .order_by(SigningKey.activated_at, SigningKey.kid)
    )
    keys = []
    for row in rows:
        assert row.activated_at is not None  # noqa: S101 - the query asks for it
        jwk: dict[str, Any] = dict(row.public_jwk)
        jwk["signed_from"] = _rfc3339(row.activated_at)
        if row.superseded_at is not None:
            jwk["signed_until"] = _rfc3339(row.superseded_at + timedelta(seconds=HISTORY_GRACE))
        keys.append(jwk)
    return {"keys": keys}


def _rfc3339(moment: datetime) -> str:
    # SQLite hands back naive datetimes (stored as UTC); whole seconds, as token iat is.
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _within_overlap(row: SigningKey, *, now: datetime, overlap: int) -> bool:
    return row.superseded_at is None or now < row.superseded_at + timedelta(seconds=overlap)


@dataclass(frozen=True)
class KeySnapshot:
    signing: dict[str, tuple[str, ECKey | RSAKey]]  # alg -> (kid, private key)
    verifying: KeySet  # every published key, public parts
    jwks_json: bytes
    jwks_etag: str


class KeyRing:
    """The keys of this process: loaded from the database, reloaded on rotation and every
    minute (a superseded key leaves the JWKS when its overlap ends, announced or not)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        cipher: DataCipher,
        *,
        clock: Clock,
        overlap: int,
    ) -> None:
        self._sessions = sessions
        self._cipher = cipher
        self._clock = clock
        self._overlap = overlap
        self._snapshot: KeySnapshot | None = None
        self._lock = threading.Lock()

    @property
    def snapshot(self) -> KeySnapshot:
        snapshot = self._snapshot
        if snapshot is None:
            snapshot = self.reload()
        return snapshot

    def reload(self) -> KeySnapshot:
        with self._lock, self._sessions() as db:
            rows = db.scalars(
                select(SigningKey)
                .where(SigningKey.status.in_(PUBLISHED))
                .order_by(SigningKey.alg, SigningKey.created_at)
            ).all()
            now = self._clock.now()
            live = [r for r in rows if _within_overlap(r, now=now, overlap=self._overlap)]
            snapshot = self._build(live)
            self._snapshot = snapshot
            return snapshot

    def _build(self, rows: list[SigningKey] | Any) -> KeySnapshot:
        signing: dict[str, tuple[str, ECKey | RSAKey]] = {}
        public_keys = []
        for row in rows:
            public_keys.append(row.public_jwk)
            if row.status == KeyStatus.CURRENT:
                private = json.loads(
                    self._cipher.decrypt(row.private_jwk_encrypted, context=_context(row.kid))
                )
                key = import_key(private, parameters={"kid": row.kid, "alg": row.alg})
                assert isinstance(key, ECKey | RSAKey)  # noqa: S101 - we only store these
                signing[row.alg] = (row.kid, key)
        missing = [alg for alg in SUPPORTED_ALGS if alg not in signing]
        if missing:
            raise RuntimeError(f"no current signing key for {missing}: run 'idp keys rotate'")
        jwks = {"keys": public_keys}
        body, etag = serialise(jwks)
        return KeySnapshot(
            signing=signing,
            verifying=KeySet.import_key_set(jwks),  # type: ignore[arg-type]
            jwks_json=body,
            jwks_etag=etag,
        )
