"""Signed request objects (RFC 9101, JAR): an authorization request as a JWT the client signed.

The rules are FAPI 2.0 Message Signing's (§5.3.1, after FAPI 1.0 Advanced §5.2.2): signed with
ES256 or PS256 by a key the client registered, ``iss`` the client, ``aud`` this issuer, ``nbf``
no more than 60 minutes old, ``exp`` no more than 60 minutes after ``nbf``, the inner
``client_id`` the outer one. The object's parameters are the request: those beside it in the
query are ignored (RFC 9101 §6.3).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Error
from joserfc import jwt
from joserfc.errors import JoseError

from idp.oidc.client_keys import ClientKeys
from idp.oidc.client_keys import InvalidClientKeysError
from idp.oidc.clients import CLIENT_SIGNING_ALGS
from idp.oidc.clients import RegisteredClient
from idp.oidc.interaction import validate_parameters

MAX_AGE = 3600  # nbf at most this far in the past, exp at most this far after nbf
LEEWAY = 30  # clock skew between the client and us, in seconds
_JWT_CLAIMS = frozenset({"iss", "aud", "exp", "nbf", "iat", "jti", "sub"})
# The object is the request: it cannot point at another one.
_FORBIDDEN_INSIDE = frozenset({"request", "request_uri"})


class InvalidRequestObjectError(OAuth2Error):
    error = "invalid_request_object"  # RFC 9101 §6.2, OIDC Core §3.1.2.6


def open_request_object(
    raw: str,
    client: RegisteredClient,
    *,
    client_keys: ClientKeys,
    issuer: str,
    now: datetime,
) -> dict[str, str]:
    """The authorization request the object carries, its parameters as in a query.

    Raises:
        InvalidRequestObjectError
        OAuth2Error: a parameter of the object is malformed (as in a query).
    """
    token = _verify_signature(raw, client, client_keys)
    claims = token.claims
    registry = jwt.JWTClaimsRegistry(
        now=int(now.timestamp()),
        leeway=LEEWAY,
        iss={"essential": True, "value": client.client_id},
        aud={"essential": True, "value": issuer},
        exp={"essential": True},
        nbf={"essential": True},
    )
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise InvalidRequestObjectError(f"Request object refused: {exc.error}.") from exc
    nbf, exp = claims["nbf"], claims["exp"]
    if now.timestamp() - nbf > MAX_AGE + LEEWAY or exp - nbf > MAX_AGE:
        raise InvalidRequestObjectError("Request object lifetime over 60 minutes.")
    if claims.get("client_id") != client.client_id:
        raise InvalidRequestObjectError("The request object's client_id is not the client's.")
    if _FORBIDDEN_INSIDE & set(claims):
        raise InvalidRequestObjectError("A request object cannot hold request or request_uri.")
    return validate_parameters(
        {name: [_as_parameter(value)] for name, value in claims.items() if name not in _JWT_CLAIMS}
    )


def _verify_signature(raw: str, client: RegisteredClient, client_keys: ClientKeys) -> jwt.Token:
    try:
        # SECURITY: only the FAPI algorithms; "none" and HMAC (a shared secret) never.
        return jwt.decode(raw, client_keys.resolver(client), algorithms=list(CLIENT_SIGNING_ALGS))
    except InvalidClientKeysError as exc:
        raise InvalidRequestObjectError("The client's keys are not available.") from exc
    except (JoseError, ValueError, UnicodeError) as exc:
        raise InvalidRequestObjectError("The request object's signature is not valid.") from exc


def _as_parameter(value: Any) -> str:
    # OIDC Core §6.1: claims (and RFC 9396 authorization_details) are JSON inside the object;
    # in a query they are JSON text. Numbers (max_age) become their decimal form.
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, dict, list)):
        raise InvalidRequestObjectError("A request object parameter has an unusable type.")
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, int) else str(value)
