"""newuser registers her Soft Token end to end in a real browser: the IdP, the mock Paotang and
the mock Nexus run as their own processes on loopback ports, as `make demo` runs them."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy import text

from tests.servers import free_port
from tests.servers import run_cli
from tests.servers import running_idp
from tests.servers import running_process

pytestmark = pytest.mark.browser
NEW_PASSWORD = "ตั้งรหัสใหม่ให้ยาวพอ 2569"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Iterator[dict[str, str]]:
    folder: Path = tmp_path_factory.mktemp("registration")
    idp_port, paotang_port, nexus_port = free_port(), free_port(), free_port()
    idp, paotang, nexus = (f"http://127.0.0.1:{p}" for p in (idp_port, paotang_port, nexus_port))
    env = {
        **os.environ,
        "IDP_DATABASE_URL": f"sqlite:///{folder / 'idp.sqlite3'}",
        "IDP_ISSUER": idp,
        "IDP_PAOTANG_ISSUER": paotang,
        "IDP_NEXUS_RELAY_URL": nexus,
        "IDP_LOG_LEVEL": "WARNING",
        "PAOTANG_ISSUER": paotang,
        "PAOTANG_KEY_FILE": str(folder / "paotang.json"),
        "PAOTANG_CLIENTS": json.dumps(
            {
                "softtoken-idp": {
                    "secret": "paotang-demo-client-secret",
                    "redirect_uris": [f"{idp}/enrol/proofing/callback"],
                }
            }
        ),
        "NEXUS_RELAY_URL": nexus,
        "NEXUS_IDP_URL": idp,
        "NEXUS_STATE_FILE": str(folder / "phones.json"),
    }
    env.pop("IDP_REDIS_URL", None)
    run_cli(env, "db", "upgrade")
    run_cli(env, "demo", "seed")
    with (
        running_idp(env, idp_port, production=False, log_dir=folder),
        running_process([sys.executable, "-m", "mock_paotang", "--port", str(paotang_port)],
                        env, paotang_port, log_dir=folder),
        running_process([sys.executable, "-m", "mock_nexus", "--port", str(nexus_port)],
                        env, nexus_port, log_dir=folder),
    ):  # fmt: skip
        yield {"idp": idp, "paotang": paotang, "nexus": nexus, "db": env["IDP_DATABASE_URL"]}


def test_newuser_registers_her_soft_token(browser, demo):
    context = browser.new_context()
    page = context.new_page()

    # 1. Sign in with the issued password, which must be changed first.
    page.goto(f"{demo['idp']}/enrol")
    page.fill("#username", "newuser")
    page.fill("#password", "Demo-Pass-2025!")
    page.click("button[type=submit]")
    page.fill("#current_password", "Demo-Pass-2025!")
    page.fill("#new_password", NEW_PASSWORD)
    page.fill("#confirm_password", NEW_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#start-proofing")

    # 2. Identity proofing on the Paotang page.
    page.click("#start-proofing")
    page.wait_for_url(f"{demo['paotang']}/authorize*")
    page.fill("#citizen_id", "3-5011-00456-78-3")
    page.fill("#laser_code", "NP4-5678901-23")
    page.check("#consent")
    page.click("#verify")
    page.wait_for_selector("#get-activation")
    assert page.locator("#enrol-state").get_attribute("data-state") == "proofed"

    # 3. The activation code, as text and QR, typed into the phone's page.
    page.click("#get-activation")
    code = page.locator("#activation-code").inner_text().strip()
    assert page.locator(".qr svg").count() == 1
    phone = context.new_page()
    phone.goto(f"{demo['nexus']}/phones/phone-newuser")
    phone.fill("#activation", code)
    phone.click("#bind")
    phone.wait_for_selector("#bound")
    assert phone.locator("#totp").inner_text().isdigit()

    # 4. Back on the IdP: the device is bound and the registration complete.
    page.click("#continue")
    page.wait_for_selector("#completed")
    context.close()

    engine = create_engine(demo["db"])
    with engine.connect() as connection:
        states = connection.execute(
            text("SELECT d.status, e.state FROM devices d JOIN enrolments e ON e.device_id = d.id")
        ).all()
    engine.dispose()
    assert states == [("active", "completed")]


def test_a_wrong_laser_code_is_explained_on_the_paotang_page(browser, demo):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{demo['idp']}/enrol")
    page.fill("#username", "malee")
    page.fill("#password", "Demo-Pass-2025!")
    page.click("button[type=submit]")
    page.click("#start-proofing")
    page.fill("#citizen_id", "3100601234565")
    page.fill("#laser_code", "ME2-3456789-00")
    page.check("#consent")
    page.click("#verify")
    refusal = page.locator("#refusal")
    assert refusal.get_attribute("data-code") == "laser_mismatch"
    assert "เลขหลังบัตร" in refusal.inner_text()
    context.close()
