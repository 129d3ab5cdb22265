"""Stream destinations: where the trail is pushed (SIEMs, event buses), in which format, from
which event on.

The audit table is the outbox: a destination's ``cursor`` is the ``seq`` of the last event it
has taken (delivered, or skipped by its filter); a worker delivers the events after it in
``seq`` order and then moves it. Replaying moves it back and bumps ``generation``, so a worker
that was mid-batch cannot move it forward over the replay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

STREAM_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
STREAM_NAME_RULE = (
    "1-64 lower-case letters, digits, '-', '_' or '.', starting with one of the first two"
)


class StreamKind(StrEnum):
    """The transports."""

    WEBHOOK = "webhook"
    SPLUNK_HEC = "splunk-hec"
    SYSLOG = "syslog"
    NATS = "nats"


class StreamFormat(StrEnum):
    """How each event is written."""

    NATIVE = "native"
    OCSF = "ocsf"
    CEF = "cef"


@dataclass(frozen=True, slots=True)
class StreamFilter:
    """Which events a destination takes: every one when both are empty."""

    event_kinds: tuple[str, ...] = ()
    data_source_names: tuple[str, ...] = ()

    def takes(self, event_kind: str, data_source_name: str) -> bool:
        """Whether an event of this kind and data source passes."""
        if self.event_kinds and event_kind not in self.event_kinds:
            return False
        return not self.data_source_names or data_source_name in self.data_source_names


@dataclass(frozen=True, slots=True)
class DeliveryState:
    """What the workers last did with a destination."""

    last_delivery_ms: int | None = None
    last_error: str = ""
    last_error_ms: int | None = None
    delivered: int = 0
    """Records delivered since it was added."""
    lease_owner: str = ""
    lease_until_ms: int = 0
    errors: int = 0
    """Failed deliveries since it was added."""


@dataclass(frozen=True, slots=True)
class Destination:
    """A stream destination as stored (its secret is kept apart, encrypted)."""

    id: str
    name: str
    kind: StreamKind
    format: StreamFormat
    config: dict[str, str]
    """The transport's settings (``url``, ``host``, ``port``, ``subject``...), no secret."""
    filter: StreamFilter
    paused: bool
    cursor: int
    generation: int
    created_at_ms: int
    created_by: str
    has_secret: bool
    state: DeliveryState = field(default_factory=DeliveryState)


class StreamRecord(NamedTuple):
    """One event as a destination receives it: its ``seq``, a stable id for receivers to drop
    duplicates (the event's leaf hash, hex) and the formatted body. A tuple: a drain makes
    one a record, and a frozen dataclass costs three times as much to make."""

    seq: int
    event_id: str
    timestamp_ms: int
    body: bytes
