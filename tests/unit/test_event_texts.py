"""Every audit event of the catalogue has a sentence, so no page shows an event's code."""

from __future__ import annotations

from idp.audit.catalogue import EVENTS
from idp.web.event_texts import EVENT_LABELS


def test_every_catalogue_event_has_a_sentence():
    missing = sorted(set(EVENTS) - EVENT_LABELS.keys())
    assert not missing, "describe in idp/web/event_texts.py: " + ", ".join(missing)
