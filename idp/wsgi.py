"""The WSGI entry point for production servers (``idp serve``)."""

from idp import create_app

app = create_app()
