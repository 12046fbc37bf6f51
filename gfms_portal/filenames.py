"""Attachment file names as people gave them (Thai included), and the header that hands a
file back under its name (RFC 6266 with RFC 8187's UTF-8 ``filename*``)."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

# What no file system on a clerk's desk can hold in a name: path separators, the characters
# Windows reserves, and control characters (C0, DEL, C1). Everything else, Thai vowel and tone
# marks above all, is kept.
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f-\x9f]')
# A common limit of a name's length on disk (ext4, NTFS count 255 bytes or UTF-16 units).
MAX_BYTES = 255
MAX_CHARS = 200  # the column
_ASCII_FALLBACK = re.compile(r"[^A-Za-z0-9._\- ()\[\]+,=@]")


def keep_filename(given: str) -> str:
    """The uploaded name as it was, only made storable: the last path component (browsers of
    old sent the whole path), canonical Unicode (NFC, so the same Thai name typed on two
    systems is one name), the characters above replaced, and shortened to the limits with its
    extension kept. ``attachment`` when nothing remains."""
    name = unicodedata.normalize("NFC", re.split(r"[\\/]", given)[-1])
    name = _UNSAFE.sub("_", name).strip(" .")
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension) > 16:
        stem, extension = name, ""
    suffix = f".{extension}" if extension else ""
    while stem and (len(stem) + len(suffix) > MAX_CHARS
                    or len((stem + suffix).encode()) > MAX_BYTES):  # fmt: skip
        stem = stem[:-1]
    stem = stem.rstrip(" .")
    return f"{stem}{suffix}" if stem else "attachment"


def content_disposition(filename: str, *, fallback: str) -> str:
    """``attachment`` with the name as given (RFC 6266 §4.3: ``filename*`` in UTF-8 for any
    recipient that reads it, which every current browser does) and an ASCII ``filename`` for
    any that does not: the name itself when it is plain ASCII, else ``fallback``."""
    ascii_name = filename if not _ASCII_FALLBACK.search(filename) else fallback
    # SECURITY: no quote, backslash or line break reaches the quoted string (header injection).
    ascii_name = _ASCII_FALLBACK.sub("_", ascii_name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"
