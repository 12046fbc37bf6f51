"""Settings of the GFMS portal simulator, from ``PORTAL_*`` variables (the only reader of the
environment in this process)."""

from __future__ import annotations

import json
from pathlib import Path

from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from pydantic import Field
from pydantic import model_validator
from pydantic_settings import BaseSettings
from pydantic_settings import SettingsConfigDict

DEMO_CLIENT_SECRET = "gfms-portal-demo-secret-not-for-production"
DEMO_UNIT = "0000000001"
DEMO_SECRET_KEY = "gfms-portal-demo-cookie-key-not-for-production"


class PortalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PORTAL_", frozen=True, extra="ignore")

    # Where this portal is reached: the redirect and logout URIs are built from it.
    base_url: str = "http://127.0.0.1:8200"
    issuer: str = "http://127.0.0.1:8000"
    client_id: str = "gfms-portal"
    # The client's private P-256 JWK (FAPI 2.0: private_key_jwt); the demo seed writes it.
    client_key_file: str = "instance/gfms-portal.private.jwk.json"
    # Only for fetching the evidence of a confirmed transaction (the IdP's /evidence takes
    # client_secret_basic alone); every OAuth request authenticates with the key.
    client_secret: str = DEMO_CLIENT_SECRET
    # create_all adds no column to an older file: a new schema gets a new file name.
    database_url: str = "sqlite:///instance/gfms-portal-2.sqlite3"
    secret_key: str = DEMO_SECRET_KEY
    # The portal's own sessions (NIST SP 800-63B-4 at AAL2, like the IdP's).
    session_max_age: int = 24 * 3600
    session_idle: int = 3600
    # How long a trip to the IdP (login or confirmation) may take.
    auth_request_ttl: int = 600
    attachment_max_bytes: int = Field(2 * 1024 * 1024, ge=1024)
    timeout: float = 5.0
    # Seconds of clock difference tolerated when checking iat/exp of the IdP's tokens.
    leeway: int = 60
    production: bool = False
    # กค 0402.2/ว 3 ข้อ 3: requests and evidence are kept for the State Audit Office; nothing is
    # deleted before this many years after a document's last signature.
    retention_years: int = Field(10, ge=1)
    # Who may read the archive (internal audit, the State Audit Office): IdP username to the
    # units in their scope, e.g. {"auditor1": ["0000000001"]}. The demo's auditor outside
    # production mode.
    auditors: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _no_demo_secrets_in_production(self) -> PortalSettings:
        if self.production and DEMO_CLIENT_SECRET in (self.client_secret, self.secret_key):
            raise ValueError("production mode refuses the demo client secret")
        if self.production and self.secret_key == DEMO_SECRET_KEY:
            raise ValueError("production mode refuses the demo cookie key")
        return self

    def auditor_units(self, username: str) -> set[str]:
        """The units an auditor may read (none for anyone else); the demo's auditor1 reads
        the demo unit when nothing is configured outside production mode."""
        auditors = self.auditors
        if not auditors and not self.production:
            auditors = {"auditor1": [DEMO_UNIT]}
        return set(auditors.get(username, [])) if username else set()

    def client_key(self) -> ECKey:
        """The private key of ``client_key_file``.

        Raises:
            ValueError: missing, unreadable, or not a private P-256 key with a kid.
        """
        try:
            key = ECKey.import_key(json.loads(Path(self.client_key_file).read_text()))
        except (OSError, ValueError, JoseError) as exc:
            raise ValueError(f"PORTAL_CLIENT_KEY_FILE: no usable key ({exc})") from exc
        if key.curve_name != "P-256" or not key.is_private or not key.kid:
            raise ValueError("PORTAL_CLIENT_KEY_FILE: not a private P-256 key with a kid")
        return key

    @property
    def redirect_uri(self) -> str:
        return f"{self.base_url}/auth/callback"
