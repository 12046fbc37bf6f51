"""Simulated phones running the Nexus Smart ID app: each keeps its own P-256 key and TOTP seed.

The private key is made on the phone at binding and never leaves it.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import asdict
from dataclasses import dataclass
from pathlib import Path

PHONE_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


@dataclass
class Phone:
    phone_id: str
    idp: str | None = None
    device_id: str | None = None
    private_jwk: dict[str, object] | None = None
    totp_secret: str | None = None
    bound_at: str | None = None

    @property
    def is_bound(self) -> bool:
        return self.device_id is not None


class PhoneBook:
    """Every phone this relay knows, written to disk on each change."""

    def __init__(self, path: str) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()
        self._phones: dict[str, Phone] = {}
        if self._path.exists():
            for item in json.loads(self._path.read_text()):
                phone = Phone(**item)
                self._phones[phone.phone_id] = phone

    def get(self, phone_id: str) -> Phone:
        with self._lock:
            return self._phones.get(phone_id) or Phone(phone_id=phone_id)

    def save(self, phone: Phone) -> None:
        with self._lock:
            self._phones[phone.phone_id] = phone
            self._path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self._path.with_suffix(".tmp")
            temporary.write_text(json.dumps([asdict(p) for p in self._phones.values()]))
            temporary.chmod(0o600)
            temporary.replace(self._path)
