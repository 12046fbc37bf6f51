"""Every ``record`` call names an event of the catalogue and passes only its fields.

mypy already refuses a name outside ``EventName``; this test also reads the fields, which a
type cannot, and names held in tables. The code is parsed with ast, nothing is run: a call's
name is a literal, a lookup in a module-level dict of names (every value counts), or a name
unpacked from such a dict. Fields spread with ``**`` are not read: the catalogue lists them.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

from idp.audit.catalogue import EVENTS
from idp.audit.catalogue import EventName

ROOT = Path(__file__).resolve().parents[2]
# Columns of every event row, not details (keyword arguments of ``record`` itself).
COLUMNS = {"now", "outcome", "actor", "client_id", "context"}


def _imports_record(tree: ast.Module) -> bool:
    return any(
        isinstance(node, ast.ImportFrom)
        and node.module == "idp.audit.service"
        and any(alias.name == "record" for alias in node.names)
        for node in ast.walk(tree)
    )


def _tables(tree: ast.Module) -> dict[str, ast.expr]:
    """Module-level assignments, annotated or not: name -> value."""
    tables: dict[str, ast.expr] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    tables[target.id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            tables[node.target.id] = node.value
    return tables


def _strings(node: ast.AST) -> list[str]:
    return [
        n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]


def _unpacked(function: ast.AST, name: str, tables: dict[str, ast.expr]) -> list[str]:
    """Names bound by ``a, b = TABLE[key]`` in ``function``: the strings at that position of
    every value of the module-level dict ``TABLE``."""
    for node in ast.walk(function):
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Subscript)):
            continue
        target, source = node.targets[0], node.value.value
        if not (isinstance(target, ast.Tuple) and isinstance(source, ast.Name)):
            continue
        positions = [i for i, elt in enumerate(target.elts) if getattr(elt, "id", None) == name]
        table = tables.get(source.id)
        if positions and isinstance(table, ast.Dict):
            names = []
            for value in table.values:
                assert isinstance(value, ast.Tuple)
                names += _strings(value.elts[positions[0]])
            return names
    return []


def recorded_calls() -> list[tuple[str, list[str], set[str]]]:
    """Per ``record`` call: where it is, the event names it may pass, the fields it passes."""
    calls = []
    for path in sorted((ROOT / "idp").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        if not _imports_record(tree):
            continue
        tables = _tables(tree)
        functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "record"):
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            argument = node.args[1]
            names: list[str] = []
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                names = [argument.value]
            elif isinstance(argument, ast.Subscript) and isinstance(argument.value, ast.Name):
                table = tables.get(argument.value.id)
                if isinstance(table, ast.Dict):
                    names = [name for value in table.values for name in _strings(value)]
            elif isinstance(argument, ast.Name):
                enclosing = [f for f in functions if f.lineno <= node.lineno <= (f.end_lineno or 0)]
                names = _unpacked(enclosing[-1], argument.id, tables) if enclosing else []
            fields = {k.arg for k in node.keywords if k.arg is not None} - COLUMNS
            calls.append((where, names, fields))
    return calls


def test_the_catalogue_names_are_the_types() -> None:
    assert set(get_args(EventName)) == set(EVENTS), "EventName and EVENTS must list the same names"
    assert len(get_args(EventName)) == len(EVENTS)


def test_every_record_call_can_be_read() -> None:
    calls = recorded_calls()
    assert len(calls) > 60  # the scan finds the calls
    unreadable = [where for where, names, _ in calls if not names]
    assert not unreadable, (
        "name events with a literal or a module-level table of catalogue names: "
        + ", ".join(unreadable)
    )


def test_every_recorded_name_is_in_the_catalogue() -> None:
    unknown = [f"{where}: {name}" for where, names, _ in recorded_calls() for name in names
               if name not in EVENTS]  # fmt: skip
    assert not unknown, "add to idp/audit/catalogue.py: " + ", ".join(unknown)


def test_every_field_passed_is_in_the_catalogue() -> None:
    extra = [
        f"{where}: {name} {sorted(fields - set(EVENTS[name]))}"
        for where, names, fields in recorded_calls()
        for name in names
        if name in EVENTS and fields - set(EVENTS[name])
    ]
    assert not extra, "fields missing from idp/audit/catalogue.py: " + ", ".join(extra)


def test_every_catalogue_event_is_recorded_somewhere() -> None:
    recorded = {name for _, names, _ in recorded_calls() for name in names}
    assert not set(EVENTS) - recorded, f"never recorded: {sorted(set(EVENTS) - recorded)}"
