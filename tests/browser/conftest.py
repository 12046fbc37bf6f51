"""Debian's Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import http.server
import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from idp.oidc.clients import CIBA_GRANT_TYPE
from tests.browser.demo_stack import ROLE_SCOPES
from tests.browser.demo_stack import Callback
from tests.conftest import unavailable
from tests.nexus_server import Nexus
from tests.servers import free_port
from tests.servers import run_cli
from tests.servers import running_idp
from tests.servers import running_process

CHROMIUM = "/usr/bin/chromium"
PORTAL_SECRET = "gfms-portal-demo-secret-not-for-production"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        unavailable("Chromium", f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def rp_server() -> Iterator[str]:
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Callback)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


@pytest.fixture(scope="module")
def demo(tmp_path_factory, rp_server) -> Iterator[dict[str, str]]:
    """The IdP exactly as `make demo` runs it (SQLite under a folder, no Redis), with the mock
    Nexus and the demo users' phones bound through it."""
    folder: Path = tmp_path_factory.mktemp("demo")
    port, nexus_port, portal_port = free_port(), free_port(), free_port()
    idp, nexus = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{nexus_port}"
    portal = f"http://127.0.0.1:{portal_port}"
    env = {
        **os.environ,
        "IDP_DATABASE_URL": f"sqlite:///{folder / 'idp.sqlite3'}",
        "IDP_ISSUER": idp,
        "IDP_NEXUS_RELAY_URL": nexus,
        "IDP_LOG_LEVEL": "WARNING",
        "NEXUS_RELAY_URL": nexus,
        "NEXUS_IDP_URL": idp,
        "NEXUS_STATE_FILE": str(folder / "phones.json"),
        "NEXUS_TEST_CONTROL": "true",
        # The GFMS portal, as the demo runs it, with its own SQLite under the test's folder.
        "PORTAL_BASE_URL": portal,
        "PORTAL_ISSUER": idp,
        "PORTAL_DATABASE_URL": f"sqlite:///{folder / 'portal.sqlite3'}",
        "PORTAL_CLIENT_KEY_FILE": str(folder / "gfms-portal.private.jwk.json"),
    }
    env.pop("IDP_REDIS_URL", None)
    run_cli(env, "db", "upgrade")
    run_cli(env, "demo", "seed")
    run_cli(
        env, "clients", "add", "browser-rp", "--name", "GFMS Portal (test)",
        "--public", "--redirect-uri", f"{rp_server}/callback",
        "--scope", f"openid profile {ROLE_SCOPES}",
    )  # fmt: skip
    # The demo's gfms-portal client, at the port this run's portal listens on: FAPI 2.0 with
    # the key the seed wrote, and CIBA poll mode.
    private = json.loads((folder / "gfms-portal.private.jwk.json").read_text())
    public = {k: v for k, v in private.items() if k != "d"}
    (folder / "gfms-portal.jwks.json").write_text(json.dumps({"keys": [public]}))
    run_cli(
        env, "clients", "add", "gfms-portal", "--name", "GFMS Portal", "--profile", "fapi2",
        "--jwks", str(folder / "gfms-portal.jwks.json"), "--secret", PORTAL_SECRET,
        "--grant-type", "authorization_code", "--grant-type", CIBA_GRANT_TYPE,
        "--backchannel-token-delivery-mode", "poll",
        "--redirect-uri", f"{portal}/auth/callback", "--post-logout-redirect-uri", f"{portal}/",
        "--scope", f"openid profile email {ROLE_SCOPES}",
        "--backchannel-logout-uri", f"{portal}/auth/backchannel-logout",
        "--security-event-uri", f"{portal}/auth/security-events",
    )  # fmt: skip
    with (
        running_idp(env, port, production=False, log_dir=folder),
        running_process([sys.executable, "-m", "mock_nexus", "--port", str(nexus_port)],
                        env, nexus_port, log_dir=folder),
        running_process([sys.executable, "-m", "gfms_portal", "--port", str(portal_port)],
                        env, portal_port, log_dir=folder),
    ):  # fmt: skip
        run_cli(env, "demo", "bind-phones", "--nexus", nexus)
        yield {"idp": idp, "nexus": nexus, "portal": portal, "folder": str(folder)}


@pytest.fixture
def relay(demo) -> Iterator[Nexus]:
    nexus = Nexus(demo["nexus"], Path())
    yield nexus
    nexus.knobs(outage=False)


@pytest.fixture
def page(browser):
    context = browser.new_context()
    yield context.new_page()
    context.close()
