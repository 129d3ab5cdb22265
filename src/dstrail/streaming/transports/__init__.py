"""The transports, one module each; ``open_transport`` finds a destination's by its kind.

Each module exposes ``open_transport(destination, secret) -> Transport``. A transport sends a
batch of records and returns only once the receiver has them (an HTTP 2xx, a written socket, a
JetStream acknowledgement); anything else raises ``DeliveryError`` and the batch is sent again.
A new transport (Kafka, say) is one more module and one more ``StreamKind``.
"""

from __future__ import annotations

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
