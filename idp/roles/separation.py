"""Separation of duties: pairs of roles one person may never hold in one unit at overlapping
times, whether designated or as a substitute. The pairs are rows of ``exclusive_role_pairs``;
the first, approve-1 with approve-2 (the Ministry's rule), comes with the migration."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.roles.models import ExclusiveRolePair
from idp.roles.periods import Period

Pair = tuple[str, str]


def pair_of(role_a: str, role_b: str) -> Pair:
    first, second = sorted((role_a, role_b))
    return first, second


def exclusive_pairs(db: Session) -> frozenset[Pair]:
    rows = db.execute(select(ExclusiveRolePair.role_a, ExclusiveRolePair.role_b))
    return frozenset((a, b) for a, b in rows)


@dataclass(frozen=True)
class Holding:
    """A role a person holds (or would hold) in one unit for a period."""

    role: str
    period: Period


def conflict(
    holdings: Iterable[Holding], candidate: Holding, pairs: frozenset[Pair]
) -> Pair | None:
    """The exclusive pair that ``candidate`` would complete with one of ``holdings`` (all in
    the same unit, of the same person), if any."""
    for held in holdings:
        pair = pair_of(held.role, candidate.role)
        if pair in pairs and held.period.overlaps(candidate.period):
            return pair
    return None


def pairs_held_together(roles: Iterable[str], pairs: frozenset[Pair]) -> set[Pair]:
    """The exclusive pairs all present in ``roles`` (one person, one unit, one day)."""
    present = set(roles)
    return {pair for pair in pairs if pair[0] in present and pair[1] in present}
