"""Every package the code imports is declared, and requirements.lock pins every declared one.

An import that works only because another package happens to pull it in breaks the day that
package stops doing so; a dependency added to pyproject.toml and not to the lock is not
installed by ``make install`` (``pip install --require-hashes -r requirements.lock``).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
OURS = {"idp", "gfms_portal", "mock_nexus", "mock_paotang", "thai_format", "tests", "bench"}
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
RUNTIME = [Requirement(line) for line in PROJECT["dependencies"]]
TEST = [Requirement(line) for line in PROJECT["optional-dependencies"]["test"]]


def imported(folders: list[str]) -> dict[str, str]:
    """Top-level modules imported (absolutely) under ``folders``: module -> first file."""
    found: dict[str, str] = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return {
        module: where
        for module, where in found.items()
        if module not in sys.stdlib_module_names
        and module not in OURS | {"__future__"}
        # bench/ runs its own scripts as modules from its folder.
        and not (ROOT / "bench" / f"{module}.py").exists()
    }


def undeclared(folders: list[str], declared: list[Requirement]) -> list[str]:
    names = {canonicalize_name(requirement.name) for requirement in declared}
    distributions = packages_distributions()
    return [
        f"{module} ({where})"
        for module, where in sorted(imported(folders).items())
        if not {canonicalize_name(d) for d in distributions.get(module, [module])} & names
    ]


def test_every_import_of_the_code_is_a_declared_dependency() -> None:
    folders = ["idp", "gfms_portal", "mock_nexus", "mock_paotang", "thai_format"]
    missing = undeclared(folders, RUNTIME)
    assert not missing, "declare in pyproject.toml's dependencies: " + ", ".join(missing)


def test_every_import_of_the_tests_is_declared() -> None:
    missing = undeclared(["tests", "bench"], RUNTIME + TEST)
    assert not missing, "declare in pyproject.toml (test extra): " + ", ".join(missing)


def test_the_lock_pins_every_declared_dependency_with_hashes() -> None:
    text = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    pinned = {
        canonicalize_name(name): version
        for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", text, re.MULTILINE)
    }
    assert len(pinned) == len(re.findall(r"^\S+==\S+ \\\n\s+--hash=sha256:", text, re.MULTILINE))
    wrong = [
        str(requirement)
        for requirement in RUNTIME + TEST
        if pinned.get(canonicalize_name(requirement.name)) is None
        or not requirement.specifier.contains(pinned[canonicalize_name(requirement.name)])
    ]
    assert not wrong, "run `make lock`: requirements.lock does not satisfy " + ", ".join(wrong)
