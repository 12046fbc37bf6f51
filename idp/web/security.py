"""Security headers on every answer (OWASP Secure Headers)."""

from __future__ import annotations

from flask import Flask
from flask import Response

_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def init_app(app: Flask, *, production: bool) -> None:
    @app.after_request
    def _headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        if response.mimetype == "text/html":
            # Document headers for documents only: JSON answers (the hot paths) skip them.
            headers.setdefault("Content-Security-Policy", _CSP)
            headers.setdefault("X-Frame-Options", "DENY")
            headers.setdefault("Referrer-Policy", "no-referrer")
            headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
            # Pages carry CSRF tokens and personal data: never stored by a shared cache.
            headers.setdefault("Cache-Control", "no-store")
        if production:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response
