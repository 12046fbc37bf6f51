"""The demo's FAPI 2.0 client: registered by the seed with the private key it writes, which
outside relying parties read from instance/demo-fapi.private.jwk.json."""

from __future__ import annotations

import json

from joserfc.jwk import ECKey

from idp.demo import seed as demo_seed
from idp.oidc.models import Client
from tests.fapi import FapiClient
from tests.rp import RP


def test_seed_registers_demo_fapi_with_the_key_it_writes(client, deps, clock, tmp_path,
                                                         monkeypatch):  # fmt: skip
    monkeypatch.chdir(tmp_path)  # the demo's instance folder is ./instance
    with deps.sessions.begin() as session:
        demo_seed(session, deps)
    path = tmp_path / "instance" / "demo-fapi.private.jwk.json"
    private = json.loads(path.read_text())
    assert (private["kty"], private["crv"], private["alg"], private["use"]) == (
        "EC",
        "P-256",
        "ES256",
        "sig",
    )
    assert "d" in private
    assert private["kid"]
    key = ECKey.import_key(private)

    # Seeding again keeps the key, and the registration still matches it.
    with deps.sessions.begin() as session:
        demo_seed(session, deps)
    deps.clients.invalidate()
    assert json.loads(path.read_text()) == private
    with deps.sessions() as session:
        row = session.get(Client, "demo-fapi")
        assert row is not None
        assert row.jwks == {"keys": [key.as_dict(private=False)]}
        assert row.auth_methods == ["private_key_jwt"]
        assert row.require_pushed_authorization_requests is True
        assert row.redirect_uris == ["http://127.0.0.1:9999/callback"]

    fapi = FapiClient(RP(client, client_id="demo-fapi", secret=None), key, clock.now)
    params = fapi.rp.authorize_params()
    assert fapi.push(params).status_code == 201
    direct = fapi.rp.authorize()
    assert direct.status_code == 400
