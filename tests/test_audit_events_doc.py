"""docs/audit-events.md lists exactly the events the code records, with their fields.

The code is parsed with ast, nothing is imported: every call of ``idp.audit.service.record``
gives an event name (a literal, an f-string listed as its pattern, or a name unpacked from a
module-level table) and the detail fields passed by keyword.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "audit-events.md"
# Columns of every event row, not details: they are documented once, above the tables.
COLUMNS = {"now", "outcome", "actor", "client_id", "context"}


def _imports_record(tree: ast.Module) -> bool:
    return any(
        isinstance(node, ast.ImportFrom)
        and node.module == "idp.audit.service"
        and any(alias.name == "record" for alias in node.names)
        for node in ast.walk(tree)
    )


def _pattern(node: ast.JoinedStr) -> str:
    """``f"mfa.push_{outcome.value}"`` as ``mfa.push_{outcome}``."""
    parts = []
    for value in node.values:
        if isinstance(value, ast.Constant):
            parts.append(str(value.value))
        else:
            assert isinstance(value, ast.FormattedValue)
            first = next(n.id for n in ast.walk(value.value) if isinstance(n, ast.Name))
            parts.append("{" + first + "}")
    return "".join(parts)


def _tables(tree: ast.Module) -> dict[str, ast.expr]:
    return {
        target.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


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
                item = value.elts[positions[0]]
                assert isinstance(item, ast.Constant)
                assert isinstance(item.value, str)
                names.append(item.value)
            return names
    return []


def recorded_events() -> dict[str, set[str]]:
    """Every event name (or pattern) the code records, with the detail fields it passes."""
    events: dict[str, set[str]] = defaultdict(set)
    unknown = []
    # Only the IdP can record: the other processes never import it (tests/test_architecture.py).
    for path in sorted((ROOT / "idp").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        if not _imports_record(tree):
            continue
        tables = _tables(tree)
        functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
        for node in ast.walk(tree):
            is_record = isinstance(node, ast.Call) and getattr(node.func, "id", None) == "record"
            if not is_record:
                continue
            assert isinstance(node, ast.Call)
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            argument = node.args[1]
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                names = [argument.value]
            elif isinstance(argument, ast.JoinedStr):
                names = [_pattern(argument)]
            elif isinstance(argument, ast.Name):
                enclosing = [f for f in functions if f.lineno <= node.lineno <= (f.end_lineno or 0)]
                names = _unpacked(enclosing[-1], argument.id, tables) if enclosing else []
            else:
                names = []
            if not names:
                unknown.append(where)
            fields = {k.arg for k in node.keywords if k.arg is not None} - COLUMNS
            for name in names:
                events[name] |= fields
    assert not unknown, "audit event names this test cannot read: " + ", ".join(unknown)
    return events


_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|[^|]*\|([^|]*)\|\s*$")


def documented_events() -> dict[str, set[str]]:
    documented: dict[str, set[str]] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = _ROW.match(line)
        if match:
            name, fields = match.groups()
            assert name not in documented, f"{name} is listed twice"
            documented[name] = set(re.findall(r"`([^`]+)`", fields))
    return documented


def test_the_code_records_some_events() -> None:
    events = recorded_events()
    assert {"token.issued", "session.logout_delivered", "mfa.push_{outcome}"} <= set(events)


def test_every_recorded_event_is_documented_and_nothing_else() -> None:
    recorded, documented = set(recorded_events()), set(documented_events())
    assert not recorded - documented, f"not documented: {sorted(recorded - documented)}"
    assert not documented - recorded, f"never recorded: {sorted(documented - recorded)}"


def test_every_field_passed_is_documented() -> None:
    documented = documented_events()
    missing = {
        name: sorted(fields - documented.get(name, set()))
        for name, fields in recorded_events().items()
        if fields - documented.get(name, set())
    }
    assert not missing, f"fields recorded but not documented: {missing}"
