"""How the app answers a challenge: it signs what it showed (the challenge id, its nonce, the
number the user typed and the hash of the transaction details) with the key made at binding,
and proves possession of that key on the call that carries the answer (DPoP, RFC 9449)."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import requests
from joserfc import jws
from joserfc.jwk import ECKey

from mock_nexus.phones import Phone

ANSWER_TYP = "nexus-answer+jwt"
DPOP_TYP = "dpop+jwt"


class AnswerError(Exception):
    """The answer could not be made or delivered; ``code`` says why."""

    def __init__(self, code: str, status: int = 400) -> None:
        super().__init__(code)
        self.code = code
        self.status = status


def transaction_hash(details: list[dict[str, Any]] | None) -> str | None:
    """SHA-256 over the canonical JSON of the details the phone showed."""
    if not details:
        return None
    canonical = json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def sign_answer(
    phone: Phone,
    *,
    challenge_id: str,
    nonce: str,
    authorization_details: list[dict[str, Any]] | None,
    decision: str,
    number: int | None = None,
    report: bool = False,
) -> str:
    payload: dict[str, Any] = {
        "challenge_id": challenge_id,
        "nonce": nonce,
        "decision": decision,
        "txn_hash": transaction_hash(authorization_details),
        "iat": int(time.time()),
    }
    if decision == "approve":
        payload["number"] = number
    if report:
        payload["report"] = True
    return jws.serialize_compact(
        {"alg": "ES256", "typ": ANSWER_TYP},
        json.dumps(payload).encode(),
        _key(phone),
        algorithms=["ES256"],
    )


def dpop_proof(phone: Phone, *, method: str, url: str) -> str:
    key = _key(phone)
    return jws.serialize_compact(
        {"alg": "ES256", "typ": DPOP_TYP, "jwk": dict(key.as_dict(private=False))},
        json.dumps(
            {
                "jti": secrets.token_urlsafe(16),
                "htm": method,
                "htu": url.split("?")[0],
                "iat": int(time.time()),
            }
        ).encode(),
        key,
        algorithms=["ES256"],
    )


def deliver(phone: Phone, answer: str, *, answer_to: str, timeout: float) -> dict[str, Any]:
    """Send the answer to the IdP; return what the IdP said.

    Raises:
        AnswerError
    """
    return _post_with_proof(phone, answer_to, {"answer": answer}, timeout=timeout)


def read_confirm_link(text: str) -> tuple[str, str]:
    """A ``nexussmartid://confirm`` link scanned from a login page: issuer and challenge. It
    carries no number: the person types the one the login page shows, as with a push.

    Raises:
        AnswerError
    """
    parts = urlsplit(text.strip())
    query = parse_qs(parts.query)
    try:
        if parts.scheme != "nexussmartid" or parts.netloc != "confirm":
            raise ValueError(text)
        return query["issuer"][0], query["challenge"][0]
    except (KeyError, IndexError, ValueError) as exc:
        raise AnswerError("not_a_confirm_code") from exc


def fetch_scanned(
    phone: Phone, *, issuer: str, challenge_id: str, timeout: float
) -> dict[str, Any]:
    """Ask the IdP what the scanned challenge is (only its own phone may see it).

    Raises:
        AnswerError
    """
    url = f"{issuer}/mfa/challenges/{challenge_id}"
    try:
        response = requests.get(
            url, headers={"DPoP": dpop_proof(phone, method="GET", url=url)}, timeout=timeout
        )
        body = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise AnswerError("idp_unreachable", 502) from exc
    if response.status_code != 200:
        raise AnswerError("unknown_challenge", 404)
    return dict(body)


def _key(phone: Phone) -> ECKey:
    if phone.private_jwk is None:
        raise AnswerError("not_bound", 404)
    return ECKey.import_key(phone.private_jwk)  # type: ignore[arg-type]


ROTATION_TYP = "nexus-key-rotation+jwt"


def rotate_key(phone: Phone, *, timeout: float) -> Phone:
    """Move the phone to a new key: the old key proves the call, the new key signs the
    rotation. Return the phone with its new key (the caller saves it).

    Raises:
        AnswerError
    """
    old = _key(phone)
    new = ECKey.generate_key("P-256", private=True)
    rotation = jws.serialize_compact(
        {"alg": "ES256", "typ": ROTATION_TYP, "jwk": dict(new.as_dict(private=False))},
        json.dumps(
            {"aud": phone.idp, "iat": int(time.time()), "previous": old.thumbprint()}
        ).encode(),
        new,
        algorithms=["ES256"],
    )
    _call_idp(phone, "/mfa/device/key", {"rotation": rotation}, timeout=timeout)
    return replace(phone, private_jwk=dict(new.as_dict(private=True)))


def change_push_address(phone: Phone, push_address: str, *, timeout: float) -> dict[str, Any]:
    """Tell the IdP where the relay reaches this phone now.

    Raises:
        AnswerError
    """
    return _call_idp(phone, "/mfa/device/push-address", {"push_address": push_address},
                     timeout=timeout)  # fmt: skip


def _call_idp(phone: Phone, path: str, body: dict[str, Any], *, timeout: float) -> dict[str, Any]:
    return _post_with_proof(phone, f"{phone.idp}{path}", body, timeout=timeout)


def _post_with_proof(
    phone: Phone, url: str, body: dict[str, Any], *, timeout: float
) -> dict[str, Any]:
    """The phone's calls to the IdP carry a DPoP proof of its key (RFC 9449).

    Raises:
        AnswerError
    """
    try:
        response = requests.post(
            url, json=body, headers={"DPoP": dpop_proof(phone, method="POST", url=url)},
            timeout=timeout,
        )  # fmt: skip
        answer = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise AnswerError("idp_unreachable", 502) from exc
    if response.status_code != 200:
        raise AnswerError(str(answer.get("error", "refused")), 409)
    return dict(answer)
