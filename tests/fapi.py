"""A FAPI 2.0 client's side, over Flask's test client: its key, client assertions (RFC 7523),
request objects (RFC 9101) and pushed requests (RFC 9126), all made with joserfc."""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import ECKey
from werkzeug.test import TestResponse

from tests.rp import ISSUER
from tests.rp import RP

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def new_key(kid: str | None = None) -> ECKey:
    return ECKey.generate_key(
        "P-256",
        parameters={"kid": kid or secrets.token_hex(4), "alg": "ES256", "use": "sig"},
        private=True,
    )


def public_jwks(*keys: ECKey) -> dict[str, Any]:
    return {"keys": [key.as_dict(private=False) for key in keys]}


def signed(claims: dict[str, Any], key: Any, *, alg: str = "ES256", **header: Any) -> str:
    return jwt.encode({"alg": alg, **header}, claims, key, algorithms=[alg])


def unsigned(claims: dict[str, Any]) -> str:
    """An alg=none JWT: what an attacker sends when no key is at hand."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@dataclass
class FapiClient:
    """A client authenticating with private_key_jwt and pushing its requests."""

    rp: RP
    key: ECKey
    now: Any  # the IdP's clock (a FakeClock), so that exp and nbf fit its time

    @property
    def client_id(self) -> str:
        return self.rp.client_id

    def _ts(self) -> int:
        return int(self.now().timestamp())

    def assertion_claims(self, **overrides: Any) -> dict[str, Any]:
        now = self._ts()
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": ISSUER,
            "iat": now,
            "exp": now + 60,
            "jti": secrets.token_urlsafe(16),
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def assertion(self, key: Any = None, *, alg: str = "ES256", **overrides: Any) -> str:
        key = key or self.key
        return signed(
            self.assertion_claims(**overrides), key, alg=alg, kid=getattr(key, "kid", None)
        )

    def auth(self, assertion: str | None = None) -> dict[str, str]:
        return {
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion or self.assertion(),
        }

    def request_object(self, params: dict[str, str], key: Any = None, **overrides: Any) -> str:
        now = self._ts()
        claims: dict[str, Any] = {
            "iss": self.client_id,
            "aud": ISSUER,
            "nbf": now,
            "exp": now + 300,
            "jti": secrets.token_urlsafe(8),
            **params,
        }
        claims.update(overrides)
        key = key or self.key
        return signed({k: v for k, v in claims.items() if v is not None}, key, kid=key.kid)

    def push(self, params: dict[str, str], **auth: str) -> TestResponse:
        return self.rp.client.post("/par", data={**params, **(auth or self.auth())})

    def authorize_with(self, request_uri: str, client_id: str | None = None) -> TestResponse:
        query = {"client_id": client_id or self.client_id, "request_uri": request_uri}
        return self.rp.follow(self.rp.client.get("/authorize?" + urlencode(query)))

    def token(self, **data: str) -> TestResponse:
        return self.rp.client.post("/token", data={**data, **self.auth()})
