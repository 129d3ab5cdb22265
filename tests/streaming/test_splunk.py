"""The Splunk HEC transport against a HEC receiver on a loopback port.

No Splunk can run here, so ``HecReceiver`` is a small test double of the HTTP Event Collector
that follows Splunk's documented protocol ("Format events for HTTP Event Collector" and the
HEC status codes of "Troubleshoot HTTP Event Collector"): ``POST /services/collector/event``,
``Authorization: Splunk <token>`` (401 ``Token is required`` code 2 without one, 401
``Invalid authorization`` code 3 when malformed, 403 ``Invalid token`` code 4 for a wrong one),
a body of concatenated JSON event objects, each with an ``event`` (400 code 12/13 otherwise) and
``fields`` of strings or arrays of strings (400 code 15 otherwise), and
``{"text": "Success", "code": 0}`` when they are taken. It can be told to be busy (503
``Server is busy`` code 9) or to answer anything else.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest

from dstrail.domain.streams import (
    Destination,
    StreamFilter,
    StreamFormat,
    StreamKind,
    StreamRecord,
)
from dstrail.streaming.transports import DeliveryError
from dstrail.streaming.transports import open_transport as open_any
from dstrail.streaming.transports.splunk import collector_url, open_transport

TOKEN = "8b1c4e2a-5d6f-4a7b-9c0d-1e2f3a4b5c6d"  # a HEC token is a GUID


def parse_events(body: str) -> list[Any]:
    """The concatenated JSON objects of a HEC body (whitespace between them allowed)."""
    decoder = json.JSONDecoder()
    events: list[Any] = []
    at = 0
    while True:
        while at < len(body) and body[at].isspace():
            at += 1
        if at == len(body):
            return events
        event, at = decoder.raw_decode(body, at)
        events.append(event)


@dataclass
class HecReceiver:
    """What the collector took, and how it answers."""

    token: str = TOKEN
    events: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    busy: bool = False
    answer: tuple[int, dict[str, Any]] | None = None
    """Given: every request gets this status and body."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def handle(self, path: str, authorization: str | None, body: str) -> tuple[int, dict[str, Any]]:
        """Splunk's answer to one request; keeps its events when they are taken."""
        with self.lock:
            self.requests += 1
        if path != "/services/collector/event":
            return 404, {"text": "The requested URL was not found on this server.", "code": 404}
        if authorization is None:
            return 401, {"text": "Token is required", "code": 2}
        scheme, _, token = authorization.partition(" ")
        if scheme != "Splunk" or not token:
            return 401, {"text": "Invalid authorization", "code": 3}
        if token != self.token:
            return 403, {"text": "Invalid token", "code": 4}
        if self.answer is not None:
            return self.answer
        if self.busy:
            return 503, {"text": "Server is busy", "code": 9}
        if not body.strip():
            return 400, {"text": "No data", "code": 5}
        try:
            events = parse_events(body)
        except json.JSONDecodeError:
            return 400, {"text": "Invalid data format", "code": 6}
        for number, event in enumerate(events):
            problem = _problem(event)
            if problem is not None:
                return 400, {**problem, "invalid-event-number": number}
        with self.lock:
            self.events.extend(events)
        return 200, {"text": "Success", "code": 0}

    def start(self) -> HecReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"] or 0)).decode()
                status, answer = receiver.handle(self.path, self.headers.get("authorization"), body)
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json; charset=UTF-8")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                # HEC's documented health check: 200 {"text":"HEC is healthy","code":17}
                healthy = self.path == "/services/collector/health"
                answer = {"text": "HEC is healthy", "code": 17} if healthy else {}
                payload = json.dumps(answer).encode()
                self.send_response(200 if healthy else 404)
                self.send_header("content-type", "application/json; charset=UTF-8")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def _problem(event: Any) -> dict[str, Any] | None:
    if not isinstance(event, dict) or "event" not in event:
        return {"text": "Event field is required", "code": 12}
    if event["event"] in ("", None):
        return {"text": "Event field cannot be blank", "code": 13}
    fields = event.get("fields", {})
    if not isinstance(fields, dict) or not all(
        isinstance(value, str)
        or (isinstance(value, list) and all(isinstance(item, str) for item in value))
        for value in fields.values()
    ):
        return {"text": "Error in handling indexed fields", "code": 15}
    if not isinstance(event.get("time", 0), int | float | str):
        return {"text": "Invalid data format", "code": 6}
    return None


@pytest.fixture
def receiver() -> Iterator[HecReceiver]:
    started = HecReceiver().start()
    yield started
    started.stop()


def destination(url: str, fmt: StreamFormat = StreamFormat.NATIVE, **config: str) -> Destination:
    return Destination(
        id="6b0792c3673c327b643884fa",
        name="splunk",
        kind=StreamKind.SPLUNK_HEC,
        format=fmt,
        config={"url": url, **config},
        filter=StreamFilter(),
        paused=False,
        cursor=0,
        generation=0,
        created_at_ms=0,
        created_by="0" * 24,
        has_secret=True,
    )


def records(*seqs: int) -> list[StreamRecord]:
    return [
        StreamRecord(
            seq=seq,
            event_id=f"{seq:064x}",
            timestamp_ms=1_692_826_821_000 + seq * 111,
            body=orjson.dumps({"eventKind": "AccessDataSource", "seq": seq, "note": "é\n"}),
        )
        for seq in seqs
    ]


def send(target: Destination, batch: Sequence[StreamRecord], token: str | None = TOKEN) -> None:
    async def scenario() -> None:
        transport = open_transport(target, token)
        try:
            await transport.send(batch)
        finally:
            await transport.close()

    asyncio.run(scenario())


def test_a_batch_arrives_as_hec_events_in_order(receiver: HecReceiver) -> None:
    batch = records(41, 42, 43)
    send(destination(receiver.url, index="audit"), batch)
    assert receiver.requests == 1
    assert receiver.events == [
        {
            "time": (1_692_826_821_000 + seq * 111) / 1000,
            "host": socket.gethostname(),
            "source": "dstrail",
            "sourcetype": "dstrail:audit",
            "index": "audit",
            "event": {"eventKind": "AccessDataSource", "seq": seq, "note": "é\n"},
            "fields": {"seq": str(seq), "eventId": f"{seq:064x}"},
        }
        for seq in (41, 42, 43)
    ]
    assert [event["time"] for event in receiver.events] == [
        1692826825.551, 1692826825.662, 1692826825.773,
    ]  # fmt: skip


def test_the_body_is_one_event_object_a_line_with_the_time_in_seconds(
    receiver: HecReceiver,
) -> None:
    target = destination(receiver.url, host="dstrail-1", source="trail", sourcetype="_json")
    transport = open_transport(target, TOKEN)
    lines = transport.body(records(1, 2)).decode().splitlines()
    asyncio.run(transport.close())
    assert lines == [
        '{"time":1692826821.111,"host":"dstrail-1","source":"trail","sourcetype":"_json",'
        '"event":{"eventKind":"AccessDataSource","seq":1,"note":"é\\n"},'
        '"fields":{"seq":"1","eventId":"' + f"{1:064x}" + '"}}',
        '{"time":1692826821.222,"host":"dstrail-1","source":"trail","sourcetype":"_json",'
        '"event":{"eventKind":"AccessDataSource","seq":2,"note":"é\\n"},'
        '"fields":{"seq":"2","eventId":"' + f"{2:064x}" + '"}}',
    ]
    send(target, records(1, 2))
    assert [event["host"] for event in receiver.events] == ["dstrail-1", "dstrail-1"]
    assert "index" not in receiver.events[0]  # the token's default index


def test_a_text_record_is_sent_as_its_text(receiver: HecReceiver) -> None:
    line = "CEF:0|dstrail|dstrail|0.1.0|AccessDataSource|Access|3|suser=alice"
    record = StreamRecord(seq=5, event_id="e5", timestamp_ms=1_000, body=line.encode())
    send(destination(receiver.url, StreamFormat.CEF), [record])
    assert [event["event"] for event in receiver.events] == [line]
    assert receiver.events[0]["time"] == 1.0


def test_the_transport_is_found_by_its_kind(receiver: HecReceiver) -> None:
    async def scenario() -> None:
        transport = open_any(destination(receiver.url + "/"), TOKEN)
        await transport.send(records(9))
        await transport.close()

    asyncio.run(scenario())
    assert [event["fields"]["seq"] for event in receiver.events] == ["9"]


def test_a_wrong_token_is_a_delivery_error_naming_the_status_not_the_token(
    receiver: HecReceiver,
) -> None:
    wrong = "0f0e0d0c-0b0a-4908-8706-050403020100"
    with pytest.raises(DeliveryError) as raised:
        send(destination(receiver.url), records(1), token=wrong)
    message = str(raised.value)
    assert "403" in message and "Invalid token" in message and "code 4" in message
    assert wrong not in message and TOKEN not in message
    assert receiver.events == []


def test_a_busy_collector_is_a_delivery_error(receiver: HecReceiver) -> None:
    receiver.busy = True
    with pytest.raises(DeliveryError, match=r"answered 503: Server is busy \(code 9\)"):
        send(destination(receiver.url), records(1, 2))
    assert receiver.events == []
    receiver.busy = False
    send(destination(receiver.url), records(1, 2))  # sent again, it arrives
    assert [event["fields"]["seq"] for event in receiver.events] == ["1", "2"]


@pytest.mark.parametrize(
    ("status", "answer", "expected"),
    [
        (200, {"text": "Incorrect index", "code": 7}, "answered 200: Incorrect index (code 7)"),
        (400, {"text": "Invalid data format", "code": 6}, "answered 400: Invalid data format"),
        (500, {"text": "Internal server error", "code": 8}, "answered 500: Internal server"),
    ],
)
def test_any_other_status_or_code_is_a_delivery_error(
    receiver: HecReceiver, status: int, answer: dict[str, Any], expected: str
) -> None:
    receiver.answer = (status, answer)
    with pytest.raises(DeliveryError) as raised:
        send(destination(receiver.url), records(1))
    assert expected in str(raised.value)
    assert TOKEN not in str(raised.value)


def test_an_unreachable_collector_is_a_delivery_error() -> None:
    with socket.socket() as probe:  # a free port, closed again: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DeliveryError, match=r"ConnectError") as raised:
        send(destination(f"http://127.0.0.1:{port}"), records(1))
    assert TOKEN not in str(raised.value)


def test_a_destination_without_a_usable_token_does_not_open() -> None:
    with pytest.raises(DeliveryError, match="no HEC token"):
        open_transport(destination("http://127.0.0.1:1"), None)
    with pytest.raises(DeliveryError, match="control characters") as raised:
        open_transport(destination("http://127.0.0.1:1"), "abc\r\nX-Injected: 1")
    assert "abc" not in str(raised.value)


def test_the_collector_url_is_the_event_endpoint_of_the_base() -> None:
    assert collector_url("https://splunk:8088") == "https://splunk:8088/services/collector/event"
    assert collector_url("https://splunk:8088/") == "https://splunk:8088/services/collector/event"
    assert (
        collector_url("https://hec.example/services/collector/event")
        == "https://hec.example/services/collector/event"
    )
