"""Passkeys are a deployment's choice, off by default: the Ministry's letter asks for the
Nexus Smart ID app at every login. Off, nothing offers, registers or accepts one, even for a
user who added one while they were on."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from idp import create_app
from idp.accounts.models import User
from idp.audit.service import NO_CONTEXT
from idp.deps import build_deps
from idp.mfa.models import Passkey
from idp.settings import Settings
from tests.factories import seed
from tests.rp import form_fields

ISSUER = "http://localhost:8000"  # a host name: WebAuthn refuses IP addresses


def signed_in(settings, deps, *, passkeys_enabled: bool | None) -> FlaskClient:
    """A browser whose login the phone confirmed, on an issuer that can be an RP ID."""
    changes: dict[str, object] = {"issuer": ISSUER}
    if passkeys_enabled is not None:
        changes["passkeys_enabled"] = passkeys_enabled
    local = build_deps(settings.model_copy(update=changes), clock=deps.clock, store=deps.store,
                       engine=deps.engine)  # fmt: skip
    seed(local, "malee")
    with local.sessions.begin() as session:
        malee = session.scalar(select(User).where(User.username == "malee"))
        session.add(Passkey(id="pk-earlier", user_id=malee.id, status="active", name="laptop",
                            public_key="x", sign_count=0, aaguid="0" * 36, backed_up=False,
                            created_at=deps.clock.now()))  # fmt: skip
        _, cookie = local.login_sessions.start(
            session,
            malee,
            acr=f"{ISSUER}/acr/aal2-softtoken",
            amr=["pwd", "swk", "mca", "mfa"],
            now=deps.clock.now(),
            context=NO_CONTEXT,
        )
    client = create_app(deps=local, background=False).test_client()
    client.set_cookie("idp_auth", cookie, domain="localhost")
    return client


def test_passkeys_are_off_by_default():
    assert Settings().passkeys_enabled is False


@pytest.mark.parametrize(("enabled", "status"), [(None, 403), (False, 403), (True, 200)])
def test_off_nothing_registers_a_passkey(settings, deps, enabled, status):
    client = signed_in(settings, deps, passkeys_enabled=enabled)
    page = client.get("/account/passkeys", base_url=ISSUER)
    assert page.status_code == 200
    assert ('id="passkeys-off"' in page.text) is not enabled
    assert ('id="add-passkey"' in page.text) is bool(enabled)
    token = form_fields(client.get("/account", base_url=ISSUER).text)["csrf_token"]
    # Attack: the page offers nothing, so call the ceremony's endpoint directly.
    options = client.post("/account/passkeys/options", base_url=ISSUER,
                          headers={"X-CSRF-Token": token})  # fmt: skip
    assert options.status_code == status
    finish = client.post("/account/passkeys", base_url=ISSUER, json={"id": "x"},
                         headers={"X-CSRF-Token": token})  # fmt: skip
    assert finish.status_code == (403 if status == 403 else 400)
