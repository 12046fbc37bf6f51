"""The portal's checks of what userinfo answers (issue 18)."""

from __future__ import annotations

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import ECKey

from gfms_portal.errors import IdpUnavailableError
from gfms_portal.errors import InvalidTokenError
from gfms_portal.idp_client import IdpClient


def answering(monkeypatch, status: int, body: dict) -> IdpClient:
    key = ECKey.generate_key("P-256", parameters={"kid": "k"}, private=True)
    client = IdpClient(issuer="https://idp.example", client_id="portal", client_key=key,
                       client_secret="s" * 40, redirect_uri="https://portal.example/cb",
                       timeout=1, leeway=0)  # fmt: skip
    client._metadata = {"userinfo_endpoint": "https://idp.example/userinfo"}
    answer = requests.Response()
    answer.status_code = status
    answer._content = requests.compat.json.dumps(body).encode()

    def get(url: str, **kwargs: object) -> requests.Response:
        # RFC 9449 §7.1: the bound token, and a proof for this request made with the
        # process's DPoP key, carrying the token's hash.
        headers = kwargs["headers"]
        assert headers["Authorization"] == "DPoP at"
        proof = jwt.decode(headers["DPoP"], client.dpop_key, algorithms=["ES256"])
        assert proof.header["typ"] == "dpop+jwt"
        assert proof.header["jwk"] == client.dpop_key.as_dict(private=False)
        assert "d" not in proof.header["jwk"]
        assert proof.claims["htm"] == "GET"
        assert proof.claims["htu"] == "https://idp.example/userinfo"
        assert proof.claims["ath"] == "sda5G2fCr6XjIpiNlGJjjTVN34oe9526mH-BXCK0uu4"  # SHA-256("at")
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
