"""The written order attached to a designation request: a PDF or an image, recognised by its
bytes (never by its name or the browser's word), limited in size, kept with its SHA-256."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from idp.roles.errors import OrderFileError
from idp.roles.errors import OrderTooLargeError

# The magic numbers of what a scanned or exported order may be.
_SIGNATURES = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)


@dataclass(frozen=True)
class OrderDocument:
    filename: str
    media_type: str
    content: bytes
    sha256: str

    @property
    def size(self) -> int:
        return len(self.content)


def sniff(content: bytes) -> str | None:
    for magic, media_type in _SIGNATURES:
        if content.startswith(magic):
            return media_type
    return None


def accept_order(filename: str, content: bytes, *, max_bytes: int) -> OrderDocument:
    """Raises OrderFileError, OrderTooLargeError."""
    if len(content) > max_bytes:
        raise OrderTooLargeError(f"The order file is larger than {max_bytes // 1024 // 1024} MB.")
    media_type = sniff(content)
    if not content or media_type is None:
        raise OrderFileError()
    if media_type == "application/pdf" and b"%%EOF" not in content[-2048:]:
        raise OrderFileError("The PDF file is incomplete.")
    # Only the last path segment, printable, bounded: it is shown back to people.
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable()).strip()[:200] or "order"
    return OrderDocument(
        filename=name,
        media_type=media_type,
        content=content,
        sha256=hashlib.sha256(content).hexdigest(),
    )
