"""The ``idp`` command, run in process against a SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.orm import Session

from idp.cli import main
from idp.oidc.models import Client
from idp.store.db import make_engine


@pytest.fixture
def cli(tmp_path: Path, monkeypatch) -> tuple[CliRunner, str]:
    """A runner of the ``idp`` command on a migrated SQLite file, without Redis; its URL."""
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    monkeypatch.setenv("IDP_DATABASE_URL", url)
    monkeypatch.delenv("IDP_REDIS_URL", raising=False)
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    return runner, url


def test_clients_add_registers_the_security_event_uri(cli):
    runner, url = cli
    result = runner.invoke(
        main,
        [
            "clients", "add", "caep-rp", "--name", "CAEP RP",
            "--redirect-uri", "https://rp.example/cb",
            "--security-event-uri", "https://rp.example/security-events",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    refused = runner.invoke(
        main,
        [
            "clients", "add", "bad-rp", "--name", "Bad", "--redirect-uri", "https://rp.example/cb",
            "--security-event-uri", "http://rp.example/security-events",
        ],
    )  # fmt: skip
    assert refused.exit_code != 0
    assert "not allowed" in refused.output
    engine = make_engine(url)
    with Session(engine) as session:
        client = session.get(Client, "caep-rp")
        assert client is not None
        assert client.security_event_uri == "https://rp.example/security-events"
        assert session.get(Client, "bad-rp") is None
    engine.dispose()


def test_clients_add_with_the_fapi2_profile(cli, tmp_path: Path):
    import json

    from tests.fapi import new_key
    from tests.fapi import public_jwks

    runner, url = cli
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(public_jwks(new_key())))
    result = runner.invoke(
        main,
        ["clients", "add", "fapi-rp", "--name", "FAPI RP", "--profile", "fapi2",
         "--redirect-uri", "https://rp.example/cb", "--jwks", str(jwks)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "secret" not in result.output  # the key is its credential
    private = tmp_path / "private.json"
    private.write_text(json.dumps({"keys": [new_key().as_dict(private=True)]}))
    leaked = runner.invoke(
        main,
        ["clients", "add", "leaky-rp", "--name", "Leaky", "--profile", "fapi2",
         "--redirect-uri", "https://rp.example/cb", "--jwks", str(private)],
    )  # fmt: skip
    assert leaked.exit_code != 0
    assert "public keys only" in leaked.output
    keyless = runner.invoke(
        main,
        ["clients", "add", "keyless-rp", "--name", "Keyless", "--profile", "fapi2",
         "--redirect-uri", "https://rp.example/cb"],
    )  # fmt: skip
    assert keyless.exit_code != 0
    engine = make_engine(url)
    with Session(engine) as session:
        client = session.get(Client, "fapi-rp")
        assert client is not None
        assert client.auth_methods == ["private_key_jwt"]
        assert client.secret_hash is None
        assert client.require_pushed_authorization_requests is True
        assert client.id_token_signed_response_alg == "ES256"
        assert client.jwks == json.loads(jwks.read_text())
        assert session.get(Client, "leaky-rp") is None
    engine.dispose()


def test_clients_add_registers_dpop_bound_access_tokens(cli):
    runner, url = cli
    for client_id, flags in (("bound-rp", ["--dpop-bound-access-tokens"]), ("plain-rp", [])):
        result = runner.invoke(
            main,
            ["clients", "add", client_id, "--name", client_id,
             "--redirect-uri", "https://rp.example/cb", *flags],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    engine = make_engine(url)
    with Session(engine) as session:
        assert session.get(Client, "bound-rp").dpop_bound_access_tokens is True
        assert session.get(Client, "plain-rp").dpop_bound_access_tokens is False
    engine.dispose()


def test_serve_uses_the_configured_metrics_folder_and_empties_only_its_metrics(tmp_path):
    from idp.cli import prepare_metrics_dir

    (tmp_path / "counter_1234.db").write_bytes(b"old")
    (tmp_path / "keep.txt").write_text("not ours")
    assert prepare_metrics_dir(str(tmp_path), "8000") == str(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
    fresh = tmp_path / "new"
    assert prepare_metrics_dir(str(fresh), "8000") == str(fresh)
    assert fresh.is_dir()
    assert prepare_metrics_dir(None, "8123").endswith("idp-metrics-8123")


def test_clients_add_registers_a_ciba_ping_client(cli):
    runner, url = cli
    result = runner.invoke(
        main,
        [
            "clients", "add", "ciba-rp", "--name", "CIBA RP",
            "--grant-type", "urn:openid:params:grant-type:ciba",
            "--backchannel-token-delivery-mode", "ping",
            "--backchannel-client-notification-endpoint", "https://rp.example/ciba",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    refused = runner.invoke(
        main,
        [
            "clients", "add", "no-mode", "--name", "No mode",
            "--grant-type", "urn:openid:params:grant-type:ciba",
        ],
    )  # fmt: skip
    assert refused.exit_code != 0
    assert "poll or ping" in refused.output
    engine = make_engine(url)
    with Session(engine) as session:
        client = session.get(Client, "ciba-rp")
        assert client is not None
        assert client.backchannel_token_delivery_mode == "ping"
        assert client.backchannel_client_notification_endpoint == "https://rp.example/ciba"
    engine.dispose()
