"""docs/audit-events.md describes exactly the events of the catalogue, with their fields."""

from __future__ import annotations

import re
from pathlib import Path

from idp.audit.catalogue import EVENTS

DOC = Path(__file__).resolve().parent.parent / "docs" / "audit-events.md"
_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|[^|]*\|([^|]*)\|\s*$")


def documented_events() -> dict[str, set[str]]:
    documented: dict[str, set[str]] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = _ROW.match(line)
        if match:
            name, fields = match.groups()
            assert name not in documented, f"{name} is listed twice"
            documented[name] = set(re.findall(r"`([^`]+)`", fields))
    return documented


def test_the_document_lists_events() -> None:
    assert {"token.issued", "session.logout_delivered", "mfa.push_approved"} <= set(
        documented_events()
    )


def test_every_catalogue_event_is_documented_and_nothing_else() -> None:
    catalogue, documented = set(EVENTS), set(documented_events())
    assert not catalogue - documented, f"not documented: {sorted(catalogue - documented)}"
    assert not documented - catalogue, f"not in the catalogue: {sorted(documented - catalogue)}"


def test_the_documented_fields_are_the_catalogues() -> None:
    documented = documented_events()
    differ = {
        name: {"catalogue": sorted(fields), "document": sorted(documented[name])}
        for name, fields in EVENTS.items()
        if name in documented and set(fields) != documented[name]
    }
    assert not differ, f"fields differ between idp/audit/catalogue.py and the document: {differ}"
