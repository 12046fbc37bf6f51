"""Every model module, imported once so the metadata is complete (migrations, tests)."""

from __future__ import annotations

import idp.accounts.models
import idp.audit.models
import idp.enrol.models
import idp.mfa.models
import idp.oidc.models
import idp.revocation.models
import idp.roles.models
import idp.store.durable
from idp.store.db import Base

MODEL_MODULES = (
    idp.accounts.models,
    idp.audit.models,
    idp.enrol.models,
    idp.mfa.models,
    idp.oidc.models,
    idp.revocation.models,
    idp.roles.models,
    idp.store.durable,
)

__all__ = ["MODEL_MODULES", "Base"]
