"""Registration, step 3: binding the phone. The IdP and the mock Nexus run as real HTTP
servers on loopback ports; the phone makes its key, signs the IdP's nonce, gets its seed."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator

import pyotp
import pytest
import requests
from joserfc import jws
from joserfc.jwk import ECKey
from sqlalchemy import select

from idp import create_app
from idp.deps import build_deps
from idp.enrol.models import Enrolment
from idp.mfa.models import Device
from idp.mfa.totp import totp_context
from mock_nexus import create_app as create_nexus
from mock_nexus.settings import NexusSettings
from tests.factories import make_user
from tests.factories import seed
from tests.servers import LoopbackBrowser
from tests.servers import free_port
from tests.servers import serving
from tests.servers import sign_in_to


@pytest.fixture
def stack(settings, deps, tmp_path) -> Iterator[dict]:
    """The IdP (its issuer is its loopback URL) and the mock Nexus, both serving HTTP."""
    port, nexus_port = free_port(), free_port()
    issuer = f"http://127.0.0.1:{port}"
    relay = f"http://127.0.0.1:{nexus_port}"
    local = build_deps(
        settings.model_copy(update={"issuer": issuer, "nexus_relay_url": relay}),
        clock=deps.clock, store=deps.store, engine=deps.engine,
    )  # fmt: skip
    seed(local)
    now = local.clock.now()
    with local.sessions.begin() as session:
        user = make_user(session, local, "newuser", citizen_id="3501100456783")
        user.identity_proofed_at = now
        session.add(Enrolment(user_id=user.id, state="proofed", created_at=now, updated_at=now))
    nexus = create_nexus(
        NexusSettings(
            relay_url=relay,
            idp_url=issuer,
            state_file=str(tmp_path / "phones.json"),
        )
    )
    with (
        serving(create_app(deps=local, background=False), port) as idp_url,
        serving(nexus, nexus_port) as nexus_url,
    ):
        yield {"idp": idp_url, "nexus": nexus_url, "deps": local}


def activation_code(stack) -> tuple[LoopbackBrowser, str]:
    """newuser signs in on /enrol and asks for an activation code; return it as shown."""
    browser = LoopbackBrowser()
    page = sign_in_to(browser, f"{stack['idp']}/enrol", "newuser")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    shown = browser.request("POST", f"{stack['idp']}/enrol/activation", data={"csrf_token": csrf})
    assert shown.status_code == 200, shown.text[:300]
    assert "<svg" in shown.text  # the QR code
    return browser, re.search(r'id="activation-code">([^<]+)<', shown.text).group(1)


def bind(stack, phone: str, activation: str) -> requests.Response:
    return requests.post(
        f"{stack['nexus']}/phones/{phone}/bind", json={"activation": activation}, timeout=10
    )


def devices(stack) -> list[Device]:
    with stack["deps"].sessions() as session:
        return list(session.scalars(select(Device)))


def test_phone_binds_with_the_activation_code_and_shares_a_totp_seed(stack):
    browser, code = activation_code(stack)
    answer = bind(stack, "phone-newuser", code)
    assert answer.status_code == 200, answer.text
    [device] = devices(stack)
    assert device.status == "active"
    assert device.push_address == f"{stack['nexus']}/phones/phone-newuser"
    assert "d" not in device.public_jwk  # only the public key ever reaches the IdP
    seed_ = (
        stack["deps"]
        .cipher.decrypt(device.totp_seed_encrypted, context=totp_context(device.id))
        .decode()
    )
    phone_code = requests.get(f"{stack['nexus']}/phones/phone-newuser/totp", timeout=5).json()
    assert pyotp.TOTP(seed_).verify(phone_code["code"], valid_window=1)
    page = browser.request("GET", f"{stack['idp']}/enrol").text
    assert 'data-state="completed"' in page


def test_the_scanned_link_works_like_the_typed_code(stack):
    _, code = activation_code(stack)
    link = f"nexussmartid://bind?issuer={stack['idp']}&code={code.replace('-', '')}"
    assert bind(stack, "phone-newuser", link).status_code == 200


def test_a_code_is_usable_once(stack):
    _, code = activation_code(stack)
    assert bind(stack, "phone-newuser", code).status_code == 200
    again = bind(stack, "phone-thief", code)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_activation_code"
    assert len(devices(stack)) == 1


def test_an_expired_code_binds_nothing(stack):
    _, code = activation_code(stack)
    stack["deps"].clock.advance(601)
    answer = bind(stack, "phone-newuser", code)
    assert answer.json()["error"] == "invalid_activation_code"
    assert devices(stack) == []


def test_guessing_codes_is_rate_limited(stack):
    for _ in range(10):
        answer = requests.post(
            f"{stack['idp']}/enrol/devices/challenge",
            json={"activation_code": "ABCDE-FGHJK"}, timeout=5,
        )  # fmt: skip
        assert answer.status_code == 400
    _, code = activation_code(stack)
    blocked = requests.post(
        f"{stack['idp']}/enrol/devices/challenge", json={"activation_code": code}, timeout=5
    )
    assert blocked.status_code == 429
    assert blocked.json()["error"] == "slow_down"


def forged_registration(stack, code: str, *, signer: ECKey, presented: ECKey, nonce: str) -> str:
    payload = {"aud": stack["idp"], "iat": int(time.time()), "nonce": nonce,
               "activation_code": code, "push_address": f"{stack['nexus']}/phones/x"}  # fmt: skip
    header = {"alg": "ES256", "typ": "nexus-binding+jwt",
              "jwk": dict(presented.as_dict(private=False))}  # fmt: skip
    return jws.serialize_compact(header, json.dumps(payload).encode(), signer)


def challenge(stack, code: str) -> str:
    answer = requests.post(f"{stack['idp']}/enrol/devices/challenge",
                           json={"activation_code": code}, timeout=5)  # fmt: skip
    return str(answer.json()["nonce"])


def test_a_registration_signed_by_another_key_is_refused(stack):
    _, code = activation_code(stack)
    mine, other = ECKey.generate_key("P-256"), ECKey.generate_key("P-256")
    proof = forged_registration(stack, code, signer=other, presented=mine,
                                nonce=challenge(stack, code))  # fmt: skip
    answer = requests.post(f"{stack['idp']}/enrol/devices", json={"proof": proof}, timeout=5)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_binding_proof"
    assert devices(stack) == []


def test_an_old_nonce_is_refused(stack):
    _, code = activation_code(stack)
    key = ECKey.generate_key("P-256")
    old = challenge(stack, code)
    challenge(stack, code)  # a newer challenge replaces it
    proof = forged_registration(stack, code, signer=key, presented=key, nonce=old)
    answer = requests.post(f"{stack['idp']}/enrol/devices", json={"proof": proof}, timeout=5)
    assert answer.json()["error"] == "invalid_binding_proof"


def test_a_registration_for_another_idp_is_refused(stack):
    _, code = activation_code(stack)
    key = ECKey.generate_key("P-256")
    nonce = challenge(stack, code)
    header = {"alg": "ES256", "typ": "nexus-binding+jwt", "jwk": dict(key.as_dict(private=False))}
    body = {"aud": "https://other-idp.example", "iat": int(time.time()), "nonce": nonce,
            "activation_code": code, "push_address": "http://127.0.0.1:1/p"}  # fmt: skip
    proof = jws.serialize_compact(header, json.dumps(body).encode(), key)
    answer = requests.post(f"{stack['idp']}/enrol/devices", json={"proof": proof}, timeout=5)
    assert answer.json()["error"] == "invalid_binding_proof"


def test_a_private_key_in_the_header_is_refused(stack):
    _, code = activation_code(stack)
    key = ECKey.generate_key("P-256", private=True)
    nonce = challenge(stack, code)
    header = {"alg": "ES256", "typ": "nexus-binding+jwt", "jwk": dict(key.as_dict(private=True))}
    body = {"aud": stack["idp"], "iat": int(time.time()), "nonce": nonce,
            "activation_code": code, "push_address": "http://127.0.0.1:1/p"}  # fmt: skip
    proof = jws.serialize_compact(header, json.dumps(body).encode(), key)
    answer = requests.post(f"{stack['idp']}/enrol/devices", json={"proof": proof}, timeout=5)
    assert answer.json()["error"] == "invalid_binding_proof"


def test_one_active_phone_per_user(stack):
    browser, code = activation_code(stack)
    assert bind(stack, "phone-newuser", code).status_code == 200
    page = browser.request("GET", f"{stack['idp']}/enrol").text
    assert 'id="get-activation"' not in page
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', browser.request(
        "GET", f"{stack['idp']}/logout").text).group(1)  # fmt: skip
    again = browser.request("POST", f"{stack['idp']}/enrol/activation", data={"csrf_token": csrf})
    assert again.status_code == 409


def test_garbage_registrations_get_clear_errors(stack):
    for body in ({}, {"proof": "not-a-jws"}, {"proof": base64.b64encode(b"x" * 50).decode()}):
        answer = requests.post(f"{stack['idp']}/enrol/devices", json=body, timeout=5)
        assert answer.status_code == 400
        assert answer.json()["error"] in ("invalid_binding_proof", "invalid_activation_code")


def test_the_phone_page_binds_with_a_typed_code(stack):
    _, code = activation_code(stack)
    page = requests.post(f"{stack['nexus']}/phones/phone-newuser/bind",
                         data={"activation": code}, timeout=10)  # fmt: skip
    assert page.status_code == 200
    assert 'id="bound"' in page.text
    assert re.search(r'id="totp">\d{6}<', page.text)
    wrong = requests.post(f"{stack['nexus']}/phones/phone-other/bind",
                          data={"activation": "WRONG-CODE1"}, timeout=10)  # fmt: skip
    assert wrong.status_code == 400
    assert 'data-code="invalid_activation_code"' in wrong.text


def test_binding_needs_a_recent_proofing(stack):
    browser = LoopbackBrowser()
    stack["deps"].clock.advance(3601)  # newuser was proofed more than an hour ago
    page = sign_in_to(browser, f"{stack['idp']}/enrol", "newuser")
    assert 'id="verify-again"' in page
    assert 'id="get-activation"' not in page
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    refused = browser.request("POST", f"{stack['idp']}/enrol/activation", data={"csrf_token": csrf})
    assert refused.status_code == 409
    assert 'data-outcome="proofing_expired"' in refused.text


def test_a_push_address_outside_the_relay_is_refused(stack):
    _, code = activation_code(stack)
    key = ECKey.generate_key("P-256")
    nonce = challenge(stack, code)
    header = {"alg": "ES256", "typ": "nexus-binding+jwt", "jwk": dict(key.as_dict(private=False))}
    for address in ("http://127.0.0.1.attacker.example/phones/x", "https://evil.example/x",
                    f"{stack['nexus']}/phones/../admin"):  # fmt: skip
        body = {"aud": stack["idp"], "iat": int(time.time()), "nonce": nonce,
                "activation_code": code, "push_address": address}  # fmt: skip
        proof = jws.serialize_compact(header, json.dumps(body).encode(), key)
        answer = requests.post(f"{stack['idp']}/enrol/devices", json={"proof": proof}, timeout=5)
        assert answer.json()["error"] == "invalid_binding_proof"
    assert devices(stack) == []


def test_a_new_phone_after_loss_needs_fresh_proofing(stack):
    browser, code = activation_code(stack)
    assert bind(stack, "phone-newuser", code).status_code == 200
    with stack["deps"].sessions.begin() as session:
        device = session.scalar(select(Device))
        device.status = "suspended"  # what the helpdesk does with a lost phone
    page = browser.request("GET", f"{stack['idp']}/enrol").text
    assert 'id="verify-again"' in page
    assert 'id="start-proofing"' in page


@pytest.mark.parametrize("body", ["[1]", '"x"', "5", "null"])
def test_a_json_body_that_is_not_an_object_is_a_clear_error(stack, body):
    for path in ("/enrol/devices/challenge", "/enrol/devices"):
        answer = requests.post(f"{stack['idp']}{path}", data=body, timeout=5,
                               headers={"Content-Type": "application/json"})  # fmt: skip
        assert answer.status_code == 400
        assert answer.json()["error"] in ("invalid_activation_code", "invalid_binding_proof")


def test_the_phone_api_honours_the_registration_window(stack, settings, deps, tmp_path):
    _, code = activation_code(stack)
    closed = build_deps(
        stack["deps"].settings.model_copy(
            update={"registration_closes_at": deps.clock.now()}
        ),
        clock=deps.clock, store=deps.store, engine=deps.engine,
    )  # fmt: skip
    with serving(create_app(deps=closed, background=False)) as closed_idp:
        answer = requests.post(f"{closed_idp}/enrol/devices/challenge",
                               json={"activation_code": code}, timeout=5)  # fmt: skip
    assert answer.status_code == 403
    assert answer.json()["error"] == "registration_closed"
