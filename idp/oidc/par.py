"""Pushed authorization requests (RFC 9126) and the choice of where a request comes from.

A client pushes its request with its credentials; we keep it briefly, for one use, and give
back a ``request_uri`` naming it. At the authorization endpoint only that reference travels
through the browser: the request cannot be read or altered on the way (FAPI 2.0 §5.3.2.2).
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749 import OAuth2Error

from idp.oidc.client_keys import ClientKeys
from idp.oidc.clients import RegisteredClient
from idp.oidc.interaction import RequestUriNotSupportedError
from idp.oidc.request_objects import open_request_object
from idp.store.ephemeral import EphemeralStore
from idp.store.ephemeral import Keys
from idp.store.secrets import sha256_hex

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
# RFC 9126 §2.2 suggests 5 to 600 seconds; FAPI 2.0 §5.3.2.2 asks for under 600. The browser
# only has to carry the reference once, right away: a minute, as node-oidc-provider.
LIFETIME = 60


class InvalidRequestUriError(OAuth2Error):
    error = "invalid_request_uri"  # RFC 9101 §6.2


def push(
    store: EphemeralStore, keys: Keys, *, client_id: str, params: dict[str, str], now: datetime
) -> tuple[str, int]:
    """Keep a validated request; return its ``request_uri`` and lifetime in seconds."""
    handle = secrets.token_urlsafe(32)
    value = {"client_id": client_id, "params": params, "exp": now.timestamp() + LIFETIME}
    # The store's own expiry is a little later: the recorded one, on our clock, decides.
    store.set(keys.pushed_request(sha256_hex(handle)), json.dumps(value).encode(), ttl=LIFETIME + 5)
    return REQUEST_URI_PREFIX + handle, LIFETIME


def take(
    store: EphemeralStore, keys: Keys, *, request_uri: str, client_id: str, now: datetime
) -> dict[str, str]:
    """The pushed request ``request_uri`` names, used up by this call.

    Raises:
        InvalidRequestUriError: unknown, used, expired, or pushed by another client.
    """
    if not request_uri.startswith(REQUEST_URI_PREFIX):
        # We fetch no request objects from the web: only our own references are accepted.
        raise RequestUriNotSupportedError("Only request_uri values from the PAR endpoint.")
    key = keys.pushed_request(sha256_hex(request_uri[len(REQUEST_URI_PREFIX) :]))
    stored = store.get(key)
    # Another client's request_uri is refused without using it up (its owner may still go on).
    if stored is None or json.loads(stored)["client_id"] != client_id:
        raise InvalidRequestUriError("The request_uri is unknown, used or expired.")
    # One use (RFC 9126 §4): of two racing browsers, one gets it.
    taken = store.consume(key)
    if taken is None:
        raise InvalidRequestUriError("The request_uri is unknown, used or expired.")
    value = json.loads(taken)
    if value["exp"] <= now.timestamp():
        raise InvalidRequestUriError("The request_uri is unknown, used or expired.")
    return dict(value["params"])


def resolve_pushed_params(
    params: dict[str, str],
    client: RegisteredClient,
    *,
    client_keys: ClientKeys,
    issuer: str,
    now: datetime,
) -> dict[str, str]:
    """The request a client pushes: its body, or the request object in it.

    Raises:
        OAuth2Error
    """
    if "request_uri" in params:
        # RFC 9126 §2.1: request_uri is not allowed in a pushed request.
        raise InvalidRequestError("'request_uri' cannot be pushed.")
    if params.get("client_id", client.client_id) != client.client_id:
        raise InvalidRequestError("'client_id' is not the authenticated client.")
    return _object_or_plain(
        {**params, "client_id": client.client_id},
        client,
        client_keys=client_keys,
        issuer=issuer,
        now=now,
    )


def resolve_front_channel_params(
    params: dict[str, str],
    client: RegisteredClient,
    *,
    store: EphemeralStore,
    keys: Keys,
    client_keys: ClientKeys,
    issuer: str,
    now: datetime,
) -> dict[str, str]:
    """The request at the authorization endpoint: pushed, in a request object, or the query.

    Raises:
        OAuth2Error: shown to the user, never redirected (the redirect URI is not yet known
            to be the client's).
    """
    if "request" in params and "request_uri" in params:
        raise InvalidRequestError("Use 'request' or 'request_uri', not both.")
    if "request_uri" in params:
        return take(
            store, keys, request_uri=params["request_uri"], client_id=client.client_id, now=now
        )
    if client.require_pushed_authorization_requests:
        # RFC 9126 §6: a client registered so cannot send its request through the browser.
        raise InvalidRequestError("This client must push its authorization requests (PAR).")
    return _object_or_plain(params, client, client_keys=client_keys, issuer=issuer, now=now)


def _object_or_plain(
    params: dict[str, str],
    client: RegisteredClient,
    *,
    client_keys: ClientKeys,
    issuer: str,
    now: datetime,
) -> dict[str, str]:
    """The request object's parameters when there is one, else ``params`` themselves unless
    the client must sign its requests (RFC 9101 §10.5)."""
    if "request" in params:
        return open_request_object(
            params["request"], client, client_keys=client_keys, issuer=issuer, now=now
        )
    if client.require_signed_request_object:
        raise InvalidRequestError("This client must send a signed request object.")
    return params
