"""Every text of the pages has its Thai translation, and the compiled catalogue is current."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "idp" / "web" / "translations" / "th" / "LC_MESSAGES"
METHODS = [("idp/**.py", "python"), ("idp/web/templates/**.html", "jinja2")]


def source_messages() -> set[str]:
    found = set()
    for _, _, message, _, _ in extract_from_dir(
        str(ROOT), METHODS, keywords={"_": None, "gettext": None, "_l": None, "lazy_gettext": None}
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_page_text_has_a_thai_translation():
    with (CATALOGUE / "messages.po").open("rb") as handle:
        catalogue = read_po(handle)
    translated = {m.id for m in catalogue if m.id and m.string}
    missing = sorted(source_messages() - translated)
    assert not missing, "run `make translations` and translate:\n" + "\n".join(missing)


def test_compiled_catalogue_matches_the_translations():
    with (CATALOGUE / "messages.po").open("rb") as handle:
        po = {m.id: m.string for m in read_po(handle) if m.id}
    with (CATALOGUE / "messages.mo").open("rb") as handle:
        mo = {m.id: m.string for m in read_mo(handle) if m.id}
    assert po == mo, "run `pybabel compile -d idp/web/translations`"
