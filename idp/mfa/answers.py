"""The phone's signed answer to a push challenge, verified with the key stored at binding.

The relay only carries the answer: it cannot make one, because it never holds the phone's key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from idp.mfa.challenges import Challenge
from idp.mfa.errors import AnswerRejectedError
from idp.mfa.models import Device
from idp.mfa.models import DeviceStatus

ANSWER_TYP = "nexus-answer+jwt"
_MAX_AGE = 120


@dataclass(frozen=True)
class Answer:
    challenge_id: str
    decision: str  # "approve" or "deny"
    number: int | None
    report: bool
    signed: str  # the JWS itself: the evidence of a confirmed transaction


def read_challenge_id(answer: str) -> str:
    """Which challenge an answer claims to answer (not yet trusted).

    Raises:
        AnswerRejectedError
    """
    try:
        claims = json.loads(jws.extract_compact(answer.encode()).payload)
        return str(claims["challenge_id"])
    except (JoseError, KeyError, TypeError, ValueError) as exc:
        raise AnswerRejectedError() from exc


def verify_answer(answer: str, *, challenge: Challenge, device: Device, now: datetime) -> Answer:
    """Check the answer's signature with the bound key and that it covers this challenge: its
    id, its nonce, the number typed and, for a transaction, the details' hash.

    Raises:
        AnswerRejectedError
    """
    # SECURITY: a suspended or replaced phone never confirms anything.
    if device.status != DeviceStatus.ACTIVE or device.id != challenge.device_id:
        raise AnswerRejectedError()
    try:
        header = jws.extract_compact(answer.encode()).protected
        if header.get("typ") != ANSWER_TYP or header.get("alg") != "ES256":
            raise AnswerRejectedError()
        key = ECKey.import_key(device.public_jwk)
        claims: dict[str, Any] = json.loads(
            jws.deserialize_compact(answer, key, algorithms=["ES256"]).payload
        )
    except (JoseError, KeyError, TypeError, ValueError) as exc:
        raise AnswerRejectedError() from exc
    issued = claims.get("iat")
    if (
        claims.get("challenge_id") != challenge.id
        or claims.get("nonce") != challenge.nonce
        or claims.get("txn_hash") != challenge.txn_hash
        or claims.get("decision") not in ("approve", "deny")
        or not isinstance(issued, int)
        or abs(now.timestamp() - issued) > _MAX_AGE
    ):
        raise AnswerRejectedError()
    number = claims.get("number")
    if claims["decision"] == "approve":
        # A backchannel (CIBA) challenge is approved without a number (it has none); any
        # other approval carries the number typed from the sign-in page.
        if challenge.is_backchannel and number is not None:
            raise AnswerRejectedError()
        if not challenge.is_backchannel and not isinstance(number, int):
            raise AnswerRejectedError()
    return Answer(
        challenge_id=challenge.id,
        decision=str(claims["decision"]),
        number=number if isinstance(number, int) else None,
        report=bool(claims.get("report", False)),
        signed=answer,
    )
