"""Real Chromium signing in while the page waits for the phone at the waiter: another origin,
reached without cookies under the page's CSP and the waiter's CORS, then the IdP as before."""

from __future__ import annotations

import secrets
import socket
from urllib.parse import urlencode

import pytest

from tests.factories import PASSWORD
from tests.push_stack import CALLBACK
from tests.push_stack import push_stack
from tests.rp import pkce_pair
from tests.servers import free_port
from tests.servers import running_waiter
from tests.servers import waiter_env

pytestmark = pytest.mark.browser


def _sign_in_approved_on_the_phone(page, stack, *, timeout_ms: int = 10_000) -> list[str]:
    """Sign somchai in at the demo client, approve on his phone once the page waits, and
    return every URL the page asked for on the way."""
    requests_made: list[str] = []
    page.on("request", lambda request: requests_made.append(request.url))
    back = "<p id='rp'>back</p>"
    page.route(CALLBACK + "**", lambda r: r.fulfill(body=back, content_type="text/html"))
    _verifier, challenge = pkce_pair()
    query = {
        "response_type": "code", "client_id": "demo-confidential", "redirect_uri": CALLBACK,
        "scope": "openid profile", "state": secrets.token_urlsafe(8),
        "nonce": secrets.token_urlsafe(8), "code_challenge": challenge,
        "code_challenge_method": "S256",
    }  # fmt: skip
    page.goto(f"{stack.idp}/authorize?{urlencode(query)}")
    page.fill("#username", "somchai")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    number = int(page.inner_text("#match-number"))
    pushed = stack.nexus.wait_for_push("phone-somchai")
    page.wait_for_timeout(300)  # the page's script is waiting by now
    assert stack.nexus.approve("phone-somchai", pushed["id"], number).ok
    page.wait_for_selector("#rp", timeout=timeout_ms)
    assert page.url.startswith(CALLBACK)
    assert "code=" in page.url
    return requests_made


def test_the_page_learns_the_approval_from_the_waiter(page, settings, deps, tmp_path):
    port = free_port()
    waiter_url = f"http://127.0.0.1:{port}"
    with (
        push_stack(settings, deps, tmp_path, users=("somchai",), wait_url=waiter_url) as stack,
        running_waiter(waiter_env(settings, stack.idp), port, log_dir=tmp_path),
    ):
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        requests_made = _sign_in_approved_on_the_phone(page, stack)
        assert any(url.startswith(f"{waiter_url}/wait?ticket=") for url in requests_made)
        # The IdP's own long poll was never needed, and nothing was blocked on the way.
        assert not any("/login/confirm/wait" in url for url in requests_made)
        assert not problems, problems


def test_without_the_waiter_the_page_falls_back_to_the_idp(page, settings, deps, tmp_path):
    """The waiter unreachable (down, or blocked on the way): the page asks the IdP's long
    poll and the sign-in ends as it would anyway."""
    nobody = f"http://127.0.0.1:{free_port()}"
    with push_stack(settings, deps, tmp_path, users=("somchai",), wait_url=nobody) as stack:
        requests_made = _sign_in_approved_on_the_phone(page, stack)
        assert any(url.startswith(f"{nobody}/wait?ticket=") for url in requests_made)
        assert any("/login/confirm/wait" in url for url in requests_made)


def test_a_waiter_that_never_answers_does_not_strand_the_page(page, settings, deps, tmp_path):
    """Attack: the waiter accepts connections and never answers (its descriptors exhausted by
    idle connections, a stuck process, a proxy holding requests). The page must still learn the
    phone's answer, through the IdP, instead of waiting on a request that never ends."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)  # the kernel completes the handshakes; nobody ever reads or answers
    black_hole = f"http://127.0.0.1:{silent.getsockname()[1]}"
    with (
        silent,
        push_stack(
            settings, deps, tmp_path, users=("somchai",), wait_url=black_hole, wait_hold=2.0
        ) as stack,
    ):
        requests_made = _sign_in_approved_on_the_phone(page, stack, timeout_ms=20_000)
        assert any(url.startswith(f"{black_hole}/wait?ticket=") for url in requests_made)
