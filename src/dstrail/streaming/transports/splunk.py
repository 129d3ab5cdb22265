"""Splunk HTTP Event Collector (HEC): a batch per request to ``<url>/services/collector/event``.

The request carries ``Authorization: Splunk <token>`` (the destination's secret) and, one after
the other, a HEC event object per record, as Splunk's batch format has them::

    {"time": 1692826821.669, "host": "...", "source": "dstrail", "sourcetype": "dstrail:audit",
     "index": "...", "event": {...the record...}, "fields": {"seq": "42", "eventId": "..."}}

``time`` is the event's time in epoch seconds (milliseconds as the fraction); ``event`` is the
record itself, a JSON object (``native``, ``ocsf``) or the text of a CEF line; ``fields`` are
indexed fields (strings, as HEC takes them) for searching by ``seq`` and dropping duplicates by
``eventId``. ``index`` is sent only when configured (else the token's default index); ``host``
defaults to this machine's name. Splunk answers ``{"text": "Success", "code": 0}``; any other
status or code, a timeout or a refused connection raises ``DeliveryError`` with the status and
Splunk's ``text``, and the batch is sent again.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

import httpx
import orjson

from dstrail.domain.streams import Destination, StreamFormat, StreamRecord
from dstrail.streaming.transports import DeliveryError

TIMEOUT_S = 10.0
COLLECTOR_PATH = "/services/collector/event"
DEFAULT_SOURCE = "dstrail"
DEFAULT_SOURCETYPE = "dstrail:audit"
MAX_ERROR_TEXT = 200


def collector_url(url: str) -> str:
    """The event endpoint of a HEC base URL (a URL that already names it is kept)."""
    base = url.rstrip("/")
    return base if base.endswith(COLLECTOR_PATH) else base + COLLECTOR_PATH


def hec_event(
    record: StreamRecord, envelope: dict[str, str], *, json_record: bool
) -> dict[str, Any]:
    """The HEC event object of one record; ``envelope``: ``host``, ``source``..."""
    return {
        "time": record.timestamp_ms / 1000,
        **envelope,
        "event": orjson.Fragment(record.body) if json_record else record.body.decode(),
        "fields": {"seq": str(record.seq), "eventId": record.event_id},
    }


class SplunkHecTransport:
    """POSTs batches of HEC events to one collector."""

    def __init__(self, destination: Destination, token: str) -> None:
        config = destination.config
        self._url = collector_url(config["url"])
        self._envelope = {
            "host": config.get("host") or socket.gethostname(),
            "source": config.get("source") or DEFAULT_SOURCE,
            "sourcetype": config.get("sourcetype") or DEFAULT_SOURCETYPE,
        }
        if config.get("index"):
            self._envelope["index"] = config["index"]
        self._json_records = destination.format is not StreamFormat.CEF
        self._token = token
        self._headers = {"authorization": f"Splunk {token}", "content-type": "application/json"}
        self._client = httpx.AsyncClient(timeout=TIMEOUT_S)

    def body(self, records: Sequence[StreamRecord]) -> bytes:
        """The request body: the batch's HEC events, one a line."""
        return b"".join(
            orjson.dumps(hec_event(r, self._envelope, json_record=self._json_records)) + b"\n"
            for r in records
        )

    async def send(self, records: Sequence[StreamRecord]) -> None:
        """POST the batch; returns once Splunk answered 2xx with code 0."""
        if not records:
            return
        try:
            response = await self._client.post(
                self._url, content=self.body(records), headers=self._headers
            )
        except httpx.HTTPError as error:
            raise DeliveryError(f"POST {self._url}: {type(error).__name__}: {error}") from None
        code, text = _answer(response)
        if 200 <= response.status_code < 300 and code == 0:
            return
        text = text.replace(self._token, "[token]")[:MAX_ERROR_TEXT]
        raise DeliveryError(
            f"Splunk HEC {self._url} answered {response.status_code}: {text} (code {code})"
        )

    async def check(self) -> None:
        """The collector's health endpoint answers 200: ``DeliveryError`` else."""
        health = self._url.replace("/services/collector/event", "/services/collector/health")
        try:
            response = await self._client.get(health, headers=self._headers)
        except httpx.HTTPError as error:
            raise DeliveryError(f"GET {health}: {type(error).__name__}: {error}") from None
        if response.status_code != 200:
            raise DeliveryError(f"Splunk HEC {health} answered {response.status_code}")

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()


def _answer(response: httpx.Response) -> tuple[object, str]:
    """Splunk's ``code`` and ``text`` (the raw body as the text when it is not HEC's JSON)."""
    try:
        answer = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None, response.text
    if not isinstance(answer, dict):
        return None, response.text
    return answer.get("code"), str(answer.get("text", ""))


def open_transport(destination: Destination, secret: str | None) -> SplunkHecTransport:
    """A HEC transport; the secret is the HEC token."""
    if not destination.config.get("url"):
        raise DeliveryError("config.url: a splunk-hec destination needs the HEC base URL")
    if not secret:
        raise DeliveryError("the splunk-hec destination has no HEC token; rotate one in")
    if not secret.isprintable() or any(char.isspace() for char in secret):
        raise DeliveryError("the HEC token holds spaces or control characters; rotate it")
    return SplunkHecTransport(destination, secret)
