"""The citizens the mock "knows": its stand-in for the DOPA civil registration check.

``citizens.csv`` holds them: citizen IDs valid by the mod-11 check digit, laser codes in the
card's format (two letters, ten digits, printed AA0-0000000-00), some cards expired. The first
eight are the IdP demo's people.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

_THAI_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")
_LASER = re.compile(r"[A-Z]{2}\d{10}")


@dataclass(frozen=True)
class Citizen:
    citizen_id: str
    laser_code: str
    title_th: str
    given_name_th: str
    family_name_th: str
    given_name_en: str
    family_name_en: str
    birthdate: date
    card_issued: date
    card_expires: date


def _load() -> tuple[Citizen, ...]:
    with (Path(__file__).parent / "citizens.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return tuple(
        Citizen(
            citizen_id=row["citizen_id"],
            laser_code=row["laser_code"],
            title_th=row["title_th"],
            given_name_th=row["given_name_th"],
            family_name_th=row["family_name_th"],
            given_name_en=row["given_name_en"],
            family_name_en=row["family_name_en"],
            birthdate=date.fromisoformat(row["birthdate"]),
            card_issued=date.fromisoformat(row["card_issued"]),
            card_expires=date.fromisoformat(row["card_expires"]),
        )
        for row in rows
    )


CITIZENS: tuple[Citizen, ...] = _load()
_BY_ID = {c.citizen_id: c for c in CITIZENS}


def normalise_citizen_id(value: str) -> str:
    return value.translate(_THAI_DIGITS).replace("-", "").replace(" ", "")


def normalise_laser_code(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", value.translate(_THAI_DIGITS)).upper()


def has_valid_check_digit(number: str) -> bool:
    if len(number) != 13 or not number.isascii() or not number.isdigit() or number[0] in "09":
        return False
    total = sum(int(d) * (13 - i) for i, d in enumerate(number[:12]))
    return (11 - total % 11) % 10 == int(number[12])


def is_laser_code(value: str) -> bool:
    return _LASER.fullmatch(value) is not None


def find(citizen_id: str) -> Citizen | None:
    return _BY_ID.get(citizen_id)
