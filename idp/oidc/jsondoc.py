"""Documents served as-is on hot paths: serialised once, with a strong ETag."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def serialise(document: Any) -> tuple[bytes, str]:
    body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
