"""The ``idp`` command, run in process against a SQLite file."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from sqlalchemy.orm import Session

from idp.cli import main
from idp.oidc.models import Client
from idp.store.db import make_engine


def test_clients_add_registers_the_security_event_uri(tmp_path: Path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    monkeypatch.setenv("IDP_DATABASE_URL", url)
    monkeypatch.delenv("IDP_REDIS_URL", raising=False)
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
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


def test_clients_add_registers_a_ciba_ping_client(tmp_path: Path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    monkeypatch.setenv("IDP_DATABASE_URL", url)
    monkeypatch.delenv("IDP_REDIS_URL", raising=False)
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
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
