"""An independent FAPI 2.0 client: openid-client (Node), installed with npm into a scratch
folder at test time, pushes a signed request object, authenticates with private_key_jwt and
gets DPoP-bound tokens it uses at userinfo, with the key the demo seed writes for demo-fapi
(the contract outside relying parties rely on)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
import requests

from tests.conftest import unavailable
from tests.servers import ROOT
from tests.servers import free_port
from tests.servers import production_env
from tests.servers import run_cli
from tests.servers import running_idp
from tests.servers import sign_in

CALLBACK = "http://127.0.0.1:9999/callback"
SCRIPT = Path(__file__).parent / "node" / "fapi_client.mjs"
KEY_FILE = ROOT / "instance" / "demo-fapi.private.jwk.json"


@pytest.fixture(scope="module")
def node_client(tmp_path_factory) -> Path:
    """openid-client in a scratch folder (never in the repository), beside our script."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        unavailable("node (with npm)", "not on PATH")
    folder = tmp_path_factory.mktemp("openid-client")
    install = subprocess.run(
        ["npm", "install", "--prefix", str(folder), "--no-audit", "--no-fund", "--silent",
         "openid-client@6"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if install.returncode != 0:
        unavailable("openid-client (npm install)", install.stderr[-300:])
    shutil.copy(SCRIPT, folder / SCRIPT.name)
    return folder / SCRIPT.name


@pytest.fixture(scope="module")
def issuer(fresh_database_url, redis_url, tmp_path_factory) -> Iterator[str]:
    env = production_env(fresh_database_url, redis_url, f"http://127.0.0.1:{free_port()}")
    run_cli(env, "db", "upgrade")
    run_cli(env, "demo", "seed")
    port = int(env["IDP_ISSUER"].rsplit(":", 1)[1])
    with running_idp(env, port, production=True, log_dir=tmp_path_factory.mktemp("logs")) as idp:
        yield idp.url


def node(script: Path, *args: str) -> str:
    done = subprocess.run(
        ["node", str(script), *args], capture_output=True, text=True, timeout=60,
        cwd=script.parent,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_openid_client_pushes_a_signed_request_and_gets_bound_tokens(node_client, issuer, tmp_path):
    state_file = str(tmp_path / "state.json")
    common = (issuer, "demo-fapi", str(KEY_FILE))
    authorization_url = node(node_client, "start", *common, CALLBACK, state_file)
    query = parse_qs(urlsplit(authorization_url).query)
    assert query["request_uri"][0].startswith("urn:ietf:params:oauth:request_uri:")
    assert "redirect_uri" not in query  # the request travelled by the back channel

    # demo-fapi may not use the front channel itself.
    direct = requests.get(
        f"{issuer}/authorize",
        params={"client_id": "demo-fapi", "response_type": "code", "redirect_uri": CALLBACK,
                "scope": "openid", "code_challenge": "x" * 43, "code_challenge_method": "S256"},
        allow_redirects=False, timeout=10,
    )  # fmt: skip
    assert direct.status_code == 400

    callback = sign_in(authorization_url, "somchai", CALLBACK)
    result = json.loads(node(node_client, "finish", *common, callback, state_file))
    assert result["tokens"]["token_type"].lower() == "dpop"
    assert result["claims"]["iss"] == issuer
    assert result["claims"]["aud"] == "demo-fapi"
    assert result["userinfo"]["sub"] == result["claims"]["sub"]
    # The access token is bound to the client's DPoP key: as a bearer token it is refused.
    bearer = requests.get(f"{issuer}/userinfo", timeout=10, headers={
        "Authorization": f"Bearer {result['tokens']['access_token']}"})  # fmt: skip
    assert bearer.status_code == 401

    # The request_uri was used up.
    again = requests.get(authorization_url, allow_redirects=False, timeout=10)
    assert again.status_code == 400
    assert "invalid_request_uri" in again.text
