"""prompt and max_age (OIDC Core §3.1.2.1): when an existing session may be reused."""

from __future__ import annotations

from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.factories import make_user
from tests.factories import seed
from tests.rp import ISSUER
from tests.rp import RP
from tests.rp import basic
from tests.rp import callback_params


@pytest.fixture
def rp(client, deps):
    seed(deps, "somchai")
    return RP(client)


def auth_time(client, id_token: str) -> int:
    keys = KeySet.import_key_set(client.get("/jwks.json").get_json())
    return int(jwt.decode(id_token, keys).claims["auth_time"])


def test_prompt_none_without_session_is_login_required(rp):
    response = rp.authorize(prompt="none")
    params = {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}
    assert params == {"error": "login_required", "state": rp.state, "iss": ISSUER}


def test_prompt_none_with_session_answers_silently(rp):
    rp.login()
    params = callback_params(rp.authorize(prompt="none"))
    assert "code" in params


def test_prompt_login_forces_a_new_login(rp, client, clock):
    first = rp.login_and_exchange()
    clock.advance(120)
    page = rp.authorize(prompt="login")
    assert page.status_code == 200
    assert 'name="password"' in page.get_data(as_text=True)
    params = callback_params(rp.submit(page, username="somchai", password="Demo-Pass-2025!"))
    second = rp.exchange(params["code"]).get_json()
    assert auth_time(client, second["id_token"]) == auth_time(client, first["id_token"]) + 120


def test_max_age_exceeded_forces_a_new_login(rp, clock):
    rp.login()
    clock.advance(120)
    page = rp.authorize(max_age="60")
    assert page.status_code == 200


def test_max_age_within_limit_reuses_the_session(rp, clock):
    rp.login()
    clock.advance(30)
    assert callback_params(rp.authorize(max_age="60"))["code"]


def test_prompt_none_with_stale_session_and_max_age_is_login_required(rp, clock):
    rp.login()
    clock.advance(120)
    response = rp.authorize(prompt="none", max_age="60")
    assert parse_qs(urlsplit(response.headers["Location"]).query)["error"] == ["login_required"]


def test_session_idle_timeout_ends_single_sign_on(rp, clock):
    rp.login()
    clock.advance(3601)
    assert rp.authorize().status_code == 200  # the login page again


def test_session_absolute_lifetime_ends_single_sign_on(rp, clock):
    rp.login()
    for _ in range(25):  # stay active, but for more than 24 hours
        clock.advance(3500)
        rp.authorize()
    assert rp.authorize().status_code == 200


def test_fresh_login_of_the_same_user_keeps_other_apps_tokens(rp, client, deps, clock):
    other = RP(client, client_id="demo-public", secret=None)
    other_tokens = other.login_and_exchange(scope="openid")
    clock.advance(60)
    page = rp.authorize(prompt="login")
    params = callback_params(rp.submit(page, username="somchai", password="Demo-Pass-2025!"))
    mine = rp.exchange(params["code"]).get_json()
    answer = client.post(
        "/introspect",
        data={"token": other_tokens["access_token"]},
        headers=basic("demo-service", "demo-service-secret"),
    ).get_json()
    assert answer["active"] is True
    keys = KeySet.import_key_set(client.get("/jwks.json").get_json())
    sid_before = jwt.decode(other_tokens["id_token"], keys).claims["sid"]
    sid_after = jwt.decode(mine["id_token"], keys).claims["sid"]
    assert sid_before == sid_after
    assert auth_time(client, mine["id_token"]) == auth_time(client, other_tokens["id_token"]) + 60


def test_another_user_signing_in_ends_the_previous_users_session(rp, client, deps):
    seed_more(deps)
    first = rp.login_and_exchange()
    page = rp.authorize(prompt="login")
    rp.submit(page, username="malee", password="Demo-Pass-2025!")
    answer = client.post(
        "/introspect",
        data={"token": first["access_token"]},
        headers=basic("demo-service", "demo-service-secret"),
    ).get_json()
    assert answer == {"active": False}


def seed_more(deps) -> None:
    with deps.sessions.begin() as session:
        make_user(session, deps, "malee")


def test_id_token_hint_for_another_user_needs_a_login(rp, client, deps):
    seed_more(deps)
    malee = RP(client).login_and_exchange("malee")
    # The browser now holds malee's session; the client expects somchai.
    page = rp.authorize(prompt="login")
    callback_params(rp.submit(page, username="somchai", password="Demo-Pass-2025!"))
    silent = rp.authorize(prompt="none", id_token_hint=malee["id_token"])
    assert parse_qs(urlsplit(silent.headers["Location"]).query)["error"] == ["login_required"]
    assert rp.authorize(id_token_hint=malee["id_token"]).status_code == 200


def test_id_token_hint_of_the_signed_in_user_answers_silently(rp):
    tokens = rp.login_and_exchange()
    assert "code" in callback_params(rp.authorize(prompt="none", id_token_hint=tokens["id_token"]))


def test_forged_id_token_hint_is_invalid_request(rp):
    rp.login()
    params = callback_params(rp.authorize(id_token_hint="a.b.c"))
    assert params["error"] == "invalid_request"


def test_select_account_shows_the_login_page(rp):
    rp.login()
    assert rp.authorize(prompt="select_account").status_code == 200


def test_signing_in_as_someone_else_than_the_hint_is_login_required(rp, client, deps):
    seed_more(deps)
    somchai = rp.login_and_exchange()
    other = RP(client.application.test_client())  # a fresh browser
    page = other.authorize(id_token_hint=somchai["id_token"])
    params = callback_params(other.submit(page, username="malee", password="Demo-Pass-2025!"))
    assert params["error"] == "login_required"
    assert params["state"] == other.state
