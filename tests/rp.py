"""A relying-party driver over Flask's test client: authorize, log in, exchange, refresh.

Like flaskr's AuthActions, applied to OIDC: tests read as the protocol reads.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.factories import PASSWORD

ISSUER = "http://127.0.0.1:8000"
CALLBACK = "http://127.0.0.1:9999/callback"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def form_fields(html: str) -> dict[str, str]:
    return dict(re.findall(r'name="([^"]+)" value="([^"]*)"', html))


def form_action(html: str) -> str:
    match = re.search(r'<form method="post" action="([^"]+)"', html)
    assert match, "no form on the page"
    return match.group(1).replace("&amp;", "&")


@dataclass
class RP:
    client: FlaskClient
    client_id: str = "demo-confidential"
    secret: str | None = "demo-confidential-secret"
    redirect_uri: str = CALLBACK
    verifier: str = ""
    state: str = ""
    nonce: str = ""
    last: TestResponse | None = field(default=None, repr=False)

    def authorize_params(self, **overrides: Any) -> dict[str, str]:
        self.verifier, challenge = pkce_pair()
        self.state = secrets.token_urlsafe(8)
        self.nonce = secrets.token_urlsafe(8)
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": "openid profile email",
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        params.update(overrides)
        return {k: v for k, v in params.items() if v is not None}

    def authorize(self, **overrides: Any) -> TestResponse:
        """GET /authorize and follow redirects inside the IdP."""
        return self.follow(
            self.client.get("/authorize?" + urlencode(self.authorize_params(**overrides)))
        )

    def follow(self, response: TestResponse) -> TestResponse:
        while response.status_code in (302, 303) and _is_local(response.headers["Location"]):
            response = self.client.get(_local_path(response.headers["Location"]))
        self.last = response
        return response

    def submit(self, page: TestResponse, **fields: str) -> TestResponse:
        html = page.get_data(as_text=True)
        data = form_fields(html)
        data.update(fields)
        return self.follow(self.client.post(form_action(html), data=data))

    def login(
        self, username: str = "somchai", password: str = PASSWORD, **overrides: Any
    ) -> dict[str, str]:
        """Authorize, signing in on the login page unless the session already suffices."""
        page = self.authorize(**overrides)
        if page.status_code in (302, 303):
            return callback_params(page)
        assert page.status_code == 200, page.get_data(as_text=True)
        return callback_params(self.submit(page, username=username, password=password))

    def token(self, **data: str) -> TestResponse:
        headers = {}
        if self.secret is not None:
            raw = f"{self.client_id}:{self.secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        else:
            data.setdefault("client_id", self.client_id)
        return self.client.post("/token", data=data, headers=headers)

    def exchange(self, code: str) -> TestResponse:
        return self.token(
            grant_type="authorization_code",
            code=code,
            redirect_uri=self.redirect_uri,
            code_verifier=self.verifier,
        )

    def login_and_exchange(self, username: str = "somchai", **overrides: Any) -> dict[str, Any]:
        params = self.login(username, **overrides)
        response = self.exchange(params["code"])
        assert response.status_code == 200, response.get_json()
        return dict(response.get_json())


def callback_params(response: TestResponse) -> dict[str, str]:
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:500]
    location = response.headers["Location"]
    assert location.startswith(CALLBACK) or location.startswith("http://127.0.0.1:9999/"), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def _is_local(location: str) -> bool:
    return location.startswith("/") or location.startswith(ISSUER + "/")


def _local_path(location: str) -> str:
    return location[len(ISSUER) :] if location.startswith(ISSUER) else location


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}
