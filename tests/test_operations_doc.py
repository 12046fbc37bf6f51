"""docs/operations.md lists every setting of the IdP."""

from __future__ import annotations

import re
from pathlib import Path

from idp.settings import Settings

DOC = Path(__file__).resolve().parent.parent / "docs" / "operations.md"


def test_every_setting_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [
        f"IDP_{name.upper()}"
        for name in Settings.model_fields
        if not re.search(rf"`IDP_{name.upper()}`", text)
    ]
    assert not missing, "settings missing from docs/operations.md: " + ", ".join(missing)


def test_the_document_names_no_setting_that_does_not_exist() -> None:
    text = DOC.read_text(encoding="utf-8")
    known = {f"IDP_{name.upper()}" for name in Settings.model_fields}
    unknown = sorted(set(re.findall(r"`(IDP_[A-Z0-9_]+)`", text)) - known)
    assert not unknown, "docs/operations.md names unknown settings: " + ", ".join(unknown)
