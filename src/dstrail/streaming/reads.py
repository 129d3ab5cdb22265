"""The workers' reads of the trail, shared by every destination a process delivers.

- **The head**: one query a poll (``audit_head.size``, a plain read: never the head lock)
  says whether anything was appended, for every destination at once; a destination that has
  caught up waits for it instead of asking the database itself.
- **Batches**: the events after a cursor, by primary key, are read once for the destinations
  at that cursor. A full batch never changes (the trail is append-only and ``seq`` dense), so
  it is kept for the next destination to come by; a shorter one (the tail) only while no
  newer event is known.
- **Records**: a batch's records in a format are made once for the destinations that take
  every event of it in that format.
- **The checkpoint** the native format cites is read again at most once a second.

Used from the workers' loop only (one thread).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Final

from dstrail.domain.streams import Destination, StreamFormat, StreamRecord
from dstrail.domain.trail import CheckpointRecord, SealedRow
from dstrail.store import Store
from dstrail.streaming.formats import encode

SEQ: Final = 7
"""A ``SealedRow``'s seq column."""
KEPT_BATCHES = 16
CHECKPOINT_SECONDS = 1.0


@dataclass(slots=True)
class Batch:
    """The events after ``after``, in seq order, and the newest checkpoint when read."""

    after: int
    rows: list[SealedRow]
    checkpoint: CheckpointRecord | None
    full: bool
    """As many rows as a batch holds: the events after ``after`` that come next, for good."""
    records: dict[StreamFormat, list[StreamRecord]] = field(default_factory=dict)

    @property
    def last_seq(self) -> int:
        """The seq of the last row (``after`` when there is none)."""
        return int(self.rows[-1][SEQ]) if self.rows else self.after


class TrailReads:
    """The head, batches and records of one worker process (see the module)."""

    def __init__(self, store: Store, *, batch_size: int) -> None:
        self._store = store
        self.batch_size = batch_size
        self.head = 0
        """The trail's size when last read."""
        self._batches: OrderedDict[int, Batch] = OrderedDict()
        self._checkpoint: CheckpointRecord | None = None
        self._checkpoint_read_at = float("-inf")

    def read_head(self) -> int:
        """Read the trail's size; the new ``head``."""
        with self._store.read() as tx:
            size = tx.audit.size()
        self.head = max(self.head, size)
        return self.head

    def batch(self, after: int) -> Batch:
        """The events after ``after`` (at most a batch), read once for everyone."""
        kept = self._batches.get(after)
        if kept is not None and (kept.full or kept.last_seq >= self.head):
            self._batches.move_to_end(after)
            return kept
        batch = self._read(after)
        self.head = max(self.head, batch.last_seq)
        self._batches[after] = batch
        self._batches.move_to_end(after)
        while len(self._batches) > KEPT_BATCHES:
            self._batches.popitem(last=False)
        return batch

    def records(self, batch: Batch, destination: Destination) -> list[StreamRecord]:
        """The records ``destination`` takes of ``batch``, in its format."""
        takes = destination.filter.takes
        if destination.filter.event_kinds or destination.filter.data_source_names:
            taken = [row for row in batch.rows if takes(row[3], row[1])]
            if len(taken) < len(batch.rows):
                return encode(destination.format, taken, batch.checkpoint) if taken else []
        made = batch.records.get(destination.format)
        if made is None:
            made = batch.records[destination.format] = encode(
                destination.format, batch.rows, batch.checkpoint
            )
        return made

    def _read(self, after: int) -> Batch:
        now = time.monotonic()
        with self._store.read() as tx:
            rows = tx.integrity.events_after(after, limit=self.batch_size)
            if rows and now - self._checkpoint_read_at >= CHECKPOINT_SECONDS:
                self._checkpoint = tx.integrity.latest_checkpoint()
                self._checkpoint_read_at = now
        return Batch(after, rows, self._checkpoint, full=len(rows) == self.batch_size)
