"""The IdP and the mock Nexus serving HTTP on loopback ports, with phones bound through the real
protocol, and a browser that signs in up to the confirmation page."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from idp import create_app
from idp.demo import bind_phone
from idp.deps import Deps
from idp.deps import build_deps
from idp.settings import Settings
from mock_nexus import create_app as create_nexus
from mock_nexus.settings import NexusSettings
from tests.factories import PASSWORD
from tests.factories import seed
from tests.nexus_server import Nexus
from tests.rp import form_action
from tests.rp import form_fields
from tests.rp import pkce_pair
from tests.servers import LoopbackBrowser
from tests.servers import free_port
from tests.servers import serving

CALLBACK = "http://127.0.0.1:9999/callback"


@dataclass
class Stack:
    idp: str
    nexus: Nexus
    deps: Deps


@contextmanager
def push_stack(
    settings: Settings, deps: Deps, folder: Path, *, users: tuple[str, ...], **changes: Any
) -> Iterator[Stack]:
    port, nexus_port = free_port(), free_port()
    issuer = f"http://127.0.0.1:{port}"
    relay = f"http://127.0.0.1:{nexus_port}"
    local = build_deps(
        settings.model_copy(
            update={
                "issuer": issuer,
                "nexus_relay_url": relay,
                "soft_token_required": True,
                "nexus_timeout": 1.0,
                "mfa_long_poll": 1.0,
                **changes,
            }
        ),
        clock=deps.clock, store=deps.store, engine=deps.engine,
    )  # fmt: skip
    seed(local, *users)
    state_file = folder / "phones.json"
    nexus = create_nexus(
        NexusSettings(
            relay_url=relay, idp_url=issuer, state_file=str(state_file), test_control=True
        )
    )
    with serving(create_app(deps=local, background=False), port), serving(nexus, nexus_port):
        for username in users:
            assert bind_phone(local, username, nexus_url=relay)
        yield Stack(idp=issuer, nexus=Nexus(relay, state_file), deps=local)


@dataclass
class Login:
    """One browser signing in to demo-confidential, up to the confirmation page and past it."""

    stack: Stack
    browser: LoopbackBrowser
    verifier: str
    page: requests.Response  # the last page the browser shows
    url: str  # its address

    @classmethod
    def start(
        cls, stack: Stack, username: str, *, password: str = PASSWORD, **params: str
    ) -> Login:
        login = cls(stack, LoopbackBrowser(), "", requests.Response(), "")
        login.authorize(**params)
        if 'id="password"' in login.page.text:
            login.submit({"username": username, "password": password})
        return login

    def authorize(self, client_id: str = "demo-confidential", **params: str) -> requests.Response:
        """A new authorization request from the same browser (its IdP session, if any)."""
        self.verifier, challenge = pkce_pair()
        query = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": CALLBACK,
            "scope": "openid profile",
            "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **params,
        }
        return self.go(f"{self.stack.idp}/authorize?{urlencode(query)}")

    def go(self, url: str, method: str = "GET", **kwargs: Any) -> requests.Response:
        """Request, then follow redirects within the IdP; stop at the client's callback."""
        response = self.browser.request(method, url, timeout=30, **kwargs)
        while response.status_code in (302, 303):
            location = response.headers["Location"]
            url = location if location.startswith("http") else self.stack.idp + location
            if not url.startswith(self.stack.idp):
                self.url = url
                self.page = response
                return response
            response = self.browser.request("GET", url, timeout=30)
        self.url, self.page = url, response
        return response

    def submit(self, fields: dict[str, str]) -> requests.Response:
        """Fill in the page's first form and send it."""
        data = {**form_fields(self.page.text), **fields}
        return self.go(self.stack.idp + form_action(self.page.text), "POST", data=data)

    def reload(self) -> requests.Response:
        return self.go(self.url)

    def send_again(self) -> requests.Response:
        return self.submit({})

    def use_code(self, code: str) -> requests.Response:
        if 'id="code"' not in self.page.text:
            self.go(self.url.replace("/login/confirm", "/login/totp"))
        return self.submit({"code": code})

    @property
    def returned(self) -> bool:
        return self.url.startswith(CALLBACK)

    def tokens(self) -> dict[str, Any]:
        assert self.returned, self.page.text[:400]
        code = parse_qs(urlsplit(self.url).query)["code"][0]
        answer = requests.post(
            f"{self.stack.idp}/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK,
                  "code_verifier": self.verifier},
            auth=("demo-confidential", "demo-confidential-secret"),
            timeout=10,
        )  # fmt: skip
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def id_token(self) -> dict[str, Any]:
        keys = KeySet.import_key_set(requests.get(f"{self.stack.idp}/jwks.json", timeout=10).json())
        return dict(jwt.decode(self.tokens()["id_token"], keys).claims)
