"""The GFMS portal served on a loopback port next to the IdP and the mock Nexus (push_stack),
registered at the IdP under the FAPI 2.0 profile with CIBA poll mode (its private key in the
test's folder), and a browser that works in it: signs in,
records, approves on the phone."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import requests

from gfms_portal import create_app as create_portal
from gfms_portal.settings import PortalSettings
from idp.oidc.backchannel import NoticeSender
from idp.oidc.clients import apply_profile
from idp.oidc.clients import with_ciba_poll
from tests.factories import PASSWORD
from tests.factories import add_client
from tests.fapi import new_key
from tests.fapi import public_jwks
from tests.nexus_server import match_number
from tests.push_stack import Stack
from tests.rp import form_action
from tests.rp import form_fields
from tests.servers import LoopbackBrowser
from tests.servers import free_port
from tests.servers import serving

CLIENT_ID = "gfms-portal-test"
SECRET = "p" * 40
ROLE_SCOPES = "role:recorder role:approve-1 role:approve-2"


@dataclass
class PortalStack:
    stack: Stack
    url: str
    settings: PortalSettings
    app: Any

    def notices(self) -> int:
        """Send the logout tokens and security events the IdP owes (its sender thread is off)."""
        deps = self.stack.deps
        sender = NoticeSender(deps.sessions, deps.signer, deps.clients, deps.clock,
                              default_alg=deps.settings.signing_alg)  # fmt: skip
        return sender.send_due()


@contextmanager
def portal_stack(stack: Stack, folder: Path, **changes: Any) -> Iterator[PortalStack]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    key = new_key(f"{CLIENT_ID}-key")
    key_file = folder / "portal.private.jwk.json"
    key_file.write_text(json.dumps(key.as_dict(private=True)))
    add_client(stack.deps, CLIENT_ID, **apply_profile("fapi2", with_ciba_poll({
        "client_name": "GFMS Portal (test)", "secret": SECRET,
        "redirect_uris": [f"{url}/auth/callback"], "post_logout_redirect_uris": [f"{url}/"],
        "grant_types": ["authorization_code"], "scope": f"openid profile email {ROLE_SCOPES}",
        "backchannel_logout_uri": f"{url}/auth/backchannel-logout",
        "security_event_uri": f"{url}/auth/security-events",
        "jwks": public_jwks(key),
    })))  # fmt: skip
    settings = PortalSettings(
        base_url=url, issuer=stack.idp, client_id=CLIENT_ID, client_secret=SECRET,
        client_key_file=str(key_file), database_url=f"sqlite:///{folder / 'portal.sqlite3'}",
        timeout=5.0, **changes,
    )  # fmt: skip
    app = create_portal(settings)
    with serving(app, port):
        yield PortalStack(stack, url, settings, app)


@dataclass
class PortalUser:
    """One person's browser, going between the portal and the IdP."""

    portal: PortalStack
    username: str
    browser: LoopbackBrowser = field(default_factory=LoopbackBrowser)
    page: requests.Response = field(default_factory=requests.Response)
    url: str = ""

    @property
    def phone(self) -> str:
        return f"phone-{self.username}"

    def go(self, url: str, method: str = "GET", **kwargs: Any) -> requests.Response:
        """Request, then follow every redirect (portal and IdP alike)."""
        response = self.browser.request(method, url, timeout=30, **kwargs)
        while response.status_code in (302, 303):
            location = response.headers["Location"]
            if not location.startswith("http"):
                base = re.match(r"https?://[^/]+", url)
                assert base
                location = base.group(0) + location
            url = location
            response = self.browser.request("GET", url, timeout=30)
        self.url, self.page = url, response
        return response

    def submit(self, fields: dict[str, str]) -> requests.Response:
        base = re.match(r"https?://[^/]+", self.url)
        assert base
        data = {**form_fields(self.page.text), **fields}
        return self.go(base.group(0) + form_action(self.page.text), "POST", data=data)

    def confirm_on_phone(self, *, number: int | None = None) -> dict[str, Any]:
        nexus = self.portal.stack.nexus
        pushed = nexus.wait_for_push(self.phone)
        typed = match_number(self.page.text) if number is None else number
        answered = nexus.approve(self.phone, pushed["id"], typed)
        assert answered.status_code == 200, answered.text
        self.go(self.url)  # the confirmation page carries on by itself
        return pushed

    def sign_in(self) -> requests.Response:
        self.go(f"{self.portal.url}/auth/login")
        if 'id="password"' in self.page.text:
            self.submit({"username": self.username, "password": PASSWORD})
        self.confirm_on_phone()
        assert self.url.startswith(self.portal.url), self.page.text[:500]
        return self.page

    def csrf(self) -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', self.page.text)
        assert found, "no form on the page"
        return found.group(1)

    def record(self, **fields: Any) -> str:
        """Record a request; the URL of its page."""
        self.go(f"{self.portal.url}/documents/new")
        data = {"csrf": self.csrf(), "unit": "0000000001", "type": "travel",
                "amount": "125000.50", "payee": "นายสมศักดิ์ เดินทาง",
                "description": "เดินทางไปราชการ เชียงใหม่", **fields}  # fmt: skip
        files = fields.pop("files", None)
        data.pop("files", None)
        self.go(f"{self.portal.url}/documents/new", "POST", data=data, files=files)
        assert "/documents/" in self.url, self.page.text[:500]
        return self.url.split("?")[0]

    def start_approval(self, document_url: str, action: str) -> requests.Response:
        self.go(document_url)
        return self.go(f"{document_url}/approve", "POST",
                       data={"csrf": self.csrf(), "action": action})  # fmt: skip

    def approve(self, document_url: str, action: str) -> requests.Response:
        self.start_approval(document_url, action)
        assert 'id="match-number"' in self.page.text, self.page.text[:800]
        self.confirm_on_phone()
        return self.page


def status_of(html: str) -> str:
    found = re.search(r'id="status" data-status="([^"]+)"', html)
    assert found, "not a document page"
    return found.group(1)


def error_code(html: str) -> str | None:
    found = re.search(r'id="error" data-code="([^"]+)"', html)
    return found.group(1) if found else None
