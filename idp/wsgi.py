"""The WSGI entry point for production servers (``idp serve``)."""

import gc

from idp import create_app

app = create_app()

# What the application built at start-up (modules, routes, templates, the ORM's mappings)
# lives as long as the process: out of the collector's way, the full collections a busy
# worker runs every few hundred requests no longer walk it (about 1.3 ms of CPU per password
# login, bench/README.md).
gc.freeze()
