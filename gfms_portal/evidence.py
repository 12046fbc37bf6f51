"""Offline checks of a confirmed transaction's evidence (what ``GET /evidence/<txn>`` at the
IdP returns): the phone's ES256 signature over the details' hash, with the device key.

Used when an approval comes back and again by ``gfms-portal verify`` on an archived bundle.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from gfms_portal.errors import EvidenceInvalidError

ANSWER_TYP = "nexus-answer+jwt"


def canonical_json(value: object) -> bytes:
    """Sorted keys, no spaces, UTF-8: the form the IdP hashes (docs/features.md, transaction
    confirmation)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def details_hash(authorization_details: list[dict[str, Any]]) -> str:
    return sha256_hex(canonical_json(authorization_details))


def verify_evidence(evidence: dict[str, Any]) -> dict[str, Any]:
    """Check that the phone approved exactly these details: the hash is the details' hash, the
    answer is an ES256 JWS typed ``nexus-answer+jwt`` by the device key, deciding ``approve``
    over that hash. Returns the answer's claims.

    Raises:
        EvidenceInvalidError
    """
    try:
        details = evidence["authorization_details"]
        claimed_hash = evidence["txn_hash"]
        signed = evidence["signed_answer"]
        key = ECKey.import_key(evidence["device"]["jwk"])
        if key.is_private:
            raise EvidenceInvalidError("the device key must be a public key")
        header = jws.extract_compact(signed.encode()).protected
        if header.get("typ") != ANSWER_TYP or header.get("alg") != "ES256":
            raise EvidenceInvalidError("the answer is not a phone's signed answer")
        # RFC 8725 §3.1: the one algorithm a phone signs with, never "none".
        answer: dict[str, Any] = json.loads(
            jws.deserialize_compact(signed, key, algorithms=["ES256"]).payload
        )
    except (JoseError, KeyError, TypeError, ValueError) as exc:
        raise EvidenceInvalidError("the phone's signature does not verify") from exc
    if not isinstance(details, list) or details_hash(details) != claimed_hash:
        raise EvidenceInvalidError("the details do not match their hash")
    if answer.get("txn_hash") != claimed_hash or answer.get("decision") != "approve":
        raise EvidenceInvalidError("the phone did not approve these details")
    return answer


def bound_to_token(evidence: dict[str, Any], claims: dict[str, Any]) -> bool:
    """The IdP's token names the key and the signed answer of this evidence (its
    ``txn_evidence`` claim): evidence signed by any other key, or another answer, is not the
    confirmation the IdP vouched for."""
    binding = claims.get("txn_evidence")
    if not isinstance(binding, dict):
        return False
    try:
        thumbprint = ECKey.import_key(evidence["device"]["jwk"]).thumbprint()
        answer_hash = hashlib.sha256(str(evidence["signed_answer"]).encode()).hexdigest()
    except (JoseError, KeyError, TypeError, ValueError):
        return False
    return binding.get("jkt") == thumbprint and binding.get("answer_sha256") == answer_hash
