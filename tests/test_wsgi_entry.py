"""The production entry point (``idp.wsgi:app``, what ``idp serve`` gives granian)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_startup_objects_are_frozen_out_of_the_collector(tmp_path: Path) -> None:
    # Full collections in a busy worker would otherwise walk every module, route and
    # mapping built at start-up, again and again (bench/README.md: the password login).
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env["IDP_DATABASE_URL"] = f"sqlite:///{tmp_path / 'idp.sqlite3'}"
    run = {"env": env, "cwd": tmp_path, "capture_output": True, "text": True, "timeout": 120}
    upgrade = subprocess.run([sys.executable, "-m", "idp.cli", "db", "upgrade"], **run)  # type: ignore[call-overload]
    assert upgrade.returncode == 0, upgrade.stderr
    code = "import gc, idp.wsgi; print(gc.get_freeze_count())"
    done = subprocess.run([sys.executable, "-c", code], **run)  # type: ignore[call-overload]
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) > 10_000
