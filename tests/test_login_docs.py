"""docs/login.md's table of the login steps is the code's: their order, pages and guards."""

from __future__ import annotations

import re
from pathlib import Path

from idp.accounts.flow import LOGIN_STEPS
from idp.web.login import STEP_PAGES
from idp.web.login import STEP_VIEWS

DOC = Path(__file__).resolve().parent.parent / "docs" / "login.md"


def documented_rows() -> list[list[str]]:
    text = DOC.read_text(encoding="utf-8")
    table = text.split("<!-- steps:begin -->")[1].split("<!-- steps:end -->")[0]
    rows = [line.strip().strip("|").split("|") for line in table.strip().splitlines()[2:]]
    return [[cell.strip() for cell in row] for row in rows]


def expected_rows() -> list[list[str]]:
    return [
        [
            str(number),
            f"`{rule.step.value}`",
            ", ".join(f"`{page}`" for page in STEP_PAGES[rule.step]),
            rule.guard,
        ]
        for number, rule in enumerate(LOGIN_STEPS, start=1)
    ]


def test_the_documented_steps_are_the_codes():
    assert documented_rows() == expected_rows()


def test_every_step_has_pages_and_a_first_page(app):
    routes = {rule.rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/login/")}
    listed = {page for pages in STEP_PAGES.values() for page in pages}
    # Every page of the login belongs to a step, but the wait, which changes nothing.
    assert routes - listed == {"/login/confirm/wait"}
    assert set(STEP_VIEWS) == set(STEP_PAGES) == {rule.step for rule in LOGIN_STEPS}


def test_the_readme_links_the_login_document():
    readme = (DOC.parent.parent / "README.md").read_text(encoding="utf-8")
    assert re.search(r"\]\(docs/login\.md\)", readme)
