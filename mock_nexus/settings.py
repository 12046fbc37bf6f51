"""Settings of the mock Nexus (push relay and simulated phones), from ``NEXUS_*`` variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings
from pydantic_settings import SettingsConfigDict

DEMO_API_KEY = "nexus-demo-relay-api-key"


class NexusSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEXUS_", frozen=True, extra="ignore")

    relay_url: str = "http://127.0.0.1:8102"
    # The IdP a phone registers with when the activation does not name one.
    idp_url: str = "http://127.0.0.1:8000"
    # The phones' keys and seeds, kept across restarts as a real phone keeps them.
    state_file: str = "instance/nexus-phones.json"
    timeout: float = 5.0
    # The credential an IdP presents to send pushes through this relay.
    api_key: str = DEMO_API_KEY
    # Test knobs: how the real relay misbehaves (slow, down, losing messages).
    latency_ms: int = Field(0, ge=0, le=60_000)
    outage: bool = False
    drop_pushes: bool = False  # taken (202) but never delivered to the phone
    drop_answers: bool = False  # the phone's answer is lost on its way to the IdP
    # Lets a test change the knobs of a running mock through POST /_knobs; never in a demo.
    test_control: bool = False
