"""Every audit event the IdP records has a sentence, so no page shows an event's code."""

from __future__ import annotations

import ast
from pathlib import Path

from idp.mfa.challenges import Outcome
from idp.web.event_texts import EVENT_LABELS

ROOT = Path(__file__).resolve().parents[2] / "idp"
# Names made at run time: ``token.{reason}`` in the grants, ``mfa.push_{outcome}`` for the
# phone's answers.
MADE_AT_RUN_TIME = {"token.code_reused", "token.refresh_reused"} | {
    f"mfa.push_{outcome.value}" for outcome in Outcome if outcome != Outcome.PENDING
}


def recorded_events() -> set[str]:
    found = set()
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", None)) == "record"
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str)
            ):
                found.add(node.args[1].value)
    return found


def test_every_recorded_event_has_a_sentence():
    events = recorded_events()
    assert len(events) > 30  # the scan finds the calls
    missing = sorted((events | MADE_AT_RUN_TIME) - EVENT_LABELS.keys())
    assert not missing, "describe in idp/web/event_texts.py: " + ", ".join(missing)
