"""How the app binds a phone to the IdP: make a key, fetch the IdP's nonce for the activation
code, sign a registration with the new key, keep the TOTP seed the IdP returns."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import requests
from joserfc import jws
from joserfc.jwk import ECKey

from mock_nexus.phones import Phone

BINDING_TYP = "nexus-binding+jwt"


@dataclass(frozen=True)
class Activation:
    idp: str
    code: str


class BindingError(Exception):
    """The IdP refused the binding, or could not be reached; ``code`` says which."""

    def __init__(self, code: str, description: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.description = description


def read_activation(text: str, *, default_idp: str) -> Activation:
    """What the user scanned (a ``nexussmartid://bind`` link) or typed (the code alone)."""
    value = text.strip()
    if value.startswith("nexussmartid://"):
        query = parse_qs(urlsplit(value).query)
        return Activation(idp=query.get("issuer", [default_idp])[0], code=query["code"][0])
    return Activation(idp=default_idp, code=value)


def bind(phone: Phone, activation: Activation, *, relay_url: str, timeout: float) -> Phone:
    """Register ``phone`` with the IdP; return it bound (the caller saves it).

    Raises:
        BindingError
    """
    key = ECKey.generate_key("P-256", private=True)
    try:
        answer = requests.post(
            f"{activation.idp}/enrol/devices/challenge",
            json={"activation_code": activation.code},
            timeout=timeout,
        )
        if answer.status_code != 200:
            raise _refused(answer)
        nonce = answer.json()["nonce"]
        proof = jws.serialize_compact(
            {"alg": "ES256", "typ": BINDING_TYP, "jwk": dict(key.as_dict(private=False))},
            json.dumps(
                {
                    "aud": activation.idp,
                    "iat": int(time.time()),
                    "nonce": nonce,
                    "activation_code": activation.code,
                    "push_address": f"{relay_url}/phones/{phone.phone_id}",
                }
            ).encode(),
            key,
            algorithms=["ES256"],
        )
        answer = requests.post(
            f"{activation.idp}/enrol/devices", json={"proof": proof}, timeout=timeout
        )
        if answer.status_code != 201:
            raise _refused(answer)
        body = answer.json()
    except (requests.RequestException, ValueError, KeyError) as exc:
        raise BindingError("idp_unreachable", str(exc)[:200]) from exc
    return Phone(
        phone_id=phone.phone_id,
        idp=activation.idp,
        device_id=body["device_id"],
        private_jwk=dict(key.as_dict(private=True)),  # stays on the phone
        totp_secret=body["totp"]["secret"],
        bound_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _refused(answer: requests.Response) -> BindingError:
    try:
        body = answer.json()
        return BindingError(str(body.get("error")), str(body.get("error_description", "")))
    except ValueError:
        return BindingError("idp_error", f"HTTP {answer.status_code}")
