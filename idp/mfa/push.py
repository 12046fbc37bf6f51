"""The push relay (Nexus): the IdP hands it a challenge for a phone; the relay does the rest."""

from __future__ import annotations

from typing import Protocol

import requests

from idp.mfa.challenges import Challenge
from idp.mfa.errors import PushUnavailableError


class PushGateway(Protocol):
    def send(self, challenge: Challenge, *, push_address: str, answer_to: str) -> None:
        """Raises PushUnavailableError when the relay does not take the challenge."""
        ...


class HttpPushGateway:
    """The relay's API, authenticated with the relay's API key."""

    def __init__(self, *, relay_url: str, api_key: str, timeout: float) -> None:
        self._relay_url = relay_url
        self._api_key = api_key
        self._timeout = timeout

    def send(self, challenge: Challenge, *, push_address: str, answer_to: str) -> None:
        phone_id = push_address.removeprefix(f"{self._relay_url}/phones/")
        body = {"phone_id": phone_id, "answer_to": answer_to, **challenge.relay_view()}
        try:
            response = requests.post(
                f"{self._relay_url}/relay/challenges",
                json=body,
                headers={"Authorization": f"Bearer {self._api_key}"},
                timeout=self._timeout,
            )
        except requests.RequestException as exc:
            raise PushUnavailableError() from exc
        if response.status_code != 202:
            raise PushUnavailableError()
