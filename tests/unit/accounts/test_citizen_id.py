from __future__ import annotations

import pytest

from idp.accounts.citizen_id import validate
from idp.accounts.errors import CitizenIdError


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("1101700230074", "1101700230074"),
        ("1-1017-00230-07-4", "1101700230074"),
        ("3100601234565", "3100601234565"),
        ("1234567890121", "1234567890121"),  # check digit wraps around (remainder 0)
        ("3100600445635", "3100600445635"),
        ("๑๑๐๑๗๐๐๒๓๐๐๗๔", "1101700230074"),  # Thai digits
    ],
)
def test_valid_citizen_ids_are_normalised(given, expected):
    assert validate(given) == expected


@pytest.mark.parametrize(
    "given",
    ["1101700230075", "1410100100000", "0101700230074", "110170023007", "11017002300740", "abc"],
)
def test_invalid_citizen_ids_are_refused(given):
    with pytest.raises(CitizenIdError):
        validate(given)
