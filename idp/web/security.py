"""Security headers on every answer (OWASP Secure Headers)."""

from __future__ import annotations

from flask import Flask
from flask import Response

_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def csp_connecting_to(origin: str) -> str:
    """The pages' policy, letting scripts also reach ``origin`` (the confirmation page's
    script asks the waiter)."""
    return _CSP.replace("connect-src 'self'", f"connect-src 'self' {origin}")


def document_headers(mimetype: str, *, production: bool) -> list[tuple[str, str]]:
    """The security headers an answer of this type carries, in the order they are added."""
    headers = [("X-Content-Type-Options", "nosniff")]
    if mimetype == "text/html":
        # Document headers for documents only: JSON answers (the hot paths) skip them.
        headers += [
            ("Content-Security-Policy", _CSP),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "no-referrer"),
            ("Cross-Origin-Opener-Policy", "same-origin"),
            # Pages carry CSRF tokens and personal data: never stored by a shared cache.
            ("Cache-Control", "no-store"),
        ]
    if production:
        headers.append(("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))
    return headers


def init_app(app: Flask, *, production: bool) -> None:
    @app.after_request
    def _headers(response: Response) -> Response:
        for name, value in document_headers(response.mimetype or "", production=production):
            response.headers.setdefault(name, value)
        return response
