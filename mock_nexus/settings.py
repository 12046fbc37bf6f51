"""Settings of the mock Nexus (push relay and simulated phones), from ``NEXUS_*`` variables."""

from __future__ import annotations

from pydantic_settings import BaseSettings
from pydantic_settings import SettingsConfigDict


class NexusSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEXUS_", frozen=True, extra="ignore")

    relay_url: str = "http://127.0.0.1:8102"
    # The IdP a phone registers with when the activation does not name one.
    idp_url: str = "http://127.0.0.1:8000"
    # The phones' keys and seeds, kept across restarts as a real phone keeps them.
    state_file: str = "instance/nexus-phones.json"
    timeout: float = 5.0
