"""OpenID RP-Initiated Logout 1.0."""

from __future__ import annotations

from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest

from tests.factories import seed
from tests.rp import RP
from tests.rp import basic
from tests.rp import form_action
from tests.rp import form_fields

LOGGED_OUT = "http://127.0.0.1:9999/logged-out"


@pytest.fixture
def rp(client, deps):
    seed(deps, "somchai")
    return RP(client)


def active(client, token: str) -> bool:
    response = client.post(
        "/introspect", data={"token": token}, headers=basic("demo-service", "demo-service-secret")
    )
    return bool(response.get_json()["active"])


def test_logout_with_id_token_hint_redirects_to_the_registered_uri(rp, client):
    tokens = rp.login_and_exchange()
    response = client.get(
        "/logout",
        query_string={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": LOGGED_OUT,
            "state": "bye",
        },
    )
    assert response.status_code == 303
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == LOGGED_OUT
    assert parse_qs(location.query)["state"] == ["bye"]
    assert not active(client, tokens["access_token"])
    # The session is gone: a silent authorization now needs a login.
    params = parse_qs(urlsplit(rp.authorize(prompt="none").headers["Location"]).query)
    assert params["error"] == ["login_required"]


def test_unregistered_post_logout_uri_is_never_followed(rp, client):
    tokens = rp.login_and_exchange()
    response = client.get(
        "/logout",
        query_string={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": "http://evil.example/",
        },
    )
    assert response.status_code == 200
    assert "Location" not in response.headers
    assert 'id="logged-out"' in response.get_data(as_text=True)


def test_logout_without_hint_asks_the_user_first(rp, client):
    tokens = rp.login_and_exchange()
    page = client.get(
        "/logout",
        query_string={
            "client_id": "demo-confidential",
            "post_logout_redirect_uri": LOGGED_OUT,
            "state": "s1",
        },
    )
    assert page.status_code == 200
    assert active(client, tokens["access_token"])  # nothing happened yet
    html = page.get_data(as_text=True)
    data = form_fields(html)
    data["decision"] = "logout"
    done = client.post(form_action(html), data=data)
    assert done.status_code == 303
    assert done.headers["Location"] == LOGGED_OUT + "?state=s1"
    assert not active(client, tokens["access_token"])


def test_logout_without_hint_or_client_ends_on_our_page(rp, client):
    rp.login_and_exchange()
    html = client.get("/logout", query_string={"post_logout_redirect_uri": LOGGED_OUT}).get_data(
        as_text=True
    )
    data = form_fields(html)
    data["decision"] = "logout"
    done = client.post(form_action(html), data=data)
    assert done.status_code == 200
    assert 'id="logged-out"' in done.get_data(as_text=True)


def test_logout_confirmation_needs_the_csrf_token(rp, client):
    tokens = rp.login_and_exchange()
    client.get("/logout")
    response = client.post("/logout/confirm", data={"decision": "logout"})
    assert response.status_code == 400
    assert active(client, tokens["access_token"])


def test_choosing_to_stay_keeps_the_session(rp, client):
    tokens = rp.login_and_exchange()
    html = client.get("/logout").get_data(as_text=True)
    data = form_fields(html)
    data["decision"] = "stay"
    client.post(form_action(html), data=data)
    assert active(client, tokens["access_token"])


def test_forged_id_token_hint_is_refused(rp, client):
    rp.login_and_exchange()
    response = client.get("/logout", query_string={"id_token_hint": "a.b.c"})
    assert response.status_code == 400
    assert "invalid_request" in response.get_data(as_text=True)


def test_expired_id_token_hint_still_identifies_the_session(rp, client, clock):
    tokens = rp.login_and_exchange()
    clock.advance(600)  # the ID token (5 min) has expired, the session (1 h idle) has not
    response = client.get(
        "/logout",
        query_string={"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": LOGGED_OUT},
    )
    assert response.status_code == 303


def test_code_fetched_before_logout_cannot_be_redeemed_after_it(rp, client):
    params = rp.login()
    html = client.get("/logout").get_data(as_text=True)
    data = form_fields(html)
    data["decision"] = "logout"
    client.post(form_action(html), data=data)
    response = rp.exchange(params["code"])
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"
