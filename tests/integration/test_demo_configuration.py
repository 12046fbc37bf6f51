"""The embedded default that `make demo` runs (SQLite, no Redis, the seeded demo clients),
driven end to end by a well-known client library: Authlib's requests client."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.servers import IDP
from tests.servers import ROOT
from tests.servers import free_port
from tests.servers import run_cli
from tests.servers import running_idp
from tests.servers import running_process
from tests.servers import sign_in

CALLBACK = "http://127.0.0.1:9999/callback"


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("demo")
    port, nexus_port = free_port(), free_port()
    idp, nexus = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{nexus_port}"
    env = {
        **os.environ,
        "IDP_DATABASE_URL": f"sqlite:///{folder / 'idp.sqlite3'}",
        "IDP_ISSUER": idp,
        "IDP_NEXUS_RELAY_URL": nexus,
        "IDP_LOG_LEVEL": "WARNING",
        "NEXUS_RELAY_URL": nexus,
        "NEXUS_IDP_URL": idp,
        "NEXUS_STATE_FILE": str(folder / "phones.json"),
    }
    env.pop("IDP_REDIS_URL", None)
    env["DEMO_FOLDER"] = str(folder)
    run_cli(env, "db", "upgrade")
    run_cli(env, "demo", "seed")
    return env


@pytest.fixture(scope="module")
def demo(demo_env) -> Iterator[str]:
    """The IdP and the mock Nexus as `make demo` runs them, the demo phones bound."""
    port = int(demo_env["IDP_ISSUER"].rsplit(":", 1)[1])
    nexus = demo_env["NEXUS_RELAY_URL"]
    folder = Path(demo_env["DEMO_FOLDER"])
    nexus_command = [sys.executable, "-m", "mock_nexus", "--port", nexus.rsplit(":", 1)[1]]
    with (
        running_idp(demo_env, port, production=False, log_dir=folder) as idp,
        running_process(nexus_command, demo_env, int(nexus.rsplit(":", 1)[1]), log_dir=folder),
    ):
        run_cli(demo_env, "demo", "bind-phones", "--nexus", nexus)
        yield idp.url


def test_code_flow_refresh_userinfo_introspection_revocation(demo, demo_env):
    metadata = requests.get(f"{demo}/.well-known/openid-configuration").json()
    assert metadata["issuer"] == demo
    client = OAuth2Session(
        "demo-confidential",
        "demo-confidential-secret",
        scope="openid profile offline_access",
        redirect_uri=CALLBACK,
        code_challenge_method="S256",
    )
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(12)
    url, state = client.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    callback = sign_in(url, "prasert", CALLBACK, nexus=demo_env["NEXUS_RELAY_URL"])
    token = client.fetch_token(
        metadata["token_endpoint"],
        authorization_response=callback,
        code_verifier=verifier,
        state=state,
    )

    keys = KeySet.import_key_set(requests.get(metadata["jwks_uri"]).json())
    id_token = jwt.decode(token["id_token"], keys, algorithms=["ES256"])
    assert id_token.claims["amr"] == ["pwd", "swk", "mca", "mfa"]  # confirmed on the phone
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": demo},
        aud={"essential": True, "value": "demo-confidential"},
        nonce={"essential": True, "value": nonce},
        at_hash={"essential": True},
        sid={"essential": True},
    ).validate(id_token.claims)

    assert client.get(metadata["userinfo_endpoint"]).json()["preferred_username"] == "prasert"
    refreshed = client.refresh_token(metadata["token_endpoint"])
    assert refreshed["access_token"] != token["access_token"]
    answer = client.introspect_token(
        metadata["introspection_endpoint"], token=refreshed["access_token"]
    )
    assert answer.json()["active"] is True
    client.revoke_token(metadata["revocation_endpoint"], token=refreshed["refresh_token"],
                        token_type_hint="refresh_token")  # fmt: skip
    answer = client.introspect_token(
        metadata["introspection_endpoint"], token=refreshed["access_token"]
    )
    assert answer.json() == {"active": False}


def test_client_credentials_and_introspection_by_the_service(demo):
    service = OAuth2Session("demo-service", "demo-service-secret")
    token = service.fetch_token(f"{demo}/token", grant_type="client_credentials")
    answer = service.introspect_token(f"{demo}/introspect", token=token["access_token"])
    assert answer.json()["client_id"] == "demo-service"


def test_audit_trail_of_the_demo_verifies_and_anchors_are_checked(demo, demo_env):
    requests.get(f"{demo}/healthz")  # the demo's events so far: seeding, logins above
    run_cli(demo_env, "audit", "seal")
    out = run_cli(demo_env, "audit", "verify")
    assert out.startswith("intact: ")
    head = out.split("head: ", 1)[1].strip()
    assert run_cli(demo_env, "audit", "verify", "--anchor", head).startswith("intact")
    seq = head.split(":", 1)[0]
    wrong = subprocess.run(
        [*IDP, "audit", "verify", "--anchor", f"{seq}:{'0' * 64}"],
        env=demo_env, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert wrong.returncode == 1
    assert "BROKEN" in wrong.stderr
