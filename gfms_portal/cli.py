"""``gfms-portal [serve] [--port 8200]`` runs the portal; ``gfms-portal verify BUNDLE`` checks
an archived bundle (or a period's export) offline and prints OK or FAIL; ``gfms-portal purge``
deletes the documents whose retention period has ended."""

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
    if args and args[0] == "purge":
        sys.exit(purge(args[1:]))
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
    from gfms_portal.bundle import Report
    from gfms_portal.bundle import TrustAnchor
    from gfms_portal.bundle import load_key_history
    from gfms_portal.bundle import verify_archive
    from gfms_portal.settings import PortalSettings

    # The trust anchor: from the command line, else this portal's own settings (PORTAL_ISSUER,
    # PORTAL_CLIENT_ID); never from the file being checked.
    configured = PortalSettings()
    parser = argparse.ArgumentParser(
        prog="gfms-portal verify",
        description="check a signed document bundle, or an export of bundles, offline",
    )
    parser.add_argument("bundle", type=Path)
    parser.add_argument(
        "--jwks", type=Path, required=True,
        help="the IdP's signing-key history (its /jwks/history.json) or key set, obtained "
             "from the IdP, never from the bundle",
    )  # fmt: skip
    parser.add_argument("--issuer", default=configured.issuer, help="the IdP's issuer")
    parser.add_argument("--client-id", default=configured.client_id,
                        help="the portal's client id at the IdP")  # fmt: skip
    parser.add_argument(
        "--complete", action="store_true",
        help="fail a document that does not carry all four signatures yet (an archive of "
             "paid requests); without it, such a document is listed as on its way",
    )  # fmt: skip
    args = parser.parse_args(argv)
    try:
        keys = load_key_history(json.loads(args.jwks.read_text()))
    except (OSError, ValueError) as exc:
        report = Report()
        report.fail(f"the key history is not usable: {exc}")
    else:
        trust = TrustAnchor(issuer=args.issuer, client_id=args.client_id, keys=keys)
        print(f"trust: issuer {trust.issuer}, client {trust.client_id}, {len(keys)} key(s)")
        report = verify_archive(args.bundle.read_bytes(), trust=trust)
        if args.complete and report.unsigned:
            report.fail(f"not fully signed: {', '.join(sorted(report.unsigned))}")
    for line in report.lines:
        print(line)
    print("OK" if report.ok else "FAIL")
    return 0 if report.ok else 1


def purge(argv: list[str]) -> int:
    from datetime import UTC
    from datetime import datetime

    from gfms_portal.archive import purge_expired
    from gfms_portal.settings import PortalSettings
    from gfms_portal.store import make_engine
    from gfms_portal.store import prepare

    argparse.ArgumentParser(
        prog="gfms-portal purge",
        description="delete documents and evidence older than PORTAL_RETENTION_YEARS",
    ).parse_args(argv)
    settings = PortalSettings()
    with prepare(make_engine(settings.database_url)).begin() as db:
        gone = purge_expired(db, now=datetime.now(UTC), years=settings.retention_years)
    print(f"deleted {len(gone)} document(s) past {settings.retention_years} years: "
          + (", ".join(gone) or "none"))  # fmt: skip
    return 0
