"""A relying party's back-channel endpoint on a loopback port: it records what the IdP posts
(logout tokens, security events) and answers as a test scripts it."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tests.servers import free_port

# A scripted answer: a status, or a status with a JSON body.
Answer = int | tuple[int, Any]


@dataclass(frozen=True)
class Delivery:
    path: str
    content_type: str | None
    accept: str | None
    body: bytes
    status: int  # what the receiver answered
    authorization: str | None = None  # a CIBA ping's bearer client notification token

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


class ReceiverServer(http.server.ThreadingHTTPServer):
    def __init__(self, default_status: int) -> None:
        super().__init__(("127.0.0.1", free_port()), _Handler)
        self.default_status = default_status
        self.answers: list[Answer] = []
        self.deliveries: list[Delivery] = []
        self.gets = 0  # requests that only a followed redirect would make
        self._lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_port}{path}"

    def accepted(self) -> list[Delivery]:
        return [delivery for delivery in self.deliveries if delivery.accepted]

    def next_answer(self) -> tuple[int, bytes]:
        with self._lock:
            answer = self.answers.pop(0) if self.answers else self.default_status
        if isinstance(answer, int):
            return answer, b""
        status, body = answer
        return status, body if isinstance(body, bytes) else json.dumps(body).encode()


class _Handler(http.server.BaseHTTPRequestHandler):
    server: ReceiverServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        status, reply = self.server.next_answer()
        self.server.deliveries.append(
            Delivery(
                self.path, self.headers.get("Content-Type"), self.headers.get("Accept"), body,
                status, self.headers.get("Authorization"),
            )
        )  # fmt: skip
        self.send_response(status)
        if 300 <= status < 400:
            self.send_header("Location", "/login")
        if reply:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def do_GET(self) -> None:  # where a redirect would lead
        self.server.gets += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@contextmanager
def running_receiver(*, default_status: int) -> Iterator[ReceiverServer]:
    server = ReceiverServer(default_status)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
