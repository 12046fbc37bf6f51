"""Checks on text people type, before it reaches a column: bounded, and free of control
characters (a NUL byte alone makes PostgreSQL refuse the whole statement)."""

from __future__ import annotations

import re

# C0 controls (tab, newline and carriage return aside) and DEL: no parameter of ours holds them.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINE_BREAK = re.compile(r"[\t\n\r]")


def has_control_characters(value: str) -> bool:
    return _CONTROL.search(value) is not None


def is_plain(value: str, *, limit: int) -> bool:
    """One line of at most ``limit`` characters, no control characters."""
    return (
        len(value) <= limit and not has_control_characters(value) and not _LINE_BREAK.search(value)
    )
