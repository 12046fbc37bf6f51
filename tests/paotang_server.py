"""The mock Paotang as a real HTTP server on a loopback port, for IdP tests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from mock_paotang import create_app
from mock_paotang.settings import PaotangSettings
from tests.servers import free_port
from tests.servers import serving

NAPA = {"citizen_id": "3501100456783", "laser_code": "NP4-5678901-23", "face": "match"}
SOMCHAI = {"citizen_id": "1101700230074", "laser_code": "JT1-2345678-90", "face": "match"}


@dataclass
class Paotang:
    url: str

    def knobs(self, **values: object) -> None:
        requests.post(f"{self.url}/_knobs", json=values, timeout=5).raise_for_status()

    def open_app(self, authorize_url: str) -> str:
        """Open the Paotang app page; return its transaction id."""
        page = requests.get(authorize_url, timeout=10)
        assert page.status_code == 200, page.text[:300]
        return str(re.search(r'name="tx" value="([^"]+)"', page.text).group(1))

    def send(self, tx: str, **fields: str) -> requests.Response:
        """Fill in the app page and send it (consenting unless told otherwise)."""
        data = {"tx": tx, "consent": "yes", "action": "verify", **fields}
        return requests.post(f"{self.url}/authorize/verify", data=data, allow_redirects=False,
                             timeout=10)  # fmt: skip

    def play_app(self, authorize_url: str, **fields: str) -> requests.Response:
        """Be the citizen in the Paotang app: open the page, fill it in, send it."""
        return self.send(self.open_app(authorize_url), **fields)


@contextmanager
def running_paotang(folder: Path) -> Iterator[Paotang]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = PaotangSettings(
        issuer=url, key_file=str(folder / "paotang-key.json"), test_control=True
    )
    with serving(create_app(settings), port):
        yield Paotang(url)
