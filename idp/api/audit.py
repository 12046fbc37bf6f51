"""``/api/admin/v1/audit/…``: the audit trail for internal audit, filtered as on the page
(who, what, when, unit), with the hash chain's status, as JSON or CSV. CGD and auditors only;
an auditor scoped to units or a province gets their units' events only."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask import request

from idp.api import schemas
from idp.api.auth import authenticate
from idp.api.common import answer
from idp.api.common import bp
from idp.audit.trail import PAGE_SIZE
from idp.audit.trail import read_events
from idp.roles import errors
from idp.web import context
from idp.web.trail import chain_status
from idp.web.trail import csv_response
from idp.web.trail import record_export
from idp.web.trail import stream_export
from idp.web.trail import trail_request


def _reader() -> Any:
    caller = authenticate()
    if not caller.authority.may_read_trail():
        raise errors.NotAllowedError()
    return caller


@bp.get("/audit/events")
def audit_events() -> Response:
    caller = _reader()
    db = context.db()
    req = trail_request(db, caller.authority, request.args)
    found = read_events(db, req.filter, scope=req.scope)
    chain = chain_status(db)
    return answer(
        schemas.AuditPage(
            events=[schemas.AuditEvent.model_validate(e, from_attributes=True) for e in found],
            next_before=found[-1].id if len(found) == PAGE_SIZE else None,
            scope=sorted(req.scope.codes) if req.scope is not None else None,
            chain=schemas.ChainStatus(
                intact=chain.is_intact,
                checked=chain.checked,
                unsealed=chain.unsealed,
                broken_at_seq=chain.broken_at_seq,
                reason=chain.reason,
                head_seq=chain.head_seq,
                head_hash=chain.head_hash,
            ),
        )
    )


@bp.get("/audit/events.csv")
def audit_export() -> Response:
    caller = _reader()
    db = context.db()
    req = trail_request(db, caller.authority, request.args)
    record_export(db, caller.actor, req)
    return csv_response(stream_export(req, "th"))
