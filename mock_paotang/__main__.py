"""python -m mock_paotang [--port 8101]: run the mock Paotang on loopback."""

from __future__ import annotations

import argparse
import logging

from werkzeug.serving import run_simple

from mock_paotang import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description="mock Paotang KYC")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    run_simple(args.host, args.port, create_app(), threaded=True)


if __name__ == "__main__":
    main()
