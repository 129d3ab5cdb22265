"""``syslog``: each record one RFC 5424 message, over TCP framed by octet counting (RFC 6587
section 3.4.1: ``LEN SP MSG``, LEN the message's length in bytes) or over TLS (RFC 5425, the
same framing).

A message is ``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [STRUCTURED-DATA] MSG``:

- PRI: facility 13 (log audit: what an audit trail is; authpriv, 10, is for login and sudo
  messages) and severity 5 (notice), so ``<109>``. Every message has that one severity: the
  transport sees formatted bytes, not event kinds, and reading them back out of each format
  would tie the transports to the formats. An event's own severity is in its format (CEF's
  Severity 7 for refusals, OCSF's ``severity_id``), which is what SIEMs rank by.
- TIMESTAMP: the event's time, RFC 3339 in UTC with milliseconds (``2023-08-23T21:40:21.669Z``).
- HOSTNAME: this machine's host name; APP-NAME: ``config.appName`` (default ``dstrail``);
  PROCID: the worker's process id; MSGID: ``audit``.
- STRUCTURED-DATA: ``[dstrail@32473 seq="N" eventId="..."]``, the event's seq and stable id
  for receivers to drop duplicates. 32473 is the enterprise number IANA reserves for
  documentation (RFC 5612); a deployment with a Private Enterprise Number of its own can ask
  for it to be made configurable.
- MSG: the record's body as is (UTF-8), without the optional BOM: rsyslog and the SIEMs read
  UTF-8 without it.

Delivery: one connection is kept open and made again after a failure. TCP acknowledges
nothing to the application, so ``send`` returns once the whole batch is written to the socket
(``drain``), not once the receiver has processed it. Before reusing the connection the
transport checks whether the receiver closed it (a restarted rsyslog), and connects again if
so, rather than writing into a dead socket. A receiver that vanishes without closing, or dies
while a batch is in flight, can still lose that batch; only a protocol with acknowledgements
(RELP) closes that gap. Any error (refused connection, TLS failure, reset, timeout) raises
``DeliveryError`` naming ``host:port``, drops the connection, and the worker sends the batch
again from its cursor: delivery is at least once and a receiver may see an event twice (the
same ``eventId``).

Receivers: rsyslog truncates messages beyond its ``maxMessageSize`` (8 KiB by default); raise
it (``global(maxMessageSize="64k")``) for long events. TLS checks the receiver's certificate
and host name against ``config.caFile`` (a PEM file) or the system's trusted CAs; client
certificates are not sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

from dstrail.domain.streams import Destination, StreamRecord
from dstrail.domain.timestamps import format_ms
from dstrail.streaming.transports import DeliveryError

FACILITY_LOG_AUDIT = 13
SEVERITY_NOTICE = 5
PRI = FACILITY_LOG_AUDIT * 8 + SEVERITY_NOTICE
DOCUMENTATION_ENTERPRISE_NUMBER = 32473
"""RFC 5612: the Private Enterprise Number reserved for documentation and examples."""
SD_ID = f"dstrail@{DOCUMENTATION_ENTERPRISE_NUMBER}"
MSGID = "audit"
DEFAULT_APP_NAME = "dstrail"
NILVALUE = "-"
TIMEOUT_S = 10.0
"""For connecting (and the TLS handshake), and for a batch to be taken by the socket."""
PEER_CHECK_S = 0.05
"""How long the check for a closed connection waits for the loop to read what arrived."""


def timestamp(ms: int) -> str:
    """An RFC 5424 TIMESTAMP (RFC 3339, UTC, milliseconds) of epoch milliseconds: the audit
    API's own form."""
    return format_ms(ms)


def sd_value(value: str) -> str:
    """A structured data PARAM-VALUE: ``"``, ``\\`` and ``]`` escaped (RFC 5424 6.3.3)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def header_field(value: str, max_length: int) -> str:
    """A header field: printable US-ASCII without spaces, at most ``max_length``; ``-`` (the
    NILVALUE) when nothing is left."""
    kept = "".join(c for c in value if 33 <= ord(c) <= 126)[:max_length]
    return kept or NILVALUE


def message(record: StreamRecord, *, hostname: str, app_name: str, procid: str) -> bytes:
    """One record as an RFC 5424 message."""
    structured = f'[{SD_ID} seq="{record.seq}" eventId="{sd_value(record.event_id)}"]'
    header = (
        f"<{PRI}>1 {timestamp(record.timestamp_ms)} {hostname} {app_name} {procid} {MSGID} "
        f"{structured} "
    )
    return header.encode() + record.body


def frame(msg: bytes) -> bytes:
    """A message framed by octet counting (RFC 6587 3.4.1)."""
    return b"%d %s" % (len(msg), msg)


@dataclass(frozen=True, slots=True)
class SyslogTarget:
    """Where and how to connect."""

    host: str
    port: int
    tls: ssl.SSLContext | None
    app_name: str

    @property
    def where(self) -> str:
        """``host:port`` for messages (the host as configured)."""
        return f"{self.host}:{self.port}" + (" (TLS)" if self.tls else "")


def target_of(config: dict[str, str]) -> SyslogTarget:
    """The target of a syslog destination's config; ``DeliveryError`` naming the field."""
    host = config.get("host", "")
    if not host:
        raise DeliveryError("config.host: a syslog destination needs one")
    port = config.get("port", "")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise DeliveryError(f"config.port: {port!r} must be 1 to 65535")
    app_name = config.get("appName") or DEFAULT_APP_NAME
    if header_field(app_name, 48) != app_name:
        raise DeliveryError(
            f"config.appName: {app_name!r} must be 1 to 48 printable ASCII characters, no spaces"
        )
    tls = config.get("tls", "false")
    if tls not in ("true", "false"):
        raise DeliveryError(f"config.tls: {tls!r}; accepted: true, false")
    ca_file = config.get("caFile") or None
    if tls == "false":
        if ca_file:
            raise DeliveryError("config.caFile: set, but config.tls is not true")
        return SyslogTarget(host=host, port=int(port), tls=None, app_name=app_name)
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as error:
        raise DeliveryError(f"config.caFile: cannot load {ca_file!r}: {error}") from None
    return SyslogTarget(host=host, port=int(port), tls=context, app_name=app_name)


async def _read_until_closed(reader: asyncio.StreamReader) -> None:
    """Take in whatever the receiver sends (nothing, for syslog) until it closes."""
    with contextlib.suppress(Exception):
        while await reader.read(4096):
            pass


class _Connection:
    """One open connection, and a task that ends when the receiver closes it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self._watch = asyncio.create_task(_read_until_closed(reader))

    async def usable(self) -> bool:
        """Whether it is still open: when the socket has something to read (for syslog, the
        receiver's FIN or a TLS message), give the loop a moment to take it in first."""
        if self._watch.done() or self.writer.is_closing():
            return False
        sock = self.writer.get_extra_info("socket")
        if sock is None or sock.fileno() < 0:
            return False
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        if poller.poll(0):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._watch), PEER_CHECK_S)
        return not self._watch.done() and not self.writer.is_closing()

    async def close(self, *, graceful: bool) -> None:
        """Close it (``graceful``: a TLS close_notify first), and stop the watch."""
        self._watch.cancel()
        if graceful:
            self.writer.close()
            try:
                await asyncio.wait_for(self.writer.wait_closed(), TIMEOUT_S)
            except (OSError, TimeoutError):
                self.writer.transport.abort()
        else:
            self.writer.transport.abort()
        with contextlib.suppress(asyncio.CancelledError):
            await self._watch


class SyslogTransport:
    """Writes batches of framed RFC 5424 messages to one receiver."""

    def __init__(self, target: SyslogTarget) -> None:
        self._target = target
        self._hostname = header_field(socket.gethostname(), 255)
        self._procid = str(os.getpid())
        self._connection: _Connection | None = None

    def messages(self, records: Sequence[StreamRecord]) -> list[bytes]:
        """The RFC 5424 messages of ``records`` (unframed)."""
        return [
            message(r, hostname=self._hostname, app_name=self._target.app_name, procid=self._procid)
            for r in records
        ]

    async def send(self, records: Sequence[StreamRecord]) -> None:
        """Write the batch, each record a framed message; returns once the socket took it."""
        if not records:
            return
        payload = b"".join(frame(msg) for msg in self.messages(records))
        try:
            connection = await self._connected()
            connection.writer.write(payload)
            await asyncio.wait_for(connection.writer.drain(), TIMEOUT_S)
        except OSError as error:  # ssl.SSLError and TimeoutError are OSErrors too
            await self._drop()
            detail = str(error) or f"no progress within {TIMEOUT_S:g} s"
            raise DeliveryError(
                f"syslog {self._target.where}: {type(error).__name__}: {detail}"
            ) from None

    async def check(self) -> None:
        """Connect (and, for TLS, finish the handshake): ``DeliveryError`` when it cannot."""
        try:
            await self._connected()
        except OSError as error:
            await self._drop()
            raise DeliveryError(
                f"syslog {self._target.where}: {type(error).__name__}: {error}"
            ) from None

    async def _connected(self) -> _Connection:
        if self._connection is not None and not await self._connection.usable():
            await self._drop()
        if self._connection is None:
            host = self._target.host.strip("[]")
            tls = self._target.tls
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    host,
                    self._target.port,
                    ssl=tls,
                    server_hostname=host if tls else None,
                    ssl_handshake_timeout=TIMEOUT_S if tls else None,
                ),
                TIMEOUT_S,
            )
            self._connection = _Connection(reader, writer)
        return self._connection

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close(graceful=False)

    async def close(self) -> None:
        """Close the connection (the next ``send`` would open another)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close(graceful=True)


def open_transport(destination: Destination, secret: str | None) -> SyslogTransport:
    """A syslog transport (it connects on the first ``send``); syslog takes no secret."""
    _ = secret
    return SyslogTransport(target_of(destination.config))
