"""``nats``: each record published to a NATS JetStream subject, and acknowledged by the stream
that stores it.

Config: ``url`` (``nats://host:port``, or ``tls://host:port`` for TLS) and ``subject``. The
secret, when set, is a NATS ``token``. A JetStream stream must cover the subject, e.g.
``nats stream add dstrail --subjects audit.trail --dupe-window 2m``.

Each record carries two headers: ``Nats-Msg-Id`` (its event id), so the stream drops a record
sent again within its duplicate window, and ``Dstrail-Seq`` (its ``seq``), for receivers that
keep their own order or drop duplicates beyond that window.

A batch is pipelined: every record is published on the one connection (so the server gets
them in order) with a reply subject of its own, and ``send`` returns only once the stream has
acknowledged each one (a PubAck: stored). A refusal, a missing acknowledgement or a lost
connection is a ``DeliveryError`` and the worker sends the whole batch again; the records the
stream already has are dropped as duplicates. (``JetStreamContext.publish_async`` does the same
but, in nats-py 2.16, never completes a publish the stream refuses, so refusals would look
like timeouts; hence the few lines here on core NATS.)

The connection is made on the first send, and made again on the send after it is lost: a
batch in flight then fails at once (its answers cannot come) and the worker's backoff paces
the attempts. nats-py's own reconnecting is off, so that a send never waits on its retries
(a connect is two attempts of at most ``connect_timeout`` seconds each) and never buffers
records for a server that may not come back.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import AuthorizationError, MaxPayloadError
from nats.errors import Error as NatsError

from dstrail.domain.streams import Destination, StreamRecord
from dstrail.streaming.transports import DeliveryError

logger = logging.getLogger("dstrail.streaming.nats")

_SUBJECT = re.compile(r"^[^\s.*>]+(\.[^\s.*>]+)*$")
_STATUS_HEADER = "Status"
_NO_RESPONDERS = "503"
"""The status the server answers with when nothing listens on the subject: no stream."""

_Failure = (NatsError, OSError, asyncio.TimeoutError)


@dataclass(frozen=True, slots=True)
class _Ack:
    """The stream's answer to one publish: stored (``error`` empty) or refused."""

    error: str = ""
    no_stream: bool = False
    lost: bool = False
    """The connection closed before the answer came."""


class _Acks:
    """A connection's pending publishes, each waiting for the answer on its reply subject."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._prefix = client.new_inbox()
        self._numbers = itertools.count()
        self._waiting: dict[str, asyncio.Future[_Ack]] = {}
        self._subscription: Subscription | None = None

    async def start(self) -> None:
        """Listen on the reply subjects."""
        self._subscription = await self._client.subscribe(f"{self._prefix}.*", cb=self._answer)

    def expect(self) -> tuple[str, asyncio.Future[_Ack]]:
        """A new reply subject, and the future its answer completes."""
        reply = f"{self._prefix}.{next(self._numbers)}"
        future: asyncio.Future[_Ack] = asyncio.get_running_loop().create_future()
        self._waiting[reply] = future
        return reply, future

    async def lost(self) -> None:
        """The connection closed: no answer will come (``closed_cb``)."""
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_result(_Ack(error="connection closed", lost=True))

    def forget(self, futures: Sequence[asyncio.Future[_Ack]]) -> None:
        """Stop waiting for these (answered or not)."""
        for future in futures:
            future.cancel()
        self._waiting = {reply: f for reply, f in self._waiting.items() if not f.done()}

    async def _answer(self, msg: Msg) -> None:
        future = self._waiting.pop(msg.subject, None)
        if future is None or future.done():
            return
        if msg.headers and msg.headers.get(_STATUS_HEADER) == _NO_RESPONDERS:
            future.set_result(_Ack(error="no responders", no_stream=True))
            return
        try:
            answer = orjson.loads(msg.data)
        except orjson.JSONDecodeError:
            future.set_result(_Ack(error=f"unexpected answer {msg.data[:100]!r}"))
            return
        error = answer.get("error") if isinstance(answer, dict) else None
        if isinstance(error, dict):
            description = error.get("description", "refused")
            future.set_result(_Ack(error=f"{description} (error {error.get('err_code')})"))
        elif not isinstance(answer, dict) or "stream" not in answer:
            future.set_result(_Ack(error=f"unexpected answer {msg.data[:100]!r}"))
        else:
            future.set_result(_Ack())


class NatsTransport:
    """Publishes batches to one JetStream subject over one lazily made connection."""

    def __init__(
        self,
        *,
        url: str,
        subject: str,
        token: str | None,
        connect_timeout: int = 5,
        ack_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.subject = subject
        self._token = token
        self._connect_timeout = connect_timeout
        self._ack_timeout = ack_timeout
        self._client: Client | None = None
        self._acks: _Acks | None = None
        self._last_error = ""

    async def send(self, records: Sequence[StreamRecord]) -> None:
        """Publish ``records`` in order; return once the stream has stored every one."""
        if not records:
            return
        client, acks = await self._connection()
        futures: list[asyncio.Future[_Ack]] = []
        try:
            for record in records:
                reply, future = acks.expect()
                futures.append(future)
                headers = {"Nats-Msg-Id": record.event_id, "Dstrail-Seq": str(record.seq)}
                await client.publish(self.subject, record.body, reply=reply, headers=headers)
            await asyncio.wait(futures, timeout=self._ack_timeout)
        except MaxPayloadError:
            record = records[len(futures) - 1]
            raise DeliveryError(
                f"record seq {record.seq} ({len(record.body)} bytes) is larger than the "
                f"max_payload of the NATS server at {self.url}"
            ) from None
        except _Failure as error:
            await self._drop()
            raise DeliveryError(
                f"lost the connection to NATS at {self.url} while publishing to "
                f"{self.subject}: {self._describe(error)}"
            ) from None
        finally:
            acks.forget(futures)
        for record, future in zip(records, futures, strict=True):
            ack = _Ack(error="no answer", lost=True) if future.cancelled() else future.result()
            if ack.error:
                if ack.lost:
                    await self._drop()  # answers went missing: connect afresh next time
                raise DeliveryError(self._failure(record, ack, answered=not future.cancelled()))

    def _failure(self, record: StreamRecord, ack: _Ack, *, answered: bool) -> str:
        """Why ``record`` (the first one not stored) was not."""
        if not answered:
            return (
                f"JetStream at {self.url} did not acknowledge record seq {record.seq} on "
                f"subject {self.subject} within {self._ack_timeout:g}s"
            )
        if ack.lost:
            return (
                f"lost the connection to NATS at {self.url} before record seq {record.seq} "
                f"on subject {self.subject} was acknowledged"
                + (f": {self._last_error}" if self._last_error else "")
            )
        if ack.no_stream:
            return (
                f"no JetStream stream covers subject {self.subject} at {self.url}; "
                f"create one, e.g. `nats stream add --subjects {self.subject}`"
            )
        return (
            f"JetStream at {self.url} refused record seq {record.seq} on subject "
            f"{self.subject}: {self._scrub(ack.error)}"
        )

    async def close(self) -> None:
        """Drain (publishes flushed, subscriptions ended) and close the connection."""
        client, self._client, self._acks = self._client, None, None
        if client is None or client.is_closed:
            return
        try:
            if client.is_connected:
                await client.drain()
        except _Failure as error:
            logger.info("NATS at %s: draining failed: %s", self.url, self._describe(error))
        finally:
            await client.close()

    # -- the connection --------------------------------------------------------------------

    async def check(self) -> None:
        """Connect, and find the JetStream stream that covers the subject: ``DeliveryError``
        when either fails."""
        client, _acks = await self._connection()
        try:
            await client.jetstream().find_stream_name_by_subject(self.subject)
        except Exception:
            raise DeliveryError(
                f"no JetStream stream covers subject {self.subject} at {self.url}; create one, "
                f"e.g. `nats stream add --subjects {self.subject}`"
            ) from None

    async def _connection(self) -> tuple[Client, _Acks]:
        """The connected client; a new one when there is none or it was lost."""
        client, acks = self._client, self._acks
        if client is not None and acks is not None and client.is_connected:
            return client, acks
        await self._drop()
        client = Client()
        acks = _Acks(client)
        try:
            await client.connect(
                servers=[self.url],
                token=self._token,
                name="dstrail",
                connect_timeout=self._connect_timeout,
                allow_reconnect=False,
                # nats-py tries a server max_reconnect_attempts + 1 times even when connecting
                # first (0 would be: forever); two attempts, the second at once.
                max_reconnect_attempts=1,
                reconnect_time_wait=0,
                drain_timeout=self._connect_timeout,
                error_cb=self._on_error,
                closed_cb=acks.lost,
            )
            await acks.start()
        except _Failure as error:
            with contextlib.suppress(*_Failure):
                await client.close()
            raise DeliveryError(
                f"cannot connect to NATS at {self.url}: {self._last_error or self._describe(error)}"
            ) from None
        self._client, self._acks, self._last_error = client, acks, ""
        return client, acks

    async def _drop(self) -> None:
        client, self._client, self._acks = self._client, None, None
        if client is not None:
            with contextlib.suppress(*_Failure):
                await client.close()

    async def _on_error(self, error: Exception) -> None:
        self._last_error = self._describe(error)
        logger.info("NATS at %s: %s", self.url, self._last_error)

    def _describe(self, error: BaseException) -> str:
        text = str(error).removeprefix("nats: ").strip("'") or type(error).__name__
        if isinstance(error, AuthorizationError) or "authorization violation" in text.lower():
            needs = "refused the token" if self._token else "needs a token"
            return f"authorization violation: the server {needs} (the destination's secret)"
        if isinstance(error, asyncio.TimeoutError) and not str(error):
            text = "timed out"
        return self._scrub(text)

    def _scrub(self, text: str) -> str:
        """``text`` without the token, should a library or server ever echo it."""
        return text.replace(self._token, "***") if self._token else text


def open_transport(destination: Destination, secret: str | None) -> NatsTransport:
    """The JetStream transport of ``destination`` (``url``, ``subject``; ``secret``: a
    token); ``DeliveryError`` naming the field when its config cannot work."""
    url = destination.config.get("url", "")
    subject = destination.config.get("subject", "")
    if not url.startswith(("nats://", "tls://")):
        raise DeliveryError(f"config.url: {url!r} must be a nats:// or tls:// URL")
    if not _SUBJECT.match(subject):
        raise DeliveryError(
            f"config.subject: {subject!r} must be a NATS subject to publish to: "
            "dot-separated tokens, no spaces or wildcards (* >)"
        )
    return NatsTransport(url=url, subject=subject, token=secret or None)
