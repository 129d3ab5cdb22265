"""The transports, one module each; ``open_transport`` finds a destination's by its kind.

Each module exposes ``open_transport(destination, secret) -> Transport``. A transport sends a
batch of records and returns only once the receiver has them (an HTTP 2xx, a written socket, a
JetStream acknowledgement); anything else raises ``DeliveryError`` and the batch is sent again.
A new transport (Kafka, say) is one more module and one more ``StreamKind``.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Sequence
from typing import Protocol

from dstrail.domain.streams import Destination, StreamKind, StreamRecord


class DeliveryError(Exception):
    """A batch did not reach the receiver; the message says why (never a secret)."""


class Transport(Protocol):
    """Sends batches of records to one destination."""

    async def send(self, records: Sequence[StreamRecord]) -> None:
        """Deliver ``records`` (in order); ``DeliveryError`` when they may not have arrived."""

    async def check(self) -> None:
        """Reach the receiver without delivering anything (``stream add --check``);
        ``DeliveryError`` saying why when it cannot."""

    async def close(self) -> None:
        """Release connections."""


class TransportFactory(Protocol):
    """``open_transport`` of a transport module."""

    def __call__(self, destination: Destination, secret: str | None) -> Transport: ...


_MODULES = {
    StreamKind.WEBHOOK: "webhook",
    StreamKind.SPLUNK_HEC: "splunk",
    StreamKind.SYSLOG: "syslog",
    StreamKind.NATS: "nats",
}


def open_transport(destination: Destination, secret: str | None) -> Transport:
    """The transport of ``destination``'s kind, ready to send."""
    module = importlib.import_module(f"{__name__}.{_MODULES[destination.kind]}")
    factory: TransportFactory = module.open_transport
    return factory(destination, secret)


def check_destination(destination: Destination, secret: str | None) -> None:
    """Reach ``destination``'s receiver now (blocks, at most a transport's timeout);
    ``DeliveryError`` saying why it cannot."""

    async def probe() -> None:
        transport = open_transport(destination, secret)
        try:
            await transport.check()
        finally:
            await transport.close()

    asyncio.run(probe())
