"""The trail event: one about to be appended, and one as the store reads it back.

``StoredEvent`` names the columns every read of the trail returns, in their order; its field
names are the ``audit_events`` column names. Big reads hand rows over as plain driver tuples
(``EventRow``; a named tuple a row costs about 2.6 ms per 10,000 rows), read with the index
constants below or unpacked by name. ``SEALED_COLUMNS`` adds what verification checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, NamedTuple

from dstrail.domain.trail.kinds import EventKind


@dataclass(frozen=True, slots=True)
class NewAuditEvent:
    """An event about to be appended; the store gives it its sequence number."""

    event_kind: EventKind
    data_source_id: str
    data_source_name: str
    data_source_type: str
    performed_by: str
    performed_by_username: str
    timestamp_ms: int
    metadata: dict[str, str] = field(default_factory=dict)
    run_id: str | None = None
    project_id: str | None = None

    def stored_metadata(self) -> dict[str, str]:
        """The metadata as stored and returned: ``performedByUsername`` first."""
        return {"performedByUsername": self.performed_by_username, **self.metadata}


class StoredEvent(NamedTuple):
    """One event as the trail returns it: the seven API fields as stored, and its sequence."""

    data_source_id: str
    data_source_name: str
    data_source_type: str
    event_kind: str
    metadata: str
    """JSON text of the string map, ``performedByUsername`` first."""
    performed_by: str
    ts_ms: int
    seq: int


MAX_SEQ: Final = 2**63 - 1
"""The largest sequence number or tree size: both databases store them as 64-bit integers."""

EventRow = tuple[str, str, str, str, str, str, int, int]
"""A ``StoredEvent`` as big reads hand it over: the driver's plain tuple."""

DATA_SOURCE_ID: Final = 0
DATA_SOURCE_NAME: Final = 1
DATA_SOURCE_TYPE: Final = 2
EVENT_KIND: Final = 3
METADATA: Final = 4
PERFORMED_BY: Final = 5
TS_MS: Final = 6
SEQ: Final = 7

EVENT_COLUMNS: Final = StoredEvent._fields
"""The columns of an ``EventRow``, in order."""


SEALED_COLUMNS: Final = (
    *EVENT_COLUMNS,
    "performed_by_username",
    "run_id",
    "project_id",
    "leaf_hash",
)
"""The columns verification reads: an ``EventRow``'s, then what it checks the event against
(``leaf_hash`` was computed when the event was appended; None in a row written around dstrail)."""

SealedRow = tuple[str, str, str, str, str, str, int, int, str, str | None, str | None, bytes | None]
"""A row of ``SEALED_COLUMNS`` as the driver hands it over."""

PERFORMED_BY_USERNAME: Final = 8
RUN_ID: Final = 9
PROJECT_ID: Final = 10
LEAF_HASH: Final = 11


def _check_constants() -> None:
    """The index constants name the columns they index (checked once, at import)."""
    constants = {
        "data_source_id": DATA_SOURCE_ID,
        "data_source_name": DATA_SOURCE_NAME,
        "data_source_type": DATA_SOURCE_TYPE,
        "event_kind": EVENT_KIND,
        "metadata": METADATA,
        "performed_by": PERFORMED_BY,
        "ts_ms": TS_MS,
        "seq": SEQ,
        "performed_by_username": PERFORMED_BY_USERNAME,
        "run_id": RUN_ID,
        "project_id": PROJECT_ID,
        "leaf_hash": LEAF_HASH,
    }
    if any(SEALED_COLUMNS[index] != name for name, index in constants.items()):
        raise AssertionError("the trail's index constants do not match its columns")


_check_constants()
