"""What an authorization request asks of the login interaction (OIDC Core §3.1.2.1).

Small named checks in the spirit of node-oidc-provider: each either passes or raises the
OAuth error the client should receive.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload

from idp.accounts.flow import Assurance
from idp.accounts.flow import assurance_of
from idp.oidc.authorization_details import parse_authorization_details
from idp.oidc.dpop import validate_dpop_jkt

SUPPORTED_PROMPTS = frozenset({"none", "login", "consent", "select_account"})
# Single-valued request parameters that must appear at most once (RFC 6749 §3.1).
SINGLE_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "prompt",
    "max_age",
    "code_challenge",
    "code_challenge_method",
    "response_mode",
    "acr_values",
    "ui_locales",
    "login_hint",
    "id_token_hint",
    "claims",
    "authorization_details",
    "request",
    "request_uri",
    # RFC 9449 §10: the one key the code will be bound to.
    "dpop_jkt",
)
MAX_PARAM_LENGTH = 2048
# A few payment approvals with Thai payees, as JSON.
MAX_DETAILS_LENGTH = 8192
# A signed request object holding such a request, base64url-encoded with its signature.
MAX_REQUEST_OBJECT_LENGTH = 16384


class RequestNotSupportedError(OAuth2Error):
    error = "request_not_supported"  # OIDC Core §3.1.2.6


class RequestUriNotSupportedError(OAuth2Error):
    error = "request_uri_not_supported"


class RegistrationNotSupportedError(OAuth2Error):
    error = "registration_not_supported"


class StoredAuthorizationRequest(OAuth2Request):
    """An authorization request from saved parameters: resumed after the login interaction,
    or pushed (RFC 9126), or read from a request object (RFC 9101)."""

    def __init__(self, issuer: str, params: dict[str, str]) -> None:
        super().__init__("GET", issuer + "/authorize", headers={})
        self.payload = BasicOAuth2Payload(params)

    @property
    def args(self) -> dict[str, str]:
        return dict(self.payload.data)

    @property
    def form(self) -> dict[str, str]:
        return {}


def validate_request_shape(values: Any) -> dict[str, str]:
    """Reject duplicated or oversized parameters before anything else reads them.

    Raises:
        InvalidRequestError: without a redirect URI (nothing has been validated yet).
    """
    return validate_parameters({key: values.getlist(key) for key in values})


def validate_parameters(values: dict[str, list[str]]) -> dict[str, str]:
    """``validate_request_shape`` on parameters already gathered by name.

    Raises:
        InvalidRequestError
    """
    params: dict[str, str] = {}
    for key, items in values.items():
        if key in SINGLE_PARAMS and len(items) > 1:
            raise InvalidRequestError(f"Multiple '{key}' in request.")
        limit = {
            "authorization_details": MAX_DETAILS_LENGTH,
            "request": MAX_REQUEST_OBJECT_LENGTH,
        }.get(key, MAX_PARAM_LENGTH)
        if any(len(item) > limit for item in items) or len(key) > 64:
            raise InvalidRequestError("A request parameter is too long.")
        params[key] = items[0]
    return params


def validate_extensions(params: dict[str, str]) -> None:
    """Refuse what this OP does not support, with the error OIDC Core names for it.

    Raises:
        OAuth2Error: the caller attaches the validated redirect URI and state.
    """
    if "request" in params:
        raise RequestNotSupportedError("Request objects are not supported.")
    if "request_uri" in params:
        raise RequestUriNotSupportedError("Request URIs are not supported.")
    if "registration" in params:
        raise RegistrationNotSupportedError("Dynamic registration is not supported.")
    mode = params.get("response_mode")
    if mode is not None and mode != "query":
        raise InvalidRequestError("Only 'response_mode=query' is supported.")
    prompts = params.get("prompt", "").split()
    if any(p not in SUPPORTED_PROMPTS for p in prompts):
        raise InvalidRequestError("Unsupported 'prompt' value.")
    max_age = params.get("max_age")
    if max_age is not None and (not max_age.isdigit() or len(max_age) > 9):
        raise InvalidRequestError("'max_age' must be a non-negative integer.")
    if "claims" in params:
        parse_claims_request(params["claims"])
    parse_authorization_details(params.get("authorization_details"))
    validate_dpop_jkt(params.get("dpop_jkt"))


def required_assurance(params: dict[str, str], issuer: str) -> Assurance | None:
    """The least assurance this request needs: a transaction to confirm needs its own
    confirmation; otherwise the first of ``acr_values`` this OP offers (OIDC Core §3.1.2.1,
    in order of preference)."""
    if params.get("authorization_details"):
        return Assurance.SOFT_TOKEN_TXN
    for value in params.get("acr_values", "").split():
        level = assurance_of(issuer, value)
        if level is not None:
            # A transaction level without a transaction is the phone confirmation itself.
            return Assurance.SOFT_TOKEN if level == Assurance.SOFT_TOKEN_TXN else level
    return None


def parse_claims_request(value: str | None) -> dict[str, Any] | None:
    """OIDC Core §5.5: a JSON object whose id_token and userinfo members are objects.

    Raises:
        InvalidRequestError
    """
    if not value:
        return None
    try:
        request = json.loads(value)
    except ValueError as exc:
        raise InvalidRequestError("The 'claims' parameter is not JSON.") from exc
    if not isinstance(request, dict) or any(
        not isinstance(request.get(member, {}), dict) for member in ("id_token", "userinfo")
    ):
        raise InvalidRequestError("The 'claims' parameter must be an object of objects.")
    return {m: request[m] for m in ("id_token", "userinfo") if m in request}


def requires_fresh_login(
    params: dict[str, str], *, auth_time: datetime, now: datetime, hinted_sub: str | None, sub: str
) -> bool:
    """True when the existing session may not be reused for this request."""
    prompts = params.get("prompt", "").split()
    # select_account: a browser holds one session, so choosing an account is signing in.
    if "login" in prompts or "select_account" in prompts:
        return True
    # OIDC Core §3.1.2.1 id_token_hint: the client expects this user; the session is another.
    if hinted_sub is not None and hinted_sub != sub:
        return True
    max_age = params.get("max_age")
    # OIDC Core §3.1.2.1: max_age is the allowable time since the user last authenticated.
    return max_age is not None and (now - auth_time).total_seconds() > int(max_age)
