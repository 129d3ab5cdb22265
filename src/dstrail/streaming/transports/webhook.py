"""HTTPS webhooks signed per Standard Webhooks (standardwebhooks.com): a batch per request.

Each request carries ``webhook-id`` (the batch's id: the destination and its first and last
``seq``, the same when a batch is sent again), ``webhook-timestamp`` (epoch seconds) and
``webhook-signature`` (``v1,`` and the base64 HMAC-SHA256, keyed with the ``whsec_`` secret's
bytes, of ``{id}.{timestamp}.{body}``). The body is a JSON array of the batch's records
(``config.body`` ``json``, the default) or one record a line (``ndjson``); records of a text
format (CEF) are JSON strings in an array. A 2xx answer means delivered; anything else, a
timeout or a refused connection raises ``DeliveryError`` and the batch is sent again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Sequence

import httpx
import orjson

from dstrail.domain.streams import Destination, StreamFormat, StreamRecord
from dstrail.streaming.transports import DeliveryError

TIMEOUT_S = 10.0
SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value (one ``v1`` signature)."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def batch_body(records: Sequence[StreamRecord], *, ndjson: bool, json_records: bool) -> bytes:
    """The request body of a batch."""
    if ndjson:
        lines = (r.body if json_records else orjson.dumps(r.body.decode()) for r in records)
        return b"".join(line + b"\n" for line in lines)
    if json_records:
        return orjson.dumps([orjson.Fragment(r.body) for r in records])
    return orjson.dumps([r.body.decode() for r in records])


class WebhookTransport:
    """POSTs signed batches to one URL."""

    def __init__(self, destination: Destination, secret: str) -> None:
        self._id = destination.id
        self._url = destination.config["url"]
        self._ndjson = destination.config.get("body", "json") == "ndjson"
        self._json_records = destination.format is not StreamFormat.CEF
        self._secret = secret
        self._client = httpx.AsyncClient(timeout=TIMEOUT_S)

    async def send(self, records: Sequence[StreamRecord]) -> None:
        """POST the batch; returns on a 2xx answer."""
        body = batch_body(records, ndjson=self._ndjson, json_records=self._json_records)
        await self._post(body, f"msg_{self._id}_{records[0].seq}_{records[-1].seq}")

    async def _post(self, body: bytes, message_id: str) -> None:
        timestamp = int(time.time())
        headers = {
            "content-type": "application/x-ndjson" if self._ndjson else "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(self._secret, message_id, timestamp, body),
        }
        try:
            response = await self._client.post(self._url, content=body, headers=headers)
        except httpx.HTTPError as error:
            raise DeliveryError(f"POST {self._url}: {type(error).__name__}: {error}") from None
        if not 200 <= response.status_code < 300:
            raise DeliveryError(
                f"POST {self._url} answered {response.status_code}: {response.text[:200]}"
            )

    async def check(self) -> None:
        """A signed empty batch is answered 2xx: ``DeliveryError`` else."""
        await self._post(b"" if self._ndjson else b"[]", f"msg_{self._id}_check")

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()


def open_transport(destination: Destination, secret: str | None) -> WebhookTransport:
    """A webhook transport; every webhook destination has a signing secret."""
    if not secret:
        raise DeliveryError("the webhook has no signing secret; rotate one in")
    return WebhookTransport(destination, secret)
