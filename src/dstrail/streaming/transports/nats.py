"""``nats``: each record published to a NATS JetStream subject, and acknowledged by the stream
that stores it.

Config: ``url`` (``nats://host:port``, or ``tls://host:port`` for TLS), ``subject`` and, for
a ``tls://`` URL only, ``caFile``: a PEM file of the CAs that sign the server's certificate
(default: the system's trusted CAs). Over TLS the server's certificate and its host name (the
URL's host) are checked; a failure is a ``DeliveryError`` saying so. Client certificates are
not sent. The secret, when set, is a NATS ``token``. A JetStream stream must cover the subject,
e.g. ``nats stream add dstrail --subjects audit.trail --dupe-window 2m``.

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
import ssl
from collections.abc import Callable, Sequence
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
_CLOSE_FAILED_S = 0.5
"""How long closing a client whose connect failed may take. After a failed TLS handshake
nats-py's ``close`` waits for the plain stream the handshake took the socket from, which never
closes (asyncio closed the socket itself): without a bound, a send would hang there."""


@dataclass(frozen=True, slots=True)
class _Ack:
    """The stream's answer to one publish: stored (``error`` empty) or refused."""

    error: str = ""
    no_stream: bool = False
    lost: bool = False
    """The connection closed before the answer came."""


_STORED = _Ack()
_STORED_PREFIX = b'{"stream":'
"""How a PubAck of a stored (or duplicate) message starts; an error is ``{"error":...}``."""


class _Batch:
    """The answers to one batch's publishes: a reply subject each (``<inbox>.<batch>.<i>``),
    and one future done when every one is in."""

    def __init__(self, size: int) -> None:
        self.answers: list[_Ack | None] = [None] * size
        self.missing = size
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def answer(self, index: int, ack: _Ack) -> None:
        if not 0 <= index < len(self.answers) or self.answers[index] is not None:
            return
        self.answers[index] = ack
        self.missing -= 1
        if self.missing == 0 and not self.done.done():
            self.done.set_result(None)


class _Acks:
    """A connection's batches in flight, each waiting for the answers on its reply subjects."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._prefix = client.new_inbox()
        self._numbers = itertools.count()
        self._waiting: dict[str, _Batch] = {}
        self._subscription: Subscription | None = None

    async def start(self) -> None:
        """Listen on the reply subjects."""
        self._subscription = await self._client.subscribe(f"{self._prefix}.*.*", cb=self._answer)

    def expect(self, size: int) -> tuple[str, _Batch]:
        """A new batch of ``size`` publishes: the prefix of its reply subjects (add ``.<i>``)
        and what collects their answers."""
        name = f"{self._prefix}.{next(self._numbers)}"
        batch = self._waiting[name] = _Batch(size)
        return name, batch

    async def lost(self) -> None:
        """The connection closed: no answer will come (``closed_cb``)."""
        waiting, self._waiting = self._waiting, {}
        gone = _Ack(error="connection closed", lost=True)
        for batch in waiting.values():
            for index, answer in enumerate(batch.answers):
                if answer is None:
                    batch.answer(index, gone)

    def forget(self, name: str) -> None:
        """Stop waiting for a batch's answers (all in or not)."""
        self._waiting.pop(name, None)

    async def _answer(self, msg: Msg) -> None:
        name, _, number = msg.subject.rpartition(".")
        batch = self._waiting.get(name)
        if batch is None or not number.isdigit():
            return
        data = msg.data
        if data.startswith(_STORED_PREFIX) and b'"error"' not in data:
            batch.answer(int(number), _STORED)  # the common case, unparsed
            return
        batch.answer(int(number), _answer_of(msg))


def _answer_of(msg: Msg) -> _Ack:
    """What a reply other than a plain PubAck says."""
    if msg.headers and msg.headers.get(_STATUS_HEADER) == _NO_RESPONDERS:
        return _Ack(error="no responders", no_stream=True)
    try:
        answer = orjson.loads(msg.data)
    except orjson.JSONDecodeError:
        return _Ack(error=f"unexpected answer {msg.data[:100]!r}")
    error = answer.get("error") if isinstance(answer, dict) else None
    if isinstance(error, dict):
        description = error.get("description", "refused")
        return _Ack(error=f"{description} (error {error.get('err_code')})")
    if not isinstance(answer, dict) or "stream" not in answer:
        return _Ack(error=f"unexpected answer {msg.data[:100]!r}")
    return _STORED


class _NotOverTls(NatsError):
    """A tls:// server that did not ask for TLS: nothing (no token, no record) is sent."""

    def __init__(self, url: str) -> None:
        super().__init__(
            f"TLS: the server at {url} did not ask for TLS, so the connection would be in "
            "clear: refused (no token and no record was sent)"
        )


def _tls_in_use(client: Client) -> bool:
    """Whether nats-py went over to TLS on this connection. It does so when the server's INFO
    says ``tls_required``, and has no public accessor for it (nats-py 2.16): read from its
    copy of the INFO. Without this, a tls:// URL to a server (or a man in the middle)
    answering without TLS would get the token and the records in clear."""
    info = getattr(client, "_server_info", None)
    return isinstance(info, dict) and bool(info.get("tls_required"))


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
        ca_file: str | None = None,
    ) -> None:
        self.url = url
        self.subject = subject
        self._token = token
        self._ca_file = ca_file
        self._tls = _tls_context(url, ca_file)
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
        name, batch = acks.expect(len(records))
        published = 0
        try:
            publish, subject = client.publish, self.subject
            for index, record in enumerate(records):
                headers = {"Nats-Msg-Id": record.event_id, "Dstrail-Seq": str(record.seq)}
                await publish(subject, record.body, reply=f"{name}.{index}", headers=headers)
                published += 1
            await asyncio.wait((batch.done,), timeout=self._ack_timeout)
        except MaxPayloadError:
            record = records[published]
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
            acks.forget(name)
            batch.done.cancel()
        for record, ack in zip(records, batch.answers, strict=True):
            if ack is None or ack.error:
                if ack is None or ack.lost:
                    await self._drop()  # answers went missing: connect afresh next time
                raise DeliveryError(
                    self._failure(record, ack or _Ack(lost=True), answered=ack is not None)
                )

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
                token=self._token_for(client),
                tls=self._tls,  # tls://: the certificate (config.caFile) and host name checked
                name="dstrail",
                skip_subject_validation=True,  # ours: checked in open_transport, and inboxes
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
            if self._tls is not None and not _tls_in_use(client):
                raise _NotOverTls(self.url)
            await acks.start()
        except _Failure as error:
            with contextlib.suppress(*_Failure):
                await asyncio.wait_for(client.close(), _CLOSE_FAILED_S)
            raise DeliveryError(
                f"cannot connect to NATS at {self.url}: {self._last_error or self._describe(error)}"
            ) from None
        self._client, self._acks, self._last_error = client, acks, ""
        return client, acks

    def _token_for(self, client: Client) -> str | Callable[[], str] | None:
        """The token, or for a tls:// URL a callback nats-py calls just before it writes its
        CONNECT (with the token): it refuses unless the connection went over to TLS."""
        token = self._token
        if token is None or self._tls is None:
            return token

        def only_over_tls() -> str:
            if not _tls_in_use(client):
                raise _NotOverTls(self.url)
            return token

        return only_over_tls

    async def _drop(self) -> None:
        client, self._client, self._acks = self._client, None, None
        if client is not None:
            with contextlib.suppress(*_Failure):
                await client.close()

    async def _on_error(self, error: Exception) -> None:
        self._last_error = self._describe(error)
        logger.info("NATS at %s: %s", self.url, self._last_error)

    def _describe(self, error: BaseException) -> str:
        if isinstance(error, ssl.SSLCertVerificationError):
            reason = str(error.verify_message or error.reason or error).rstrip(".")
            return self._scrub(
                f"TLS: the server's certificate was not accepted: {reason} ({self._trusted()})"
            )
        if isinstance(error, ssl.SSLError):
            return self._scrub(f"TLS handshake failed: {error.reason or error}")
        text = str(error).removeprefix("nats: ").strip("'") or type(error).__name__
        if isinstance(error, AuthorizationError) or "authorization violation" in text.lower():
            needs = "refused the token" if self._token else "needs a token"
            return f"authorization violation: the server {needs} (the destination's secret)"
        if isinstance(error, asyncio.TimeoutError) and not str(error):
            text = "timed out"
        return self._scrub(text)

    def _trusted(self) -> str:
        """What a server's certificate was checked against, for messages."""
        if self._ca_file:
            return f"checked against the CAs in config.caFile {self._ca_file!r}"
        hint = (
            "config.caFile" if self.url.startswith("tls://") else "a tls:// URL and config.caFile"
        )
        return f"checked against the system's trusted CAs; for a private CA, set {hint}"

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
    ca_file = destination.config.get("caFile") or None
    return NatsTransport(url=url, subject=subject, token=secret or None, ca_file=ca_file)


def _tls_context(url: str, ca_file: str | None) -> ssl.SSLContext | None:
    """For a ``tls://`` URL, what checks the server's certificate (against ``ca_file``, or
    the system's CAs) and host name; ``DeliveryError`` naming ``config.caFile`` when it is
    set for a ``nats://`` URL or cannot be loaded."""
    if not url.startswith("tls://"):
        if ca_file:
            raise DeliveryError(f"config.caFile: only for tls:// URLs; config.url is {url!r}")
        return None
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as error:
        raise DeliveryError(f"config.caFile: cannot load {ca_file!r}: {error}") from None
