"""A webhook receiver for the tests: a real HTTP server on a loopback port that checks every
request's Standard Webhooks signature with the `standardwebhooks` package (not with dstrail's
code) and keeps the batches. No SIEM runs here, so this small double follows the published
specification (standardwebhooks.com) in its place; it can be told to fail (answer 500) or to
stall (answer after a delay)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook


@dataclass
class WebhookReceiver:
    """What the receiver got and how it answers."""

    secret: str
    batches: list[list[dict[str, Any]]] = field(default_factory=list)
    message_ids: list[str] = field(default_factory=list)
    failing: bool = False
    stall_seconds: float = 0.0
    rejected: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    """The most requests it was answering at once (two senders of one destination overlap)."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def records(self) -> list[dict[str, Any]]:
        """Every record received, in arrival order."""
        with self.lock:
            return [record for batch in self.batches for record in batch]

    def wait_for(self, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        """The records once at least ``count`` have arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.records()
            if len(got) >= count:
                return got
            time.sleep(0.02)
        raise AssertionError(f"{len(self.records())} records arrived, {count} expected")

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                with receiver.lock:
                    receiver.in_flight += 1
                    receiver.max_in_flight = max(receiver.max_in_flight, receiver.in_flight)
                try:
                    self._take()
                finally:
                    with receiver.lock:
                        receiver.in_flight -= 1

            def _take(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if receiver.stall_seconds:
                    time.sleep(receiver.stall_seconds)
                if receiver.failing:
                    self._answer(500)
                    return
                headers = {key.lower(): value for key, value in self.headers.items()}
                try:
                    Webhook(receiver.secret).verify(body, headers)
                except Exception:
                    with receiver.lock:
                        receiver.rejected += 1
                    self._answer(401)
                    return
                if headers["content-type"] == "application/x-ndjson":
                    batch = [json.loads(line) for line in body.decode().splitlines()]
                else:
                    batch = json.loads(body)
                with receiver.lock:
                    receiver.batches.append(batch)
                    receiver.message_ids.append(headers["webhook-id"])
                self._answer(204)

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
