"""python -m mock_nexus [--port 8102]: run the mock Nexus relay and phones on loopback."""

from __future__ import annotations

import argparse
import logging

from werkzeug.serving import run_simple

from mock_nexus import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description="mock Nexus Smart ID relay and phones")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8102)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    run_simple(args.host, args.port, create_app(), threaded=True)


if __name__ == "__main__":
    main()
