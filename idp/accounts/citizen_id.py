"""Thai citizen ID numbers (เลขประจำตัวประชาชน): 13 digits with a mod-11 check digit."""

from __future__ import annotations

from idp.accounts.errors import CitizenIdError

_THAI_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")


def normalise(value: str) -> str:
    """Strip spaces and hyphens and turn Thai digits into ASCII ones."""
    return value.translate(_THAI_DIGITS).replace("-", "").replace(" ", "")


def check_digit(first_twelve: str) -> int:
    total = sum(int(d) * (13 - i) for i, d in enumerate(first_twelve))
    return (11 - total % 11) % 10


def validate(value: str) -> str:
    """Return the normalised 13-digit number.

    Raises:
        CitizenIdError: not 13 digits, a first digit of 0 or 9, or a wrong check digit.
    """
    number = normalise(value)
    if len(number) != 13 or not number.isascii() or not number.isdigit():
        raise CitizenIdError()
    if number[0] in "09" or check_digit(number[:12]) != int(number[12]):
        raise CitizenIdError()
    return number
