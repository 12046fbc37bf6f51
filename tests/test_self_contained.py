"""The repository stands on its own: no file refers to documents or paths outside it.

A clone has nothing beside it, so a comment or a page citing a design document that is not in
the repository cites nothing. The CHANGELOG is history and may name what once was.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Written in pieces, so that this file does not match itself.
OUTSIDE = tuple(
    "".join(parts)
    for parts in (
        ("../", "shared"),
        ("DESIGN", ".md"),
        ("DESIGN", " §"),
        ("CONVENTIONS", ".md"),
        ("/wo", "rk/"),
    )
)
# What a checkout makes or installs, never part of the repository itself.
SKIPPED_DIRS = {".git", ".venv", "instance", "__pycache__", "build", "node_modules", ".hypothesis"}
SKIPPED_FILES = {"CHANGELOG.md"}


def repository_files() -> list[Path]:
    files = []
    for path in sorted(ROOT.rglob("*")):
        parts = path.relative_to(ROOT).parts
        # A worktree's .git is a file naming where the repository lives: skipped like the folder.
        if any(part in SKIPPED_DIRS or part.endswith((".egg-info", "_cache")) for part in parts):
            continue
        # Coverage data (make coverage) names the folder it was measured in.
        made = path.suffix == ".pyc" or path.name.startswith(".coverage")
        if path.is_file() and path.name not in SKIPPED_FILES and not made:
            files.append(path)
    return files


def test_the_walk_sees_the_repository() -> None:
    names = {str(path.relative_to(ROOT)) for path in repository_files()}
    assert {"README.md", "idp/settings.py", "docs/architecture.md", "Makefile"} <= names


def test_no_file_refers_to_anything_outside_the_repository() -> None:
    offences = []
    for path in repository_files():
        text = path.read_bytes().decode("utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            where = f"{path.relative_to(ROOT)}:{number}"
            offences += [f"{where}: {needle}" for needle in OUTSIDE if needle in line]
    assert not offences, "refers to something outside the repository:\n" + "\n".join(offences)
