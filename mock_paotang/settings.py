"""Settings of the mock Paotang, read from ``PAOTANG_*`` environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel
from pydantic import Field
from pydantic_settings import BaseSettings
from pydantic_settings import SettingsConfigDict

Failure = Literal[
    "unknown_citizen", "laser_mismatch", "card_expired", "face_mismatch", "dopa_unavailable"
]


class RegisteredClient(BaseModel):
    secret: str
    redirect_uris: list[str]


def _demo_clients() -> dict[str, RegisteredClient]:
    return {
        "softtoken-idp": RegisteredClient(
            secret="paotang-demo-client-secret",  # noqa: S106 - the published demo secret
            redirect_uris=["http://127.0.0.1:8000/enrol/proofing/callback"],
        )
    }


class PaotangSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAOTANG_", frozen=True, extra="ignore")

    issuer: str = "http://127.0.0.1:8101"
    clients: dict[str, RegisteredClient] = Field(default_factory=_demo_clients)
    key_file: str = "instance/paotang-signing-key.json"
    trust_framework: str = "th_etda_digital_id"
    id_token_ttl: int = 300
    code_ttl: int = 120
    # Test knobs: how the real service misbehaves (slow, down, refusing).
    latency_ms: int = Field(0, ge=0, le=60_000)
    outage: bool = False
    force_failure: Failure | None = None
    # Lets a test change the knobs of a running mock through POST /_knobs; never in a demo.
    test_control: bool = False
