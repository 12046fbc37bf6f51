"""The root of every domain error.

Domain errors carry a stable snake_case ``code`` and a message safe to show; they know nothing
of HTTP. The web layer maps each class to a status, a page or an OAuth error.
"""

from __future__ import annotations


class IdpError(Exception):
    code = "idp_error"
    message = "The request could not be completed."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message
