from __future__ import annotations

from datetime import UTC
from datetime import datetime

import pytest

from idp.oidc.clients import CIBA_GRANT_TYPE as CIBA
from idp.oidc.clients import ClientRegistrationError
from idp.oidc.clients import ClientRegistrations
from idp.oidc.clients import ClientRegistry
from idp.oidc.clients import NewClient
from idp.oidc.clients import with_ciba_poll

NOW = datetime(2026, 11, 25, tzinfo=UTC)
SECRET = "x" * 43


@pytest.fixture
def registry(sessions, cipher) -> ClientRegistry:
    with sessions.begin() as session:
        ClientRegistrations(cipher).register(
            session,
            NewClient(
                client_id="app",
                client_name="App",
                secret=SECRET,
                auth_methods=["client_secret_basic"],
                redirect_uris=["https://app.example/cb"],
                post_logout_redirect_uris=[],
                grant_types=["authorization_code"],
                scope="openid profile",
            ),
            now=NOW,
        )
    return ClientRegistry(sessions, cipher)


def test_redirect_uris_match_exactly(registry):
    client = registry.get("app")
    assert client.check_redirect_uri("https://app.example/cb")
    for uri in ("https://app.example/cb/", "https://app.example/cb?x=1", "https://APP.example/cb"):
        assert not client.check_redirect_uri(uri)


def test_secret_is_checked_against_its_keyed_hash(registry):
    client = registry.get("app")
    assert client.check_client_secret(SECRET)
    assert not client.check_client_secret(SECRET + "y")
    assert SECRET not in (client.secret_hash or "")


def test_scope_is_filtered_to_what_the_client_may_have(registry):
    client = registry.get("app")
    assert client.get_allowed_scope("openid email profile") == "openid profile"
    assert client.get_allowed_scope("email") is None
    assert client.get_allowed_scope(None) == ""


def test_unknown_clients_are_cached_briefly_and_changes_seen_after_invalidate(
    registry, sessions, cipher
):
    assert registry.get("nope") is None
    assert registry.get("") is None
    assert registry.get("x" * 65) is None
    assert registry.get("app").client_name == "App"
    with sessions.begin() as session:
        new = NewClient(
            client_id="app",
            client_name="Renamed",
            secret=SECRET,
            auth_methods=["client_secret_basic"],
            redirect_uris=["https://app.example/cb"],
            post_logout_redirect_uris=[],
            grant_types=["authorization_code"],
            scope="openid",
        )
        ClientRegistrations(cipher).register(session, new, now=NOW)
    assert registry.get("app").client_name == "App"  # cached
    registry.invalidate("app")
    assert registry.get("app").client_name == "Renamed"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"secret": "short"}, "at least 32"),
        ({"redirect_uris": ["http://app.example/cb"]}, "not allowed"),
        ({"redirect_uris": ["https://app.example/cb#frag"]}, "not allowed"),
        ({"grant_types": ["password"]}, "Unknown grant type"),
        ({"secret": None, "grant_types": ["client_credentials"]}, "public client"),
        ({"id_token_signed_response_alg": "none"}, "ES256 or RS256"),
        ({"backchannel_logout_uri": "http://app.example/logout"}, "not allowed"),
        ({"security_event_uri": "http://app.example/events"}, "not allowed"),
        ({"security_event_uri": "https://app.example/events#x"}, "not allowed"),
        # A browser is sent there after logout: the redirect URIs' rule.
        ({"post_logout_redirect_uris": ["http://app.example/bye"]}, "not allowed"),
        ({"post_logout_redirect_uris": ["https://app.example/bye#x"]}, "not allowed"),
        ({"post_logout_redirect_uris": ["javascript:alert(1)"]}, "not allowed"),
        # Loopback is the host itself, never a prefix of another name.
        ({"redirect_uris": ["http://127.0.0.1.evil.example/cb"]}, "not allowed"),
        ({"backchannel_logout_uri": "http://localhost.evil.example/logout"}, "not allowed"),
        ({"redirect_uris": ["http://localhost@evil.example/cb"]}, "not allowed"),
        ({"redirect_uris": ["https://user:pw@app.example/cb"]}, "not allowed"),
        ({"redirect_uris": ["https://app.example:99999/cb"]}, "not allowed"),
        # CIBA Core 1.0 §4: a delivery mode, poll or ping (push is not offered).
        ({"grant_types": [CIBA], "backchannel_token_delivery_mode": None}, "poll or ping"),
        ({"grant_types": [CIBA], "backchannel_token_delivery_mode": "push"}, "poll or ping"),
        ({"grant_types": [CIBA], "backchannel_token_delivery_mode": "ping"}, "notification"),
        (
            {
                "grant_types": [CIBA],
                "backchannel_token_delivery_mode": "ping",
                "backchannel_client_notification_endpoint": "http://app.example/ping",
            },
            "not allowed",
        ),
        (
            {
                "grant_types": [CIBA],
                "backchannel_token_delivery_mode": "poll",
                "backchannel_client_notification_endpoint": "https://app.example/ping",
            },
            "Poll mode",
        ),
        ({"backchannel_token_delivery_mode": "poll"}, "without the CIBA grant"),
        (
            {"secret": None, "grant_types": [CIBA], "backchannel_token_delivery_mode": "poll"},
            "public client",
        ),
    ],
)
def test_bad_metadata_is_refused(sessions, cipher, change, message):
    metadata = {
        "client_id": "bad",
        "client_name": "Bad",
        "secret": SECRET,
        "auth_methods": ["client_secret_basic"],
        "redirect_uris": ["https://app.example/cb"],
        "post_logout_redirect_uris": [],
        "grant_types": ["authorization_code"],
        "scope": "openid",
    }
    metadata.update(change)
    with sessions.begin() as session, pytest.raises(ClientRegistrationError, match=message):
        ClientRegistrations(cipher).register(session, NewClient(**metadata), now=NOW)


@pytest.mark.parametrize(
    "uri", [None, "https://app.example/security-events", "http://127.0.0.1:9998/security-events"]
)
def test_security_event_uri_is_kept(sessions, cipher, uri):
    with sessions.begin() as session:
        new = NewClient(
            client_id="caep",
            client_name="Caep",
            secret=SECRET,
            auth_methods=["client_secret_basic"],
            redirect_uris=["https://app.example/cb"],
            post_logout_redirect_uris=[],
            grant_types=["authorization_code"],
            scope="openid",
            security_event_uri=uri,
        )
        ClientRegistrations(cipher).register(session, new, now=NOW)
    assert ClientRegistry(sessions, cipher).get("caep").security_event_uri == uri


def test_ciba_poll_metadata_is_kept_and_given_by_the_helper(sessions, cipher):
    metadata = with_ciba_poll({"grant_types": ["authorization_code"]})
    assert metadata == {
        "grant_types": ["authorization_code", CIBA],
        "backchannel_token_delivery_mode": "poll",
    }
    with sessions.begin() as session:
        new = NewClient(
            client_id="ciba",
            client_name="Ciba",
            secret=SECRET,
            auth_methods=["client_secret_basic"],
            redirect_uris=["https://app.example/cb"],
            post_logout_redirect_uris=[],
            scope="openid",
            **metadata,
        )
        ClientRegistrations(cipher).register(session, new, now=NOW)
    client = ClientRegistry(sessions, cipher).get("ciba")
    assert client.check_grant_type(CIBA)
    assert client.backchannel_token_delivery_mode == "poll"
    assert client.backchannel_client_notification_endpoint is None
