"""Attack: an administrator without the power to act on a person learns, from the admin API's
status, whether that person's username exists anywhere in the ministry (404 for a name that
does not, 403 for one that does)."""

from __future__ import annotations

import pytest

from tests.functional.test_admin_api import call
from tests.functional.test_admin_api import stack  # noqa: F401 - the fixture
from tests.functional.test_admin_api import token_of


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/admin-grants", {"username": "{name}", "role": "helpdesk"}),
        ("/users/{name}/suspend", {"reason": "probe"}),
        ("/users/{name}/lift-suspension", {"reason": "probe"}),
        ("/users/{name}/access-pass", {}),
    ],
)
def test_a_person_outside_the_callers_powers_looks_like_no_one(stack, path, body):  # noqa: F811
    treasury2 = token_of(stack, "treasury2")  # Chiang Mai's administrator; somchai is not there

    def probe(name: str) -> tuple[int, str]:
        filled = {k: v.replace("{name}", name) for k, v in body.items()}
        answer = call(stack, treasury2, "POST", path.replace("{name}", name), json=filled)
        return answer.status_code, answer.json()["error"]

    assert probe("somchai") == probe("nobody-at-all")
