"""The OpenID provider side of the mock: authorization requests, codes and ID tokens carrying
``verified_claims`` (OpenID Connect for Identity Assurance 1.0)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey
from joserfc.jwk import KeySet

from mock_paotang.registry import Citizen
from mock_paotang.settings import PaotangSettings


class SigningKey:
    """The mock's own P-256 key, kept in a file so its JWKS survives restarts."""

    def __init__(self, path: str) -> None:
        file = Path(path)
        if file.exists():
            self.key = ECKey.import_key(json.loads(file.read_text()))
        else:
            self.key = ECKey.generate_key("P-256", private=True)
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(json.dumps(self.key.as_dict(private=True)))
            file.chmod(0o600)
        self.kid = self.key.thumbprint()
        public = dict(self.key.as_dict(private=False))
        public.update({"kid": self.kid, "use": "sig", "alg": "ES256"})
        self.jwks = {"keys": [public]}
        self.public_set = KeySet.import_key_set(self.jwks)  # type: ignore[arg-type]

    def sign(self, claims: dict[str, Any]) -> str:
        header = {"alg": "ES256", "kid": self.kid, "typ": "JWT"}
        return jwt.encode(header, claims, self.key, algorithms=["ES256"])


@dataclass
class PendingAuthorization:
    """An authorization request waiting for the citizen to finish in the app."""

    client_id: str
    redirect_uri: str
    state: str | None
    nonce: str | None
    code_challenge: str
    claims: dict[str, Any]
    created: float
    refusals: int = 0


@dataclass
class IssuedCode:
    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str | None
    claims: dict[str, Any]
    citizen: Citizen
    verified_at: datetime
    expires: float


@dataclass
class Knobs:
    """What a test may turn on the running mock (PAOTANG_TEST_CONTROL)."""

    latency_ms: int
    outage: bool
    force_failure: str | None


@dataclass
class State:
    settings: PaotangSettings
    key: SigningKey
    knobs: Knobs
    pending: dict[str, PendingAuthorization] = field(default_factory=dict)
    codes: dict[str, IssuedCode] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def remember(self, request: PendingAuthorization) -> str:
        tx = secrets.token_urlsafe(16)
        with self.lock:
            self._sweep()
            self.pending[tx] = request
        return tx

    def issue_code(self, code: IssuedCode) -> str:
        value = secrets.token_urlsafe(32)
        with self.lock:
            self.codes[value] = code
        return value

    def take_code(self, value: str) -> IssuedCode | None:
        with self.lock:
            code = self.codes.pop(value, None)
        if code is None or code.expires < time.time():
            return None
        return code

    def _sweep(self) -> None:
        horizon = time.time() - 3600
        for tx in [k for k, v in self.pending.items() if v.created < horizon]:
            del self.pending[tx]
        for value in [k for k, v in self.codes.items() if v.expires < time.time()]:
            del self.codes[value]


def subject_for(issuer: str, citizen_id: str) -> str:
    # A stable pseudonym: the citizen ID itself is a claim, never the subject.
    return hashlib.sha256(f"{issuer}|{citizen_id}".encode()).hexdigest()[:32]


def verified_claims(
    citizen: Citizen, *, requested: dict[str, Any], trust_framework: str, verified_at: datetime
) -> dict[str, Any]:
    """The verified_claims element (OIDC4IDA 1.0 §5): how, when and on what evidence."""
    when = verified_at.isoformat(timespec="seconds").replace("+00:00", "Z")
    evidence = {
        "type": "document",
        "check_details": [
            # Card data validated against the civil registration (DOPA) with the laser code.
            {"check_method": "data", "organization": "DOPA", "time": when},
            # Face compared with the card's photo, with a liveness (presentation attack) check.
            {"check_method": "bvr", "time": when},
            {"check_method": "pvr", "time": when},
        ],
        "time": when,
        "document_details": {
            "type": "idcard",
            "personal_number": citizen.citizen_id,
            "date_of_issuance": citizen.card_issued.isoformat(),
            "date_of_expiry": citizen.card_expires.isoformat(),
            "issuer": {"name": "Department of Provincial Administration", "country_code": "THA"},
        },
    }
    available: dict[str, Any] = {
        "given_name": citizen.given_name_th,
        "family_name": citizen.family_name_th,
        "given_name#en": citizen.given_name_en,
        "family_name#en": citizen.family_name_en,
        "birthdate": citizen.birthdate.isoformat(),
        "title#th": citizen.title_th,
    }
    # OIDC4IDA §6: only the claims asked for (all of them when the request names none).
    wanted = requested.get("claims")
    if isinstance(wanted, dict) and wanted:
        claims = {name: value for name, value in available.items() if name in wanted}
    else:
        claims = available
    return {
        "verification": {
            "trust_framework": trust_framework,
            "time": when,
            "verification_process": secrets.token_hex(8),
            "evidence": [evidence],
        },
        "claims": claims,
    }


def id_token_claims(
    state: State, code: IssuedCode, *, now: float, access_token: str
) -> dict[str, Any]:
    settings = state.settings
    claims: dict[str, Any] = {
        "iss": settings.issuer,
        "sub": subject_for(settings.issuer, code.citizen.citizen_id),
        "aud": code.client_id,
        "iat": int(now),
        "exp": int(now) + settings.id_token_ttl,
        "auth_time": int(code.verified_at.timestamp()),
        "txn": secrets.token_hex(12),
        "at_hash": _at_hash(access_token),
    }
    if code.nonce:
        claims["nonce"] = code.nonce
    requested = code.claims.get("id_token", {}).get("verified_claims")
    if requested is not None:
        claims["verified_claims"] = verified_claims(
            code.citizen,
            requested=requested if isinstance(requested, dict) else {},
            trust_framework=settings.trust_framework,
            verified_at=code.verified_at,
        )
    return claims


def _at_hash(access_token: str) -> str:
    # OIDC Core §3.1.3.6 for ES256: left half of the SHA-256, base64url.
    digest = hashlib.sha256(access_token.encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def now_utc() -> datetime:
    return datetime.now(UTC)
