"""The mock Nexus (relay and phones) as a real HTTP server, and the phone's side of a login:
read the inbox, approve with the number typed from the page, deny, scan, read the TOTP code."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from mock_nexus.phones import Phone
from mock_nexus.phones import PhoneBook


@dataclass
class Nexus:
    url: str
    state_file: Path

    def knobs(self, **values: object) -> None:
        requests.post(f"{self.url}/_knobs", json=values, timeout=5).raise_for_status()

    def inbox(self, phone: str) -> list[dict[str, Any]]:
        answer = requests.get(f"{self.url}/phones/{phone}/inbox", timeout=10)
        answer.raise_for_status()
        return list(answer.json()["challenges"])

    def wait_for_push(self, phone: str, *, seconds: float = 10) -> dict[str, Any]:
        """The newest challenge in the phone's inbox, once it has arrived."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            challenges = self.inbox(phone)
            if challenges:
                return challenges[-1]
            time.sleep(0.05)
        raise AssertionError(f"no push reached {phone}")

    def approve(self, phone: str, challenge_id: str, number: object) -> requests.Response:
        return requests.post(
            f"{self.url}/phones/{phone}/challenges/{challenge_id}/approve",
            json={"number": number},
            timeout=15,
        )

    def deny(self, phone: str, challenge_id: str, *, report: bool = False) -> requests.Response:
        return requests.post(
            f"{self.url}/phones/{phone}/challenges/{challenge_id}/deny",
            json={"report": report},
            timeout=15,
        )

    def scan(self, phone: str, code: str) -> requests.Response:
        return requests.post(f"{self.url}/phones/{phone}/scan", json={"code": code}, timeout=15)

    def totp(self, phone: str) -> str:
        answer = requests.get(f"{self.url}/phones/{phone}/totp", timeout=10)
        answer.raise_for_status()
        return str(answer.json()["code"])

    def phone(self, phone_id: str) -> Phone:
        """The phone's own state (its key): to make answers the relay would not carry."""
        return PhoneBook(str(self.state_file)).get(phone_id)


def match_number(html: str) -> int:
    found = re.search(r'id="match-number"[^>]*>\s*(\d+)\s*<', html)
    assert found, "no number on the page"
    return int(found.group(1))


def confirm_state(html: str) -> str:
    found = re.search(r'id="confirm-state" data-state="([^"]+)"', html)
    assert found, "not the confirmation page"
    return found.group(1)


def confirm_link(html: str) -> str:
    """The link the page's QR code holds (also offered as a link, for a phone's browser)."""
    found = re.search(r'href="(nexussmartid://confirm[^"]+)" id="confirm-link"', html)
    assert found, "no QR code on the page"
    return found.group(1).replace("&amp;", "&")
