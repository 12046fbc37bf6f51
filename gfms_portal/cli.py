"""``gfms-portal [serve] [--port 8200]`` runs the portal; ``gfms-portal verify BUNDLE`` checks
an archived bundle offline and prints OK or FAIL."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "verify":
        sys.exit(verify(args[1:]))
    if args and args[0] == "serve":
        args = args[1:]
    serve(args)


def serve(argv: list[str]) -> None:
    from werkzeug.serving import run_simple

    from gfms_portal import create_app

    parser = argparse.ArgumentParser(prog="gfms-portal", description="the GFMS portal simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8200)
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    run_simple(args.host, args.port, create_app(), threaded=True)


def verify(argv: list[str]) -> int:
    from gfms_portal.bundle import verify_bundle

    parser = argparse.ArgumentParser(
        prog="gfms-portal verify", description="check a signed document bundle offline"
    )
    parser.add_argument("bundle", type=Path)
    parser.add_argument(
        "--jwks", type=Path, required=True,
        help="the IdP's published key set (its /jwks.json), obtained from the IdP, not the bundle",
    )  # fmt: skip
    args = parser.parse_args(argv)
    jwks = json.loads(args.jwks.read_text())
    report = verify_bundle(args.bundle.read_bytes(), jwks=jwks)
    for line in report.lines:
        print(line)
    print("OK" if report.ok else "FAIL")
    return 0 if report.ok else 1
