"""Alerts for the helpdesk view: security events that need a person, kept until acknowledged."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from idp.audit.models import SecurityAlert


def raise_alert(
    db: Session, kind: str, *, user_id: str | None, now: datetime, **details: Any
) -> SecurityAlert:
    alert = SecurityAlert(kind=kind, user_id=user_id, details=details, created_at=now)
    db.add(alert)
    db.flush()
    return alert
