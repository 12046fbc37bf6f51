"""The phone's own calls to the IdP besides answering: moving to a new key and changing its push
address, each authenticated by a DPoP proof of its current key (RFC 9449), never a bearer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from sqlalchemy import select
from sqlalchemy import update

from idp.accounts.models import User
from idp.mfa.models import Device
from idp.mfa.models import DeviceStatus
from mock_nexus.answering import dpop_proof
from mock_nexus.answering import sign_answer
from tests.nexus_server import confirm_state
from tests.nexus_server import match_number
from tests.push_stack import Login
from tests.push_stack import Stack
from tests.push_stack import push_stack


@pytest.fixture
def stack(settings, deps, tmp_path) -> Iterator[Stack]:
    with push_stack(settings, deps, tmp_path, users=("somchai", "malee")) as running:
        yield running


def device(stack: Stack) -> Device:
    with stack.deps.sessions() as session:
        return session.scalars(
            select(Device).join(User, User.id == Device.user_id).where(User.username == "somchai")
        ).one()


def test_the_phone_moves_to_a_new_key_and_the_old_one_confirms_nothing(stack):
    old_phone = stack.nexus.phone("phone-somchai")
    before = device(stack).key_thumbprint
    rotated = requests.post(f"{stack.nexus.url}/phones/phone-somchai/rotate-key", timeout=10)
    assert rotated.status_code == 200, rotated.text
    assert device(stack).key_thumbprint != before

    login = Login.start(stack, "somchai")
    pushed = stack.nexus.wait_for_push("phone-somchai")
    # An answer by the old key (a backup of the old phone, say) is refused ...
    challenge = stack.deps.challenges.get(pushed["id"])
    stale = sign_answer(old_phone, challenge_id=challenge.id, nonce=challenge.nonce,
                        authorization_details=None, decision="approve",
                        number=challenge.number)  # fmt: skip
    url = f"{stack.idp}/mfa/answers"
    proof = dpop_proof(old_phone, method="POST", url=url)
    refused = requests.post(url, json={"answer": stale}, headers={"DPoP": proof}, timeout=10)
    assert refused.status_code == 400
    # ... the new key's is taken.
    stack.nexus.approve("phone-somchai", pushed["id"], match_number(login.page.text))
    login.reload()
    assert login.returned


def test_a_rotation_must_name_the_current_key_and_be_proved_by_it(stack):
    phone = stack.nexus.phone("phone-somchai")
    url = f"{stack.idp}/mfa/device/key"
    # No proof of the current key: refused before anything else.
    assert requests.post(url, json={"rotation": "x"}, timeout=10).status_code == 401
    # A proof, but a rotation that is not a signed rotation.
    answer = requests.post(url, json={"rotation": "a.b.c"}, timeout=10,
                           headers={"DPoP": dpop_proof(phone, method="POST", url=url)})  # fmt: skip
    assert answer.status_code == 400
    # A suspended phone cannot rotate.
    with stack.deps.sessions.begin() as session:
        session.execute(update(Device).values(status=DeviceStatus.SUSPENDED))
    refused = requests.post(f"{stack.nexus.url}/phones/phone-somchai/rotate-key", timeout=10)
    assert refused.status_code == 409


def test_the_push_address_moves_within_the_relay_only(stack):
    move = f"{stack.nexus.url}/phones/phone-somchai/push-address"
    foreign = requests.post(move, json={"push_address": "https://evil.example/phones/x"},
                            timeout=10)  # fmt: skip
    assert foreign.status_code == 409
    assert device(stack).push_address.endswith("/phones/phone-somchai")
    new_address = f"{stack.nexus.url}/phones/phone-malee"
    moved = requests.post(move, json={"push_address": new_address}, timeout=10)
    assert moved.status_code == 200, moved.text
    assert device(stack).push_address == new_address
    # The next push goes where the phone said.
    login = Login.start(stack, "somchai")
    assert confirm_state(login.page.text) == "pending"
    assert stack.nexus.wait_for_push("phone-malee")["client"] == "Demo confidential client"
