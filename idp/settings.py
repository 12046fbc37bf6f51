"""The IdP's one settings object, read from ``IDP_*`` environment variables.

This module is the only reader of the environment. Everything else receives a ``Settings``
instance (the app factory) or the few values it needs (services).
"""

from __future__ import annotations

import base64
import binascii
from datetime import date
from datetime import datetime
from datetime import timedelta
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field
from pydantic import SecretStr
from pydantic import field_validator
from pydantic import model_validator
from pydantic_settings import BaseSettings
from pydantic_settings import SettingsConfigDict

# Published demo secrets: fine on a laptop, refused in production mode.
DEMO_SECRET_KEY = "demo-secret-key-not-for-production-0123456789abcdef"
DEMO_DATA_KEY = "ZGVtby1kYXRhLWtleS1ub3QtZm9yLXByb2R1Y3Rpb24"  # base64url of 32 demo bytes
DEMO_ISSUER = "http://127.0.0.1:8000"

DEMO_PAOTANG_SECRET = "paotang-demo-client-secret"
DEMO_NEXUS_API_KEY = "nexus-demo-relay-api-key"

# NIST SP 800-63B-4 §3.2.2: never more than 100 consecutive failed attempts per account.
NIST_MAX_CONSECUTIVE_FAILURES = 100


def _dates(value: str) -> tuple[date, ...]:
    return tuple(date.fromisoformat(part.strip()) for part in value.split(",") if part.strip())


class SettingsError(ValueError):
    """The settings cannot run the IdP in the requested mode."""


class Settings(BaseSettings):
    """Every tunable of the IdP, with safe demo defaults."""

    model_config = SettingsConfigDict(env_prefix="IDP_", frozen=True, extra="ignore")

    mode: Literal["demo", "production"] = "demo"
    issuer: str = Field(DEMO_ISSUER, description="Exact issuer identifier, no trailing slash")

    database_url: str = "sqlite:///instance/idp.sqlite3"
    redis_url: str | None = Field(None, description="Unset: in-process store, one process only")
    redis_namespace: str = Field("", description="Prefix for every Redis key (shared servers)")

    secret_key: SecretStr = SecretStr(DEMO_SECRET_KEY)
    data_key: SecretStr = Field(
        SecretStr(DEMO_DATA_KEY), description="base64url of 32 bytes; encrypts secrets at rest"
    )

    # Tokens (seconds)
    access_token_ttl: int = Field(300, ge=30, le=3600)
    id_token_ttl: int = Field(300, ge=30, le=3600)
    authorization_code_ttl: int = Field(60, ge=10, le=600)
    refresh_token_ttl: int = Field(30 * 86400, ge=60, description="offline_access refresh tokens")
    signing_alg: Literal["ES256", "RS256"] = "ES256"
    dpop_nonce_required: bool = Field(
        False,
        description="RFC 9449 §8/§9: every DPoP proof (token endpoint, userinfo, admin API) must "
        "carry a nonce this server provided (answered with use_dpop_nonce and DPoP-Nonce)",
    )
    key_overlap: int = Field(
        86400, ge=0, description="How long a superseded signing key stays in the JWKS (seconds)"
    )

    # Sessions (NIST SP 800-63B-4 at AAL2: at most 24 h overall and 1 h idle)
    session_max_age: int = Field(86400, ge=60, le=86400)
    session_idle_timeout: int = Field(3600, ge=60, le=3600)
    login_transaction_ttl: int = Field(900, ge=60, le=3600)

    # Password step brute-force protection
    login_throttle_after: int = Field(5, ge=1, description="Consecutive failures before delays")
    login_throttle_base_delay: int = Field(2, ge=1, description="First delay (seconds), doubling")
    login_throttle_max_delay: int = Field(900, ge=1)
    login_lockout_after: int = Field(10, ge=1, le=NIST_MAX_CONSECUTIVE_FAILURES)
    login_lockout_seconds: int = Field(1800, ge=60)
    login_max_consecutive_failures: int = Field(
        NIST_MAX_CONSECUTIVE_FAILURES, ge=1, le=NIST_MAX_CONSECUTIVE_FAILURES
    )
    login_ip_failure_limit: int = Field(
        300, ge=1, description="Failures per client IP per window (offices share one NAT address)"
    )
    login_ip_window: int = Field(900, ge=60)

    # Passwords
    password_min_length: int = Field(12, ge=8, le=64)
    temporary_password_ttl: int = Field(7 * 86400, ge=3600)
    password_max_age_days: int = Field(
        90,
        ge=0,
        le=3650,
        description="Days before a password must be changed (the Ministry's 3 months); 0: never",
    )
    password_history: int = Field(
        5,
        ge=1,
        le=24,
        description="Recent passwords that may not be chosen again, current included",
    )

    # Registration (Soft Token enrolment): identity proofing at Paotang
    paotang_issuer: str = "http://127.0.0.1:8101"
    paotang_client_id: str = "softtoken-idp"
    paotang_client_secret: SecretStr = SecretStr(DEMO_PAOTANG_SECRET)
    paotang_timeout: float = Field(5.0, gt=0, le=60, description="Seconds per call to Paotang")
    proofing_ial: str = Field(
        "2.3", description="ETDA identity assurance level that Paotang proofing achieves"
    )
    activation_code_ttl: int = Field(600, ge=60, le=3600, description="Seconds")
    proofing_valid_for: int = Field(
        3600, ge=300, le=86400, description="Seconds after proofing during which a phone binds"
    )
    paotang_trust_framework: str = "th_etda_digital_id"
    nexus_relay_url: str = Field(
        "http://127.0.0.1:8102", description="The push relay; bound phones must be its phones"
    )
    nexus_api_key: SecretStr = Field(
        SecretStr(DEMO_NEXUS_API_KEY), description="The IdP's credential at the push relay"
    )
    nexus_timeout: float = Field(
        3.0, gt=0, le=30, description="Seconds the relay may take to accept a push"
    )
    activation_ip_failure_limit: int = Field(10, ge=1, description="Wrong codes per IP per 15 min")
    registration_opens_at: datetime | None = Field(None, description="ISO 8601, with zone")
    registration_closes_at: datetime | None = Field(None, description="ISO 8601, with zone")

    # Confirmation on the phone, every login (push with number matching, TOTP fallback)
    soft_token_required: bool = Field(
        True,
        description="Off only during a registration period: users without a bound phone then "
        "sign in to applications with the password alone (acr aal1-pwd)",
    )
    mfa_challenge_ttl: int = Field(90, ge=30, le=300, description="Seconds a push may wait")
    mfa_push_limit: int = Field(10, ge=1, description="Pushes per user per window")
    mfa_push_window: int = Field(900, ge=60, description="Seconds")
    mfa_denial_backoff: int = Field(
        30, ge=1, description="Seconds before a new push after a denial, doubling per denial"
    )
    mfa_denial_lock_after: int = Field(
        5, ge=1, description="Consecutive denials that pause pushes until a login succeeds"
    )
    mfa_suspend_on_report: bool = Field(
        True, description='"This was not me" suspends the phone\'s Soft Token'
    )
    passkeys_enabled: bool = Field(
        False,
        description="Passkeys may confirm a login instead of the Nexus Smart ID app. A "
        "departure from the Ministry's letter (กค ๐๔๐๒.๒/ว ๒๔), which asks for the app at every "
        "login: off unless the deployment decides otherwise",
    )
    mfa_max_waiting: int = Field(
        16,
        ge=1,
        le=256,
        description="Login pages a worker holds waiting at once (fewer than its threads)",
    )
    mfa_long_poll: float = Field(
        10.0, gt=0, le=30, description="Seconds the login page's wait for an answer is held"
    )
    # The waiter: pages wait for the phone's answer there, without holding a worker's thread
    wait_url: str | None = Field(
        None,
        description="Public URL of the waiter (no trailing slash); unset: pages long-poll the IdP",
        # A host (name or bracketed IPv6) and port only: its origin goes into the page's CSP.
        pattern=r"^(https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(/[^?#\s]*[^/?#\s])?)?$",
    )
    wait_bind: str = Field(
        "127.0.0.1:8001", description="Where 'idp serve' starts the waiter when IDP_WAIT_URL is set"
    )
    wait_hold: float = Field(25.0, gt=0, le=60, description="Seconds the waiter holds one wait")
    wait_max_per_ip: int = Field(
        256, ge=1, description="Waits the waiter holds at once for one client IP address"
    )
    wait_max_connections: int = Field(
        10000, ge=1, description="Waits the waiter holds at once in all"
    )

    # CIBA (backchannel authentication): an application asks the user's phone directly
    ciba_request_ttl: int = Field(
        120, ge=30, le=600, description="Seconds a backchannel request waits when none is asked"
    )
    ciba_max_request_ttl: int = Field(
        300, ge=30, le=600, description="Most seconds a client's requested_expiry may ask for"
    )
    ciba_poll_interval: int = Field(
        5, ge=1, le=60, description="Seconds a client waits between polls of the token endpoint"
    )
    ciba_unknown_user_limit: int = Field(
        20,
        ge=1,
        description="unknown_user_id answers per client per 15 minutes before its backchannel "
        "requests are refused for the rest of the window",
    )

    # Roles: designation requests carry the head of unit's written order
    order_max_bytes: int = Field(
        10 * 1024 * 1024,
        ge=1024,
        le=50 * 1024 * 1024,
        description="Largest order file (PDF, PNG or JPEG) a designation request may attach",
    )

    # Lost phones: the head of unit's letter, counted in Thai civil-service working days
    lost_phone_letter_days: int = Field(3, ge=1, le=30)
    extra_days_off: str = Field(
        "",
        description="Days off the cabinet declared after the holidays package was released "
        "(comma-separated YYYY-MM-DD)",
    )
    extra_working_days: str = Field(
        "", description="Listed holidays that are working days after all (YYYY-MM-DD, ...)"
    )
    access_pass_ttl: int = Field(
        1800, ge=300, le=86400, description="Seconds a helpdesk's Temporary Access Pass lasts"
    )
    # CGD (กรมบัญชีกลาง, กองระบบการคลังภาครัฐ) as the Ministry's letter gives it (ข้อ ๙)
    cgd_contact_phone: str = Field("0 2032 2636", description="Contact Center, office hours")
    cgd_contact_line: str = Field("@gfmiscc", description="LINE Official Account")
    cgd_contact_email: str = "gfmiscc@gfmis.go.th"
    cgd_address: str = Field(
        "ถนนพระรามที่ ๖ แขวงพญาไท เขตพญาไท กรุงเทพมหานคร ๑๐๔๐๐",
        description="Where the head of unit's letter is posted",
    )
    reenrol_needs_access_pass: bool = Field(
        True,
        description="After a lost phone, registering a new one starts only with the "
        "helpdesk's Temporary Access Pass",
    )

    # Pages
    default_locale: Literal["th", "en"] = "th"

    # Serving
    trusted_proxies: int = Field(0, ge=0, le=5, description="X-Forwarded-* hops to trust")
    log_level: str = "INFO"
    metrics_dir: str | None = Field(
        None, description="Shared folder for metrics of several worker processes"
    )
    audit_seal_interval: float = Field(1.0, gt=0, description="Seconds between audit seals")

    @field_validator("issuer")
    @classmethod
    def _issuer_is_exact(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("issuer must be an absolute http(s) URL")
        if value.endswith("/") or parts.query or parts.fragment:
            raise ValueError("issuer must have no trailing slash, query or fragment")
        return value

    @field_validator("data_key")
    @classmethod
    def _data_key_is_32_bytes(cls, value: SecretStr) -> SecretStr:
        decode_data_key(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _production_refuses_demo_secrets(self) -> Settings:
        if self.mode != "production":
            return self
        problems = []
        if self.secret_key.get_secret_value() == DEMO_SECRET_KEY:
            problems.append("IDP_SECRET_KEY is the published demo key")
        elif len(self.secret_key.get_secret_value()) < 32:
            problems.append("IDP_SECRET_KEY must be at least 32 characters")
        if self.data_key.get_secret_value() == DEMO_DATA_KEY:
            problems.append("IDP_DATA_KEY is the published demo key")
        if self.paotang_client_secret.get_secret_value() == DEMO_PAOTANG_SECRET:
            problems.append("IDP_PAOTANG_CLIENT_SECRET is the published demo secret")
        if self.nexus_api_key.get_secret_value() == DEMO_NEXUS_API_KEY:
            problems.append("IDP_NEXUS_API_KEY is the published demo key")
        if self.database_url.startswith("sqlite"):
            problems.append("IDP_DATABASE_URL must name PostgreSQL in production mode")
        if not self.redis_url:
            problems.append("IDP_REDIS_URL is required: several workers must share state")
        if self.issuer.startswith("http://") and not _is_loopback(self.issuer):
            problems.append("IDP_ISSUER must use https outside loopback")
        # Loopback only beside a loopback issuer: a public issuer's pages would send their
        # tickets to whatever listens on each user's own machine.
        if (
            self.wait_url
            and self.wait_url.startswith("http://")
            and not (_is_loopback(self.wait_url) and _is_loopback(self.issuer))
        ):
            problems.append("IDP_WAIT_URL must use https outside loopback")
        if problems:
            raise SettingsError("refusing to start in production mode: " + "; ".join(problems))
        return self

    @field_validator("extra_days_off", "extra_working_days")
    @classmethod
    def _are_dates(cls, value: str) -> str:
        _dates(value)  # raises ValueError for anything that is not a list of dates
        return value

    @property
    def days_off(self) -> tuple[date, ...]:
        return _dates(self.extra_days_off)

    @property
    def working_days(self) -> tuple[date, ...]:
        return _dates(self.extra_working_days)

    @property
    def is_production(self) -> bool:
        return self.mode == "production"

    @property
    def password_max_age(self) -> timedelta | None:
        """``password_max_age_days`` as a duration; None when passwords do not expire."""
        days = self.password_max_age_days
        return timedelta(days=days) if days else None

    @property
    def data_key_bytes(self) -> bytes:
        return decode_data_key(self.data_key.get_secret_value())


def decode_data_key(value: str) -> bytes:
    """Decode a base64url data key and check it is 32 bytes (AES-256).

    Raises:
        ValueError: the value is not base64url or not 32 bytes long.
    """
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("data key must be base64url") from exc
    if len(raw) != 32:
        raise ValueError("data key must decode to 32 bytes")
    return raw


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in ("127.0.0.1", "localhost", "::1")
