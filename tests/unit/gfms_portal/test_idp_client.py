"""The portal's checks of what userinfo answers (issue 18)."""

from __future__ import annotations

import pytest
import requests

from gfms_portal.errors import IdpUnavailableError
from gfms_portal.errors import InvalidTokenError
from gfms_portal.idp_client import IdpClient


def answering(monkeypatch, status: int, body: dict) -> IdpClient:
    client = IdpClient(issuer="https://idp.example", client_id="portal", client_secret="s" * 40,
                       redirect_uri="https://portal.example/cb", timeout=1, leeway=0)  # fmt: skip
    client._metadata = {"userinfo_endpoint": "https://idp.example/userinfo"}
    answer = requests.Response()
    answer.status_code = status
    answer._content = requests.compat.json.dumps(body).encode()

    def get(url: str, **kwargs: object) -> requests.Response:
        assert kwargs["headers"] == {"Authorization": "Bearer at"}
        return answer

    monkeypatch.setattr(requests, "get", get)
    return client


def test_userinfo_about_the_same_subject_is_taken(monkeypatch):
    client = answering(monkeypatch, 200, {"sub": "me", "name": "สมชาย ใจดี"})
    assert client.userinfo("at", sub="me")["name"] == "สมชาย ใจดี"


def test_userinfo_about_another_subject_is_refused(monkeypatch):
    # OIDC Core §5.3.2: a userinfo answer for someone else (a substituted token) never names
    # the person signed in.
    client = answering(monkeypatch, 200, {"sub": "someone-else", "name": "ผู้อื่น"})
    with pytest.raises(InvalidTokenError):
        client.userinfo("at", sub="me")


@pytest.mark.parametrize(
    ("status", "error"), [(401, InvalidTokenError), (503, IdpUnavailableError)]
)
def test_userinfo_refusals(monkeypatch, status, error):
    with pytest.raises(error):
        answering(monkeypatch, status, {}).userinfo("at", sub="me")
