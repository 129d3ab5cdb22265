"""The forensics follower: derives the grant intervals, users and data sources (and, through
``FINDINGS_CONSUMERS``, the detection rules' state) from the trail, behind a cursor, as the
stream workers deliver it.

Each batch (the events after the cursor, in seq order) is one transaction: the cursor row is
locked (PostgreSQL; SQLite has one writer), the batch is applied to the grant tables, every
consumer sees it, and the cursor moves; a crash leaves the old state or the new one, never
half. ``dstrail serve`` runs the follower in the background (``ForensicsFollowerThread``);
every forensics answer first catches up to the head, so it is exact when it is given.

``rebuild`` empties the derived tables and replays from the oldest event the trail holds (1,
unless a retention purge removed older ones: it says so); ``rebuild(check=True)`` replays into
a scratch database instead and says whether its state equals the incremental one.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from dstrail.domain.forensics import Ledger, TrailEvent
from dstrail.domain.forensics.entitlements import (
    data_sources_granting,
    data_sources_named,
    users_named,
)
from dstrail.domain.timestamps import Clock
from dstrail.services import findings
from dstrail.settings import Settings
from dstrail.store import Repositories, Store
from dstrail.store.forensics import ForensicsDigest

logger = logging.getLogger("dstrail.forensics")

BATCH_EVENTS: Final = 2_000
"""Events a follower batch (one transaction) takes."""


@dataclass(frozen=True, slots=True)
class BatchContext:
    """What a consumer is told about the batch it is given."""

    settings: Settings
    now_ms: int
    replaying: bool
    """A rebuild's replay: recompute the derived state, record nothing new in the trail."""
    first_seq: int
    """The first event the derived state holds (above 1: earlier ones had been purged)."""


@dataclass(frozen=True, slots=True)
class DerivedState:
    """State that a consumer derives from the trail beside the grants (the findings of the
    detection rules): fed each batch in the follower's transaction, emptied by a rebuild, and
    compared by ``rebuild(check=True)`` through its digest.

    ``evaluate`` must read only the events it is given and the derived tables (the grants,
    through ``tx.forensics``, and its own): under ``rebuild(check=True)`` its ``tx`` is a
    scratch database's, whose trail is empty. Events of the ``ForensicFinding*`` kinds are
    never given to it."""

    name: str
    evaluate: Callable[[Repositories, Sequence[TrailEvent], BatchContext], None]
    reset: Callable[[Repositories], None]
    digest: Callable[[Repositories], str]


FINDINGS_CONSUMERS: tuple[DerivedState, ...] = (
    DerivedState(
        "findings", findings.evaluate_batch, findings.reset_derived, findings.findings_digest
    ),
)
"""The derived states the follower feeds beside the grants: the detection rules' findings."""


# -- one batch --------------------------------------------------------------------------------


def apply_events(
    tx: Repositories,
    events: Sequence[TrailEvent],
    *,
    context: BatchContext,
    consumers: Sequence[DerivedState],
) -> None:
    """Apply a batch (the events right after the cursor, in seq order) to the grant tables of
    ``tx``, then hand it to each consumer; the caller moves the cursor in the same transaction."""
    granting = data_sources_granting(events)
    ledger = Ledger(
        loaded=granting,
        open_grants=tx.forensics.open_grants_of(granting),
        data_sources=tx.forensics.data_sources_by_id(data_sources_named(events)),
        users=tx.forensics.users_by_id(users_named(events)),
    )
    tx.forensics.save(ledger.apply_all(events))
    if consumers:
        theirs = [event for event in events if not event.is_finding]
        for consumer in consumers:
            consumer.evaluate(tx, theirs, context)


class Follower:
    """Moves the derived state of ``store`` along the trail, a batch a transaction."""

    def __init__(
        self,
        store: Store,
        *,
        settings: Settings,
        clock: Clock,
        batch_events: int = BATCH_EVENTS,
        consumers: Sequence[DerivedState] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.batch_events = batch_events
        self.consumers = tuple(FINDINGS_CONSUMERS if consumers is None else consumers)

    def step(self) -> tuple[int, int]:
        """One batch: (the cursor after it, the events it took; 0 when caught up)."""
        with self.store.write() as tx:
            state = tx.forensics.state(lock=True)
            through = state.replay_through if state.replay_through > state.cursor_seq else None
            events = tx.forensics.events_after(
                state.cursor_seq, limit=self.batch_events, through=through
            )
            if not events:
                return state.cursor_seq, 0
            if events[0].seq != state.cursor_seq + 1:
                logger.warning(
                    "forensics: events %d-%d are no longer in the trail (purged before the "
                    "follower read them); the derived state goes on without them",
                    state.cursor_seq + 1, events[0].seq - 1,
                )  # fmt: skip
            now = self.clock()
            context = BatchContext(
                settings=self.settings, now_ms=now,
                replaying=events[-1].seq <= state.replay_through, first_seq=state.first_seq,
            )  # fmt: skip
            apply_events(tx, events, context=context, consumers=self.consumers)
            tx.forensics.advance(events[-1].seq, now_ms=now)
            return events[-1].seq, len(events)

    def cursor(self) -> int:
        """The seq of the last event the derived state holds."""
        with self.store.read() as tx:
            return tx.forensics.state().cursor_seq

    def behind(self, *, through: int | None = None) -> int:
        """How many events the state lacks to hold event ``through`` (default: the head)."""
        with self.store.read() as tx:
            target = tx.forensics.head() if through is None else through
            return max(0, target - tx.forensics.state().cursor_seq)

    def catch_up(self, *, through: int | None = None) -> int:
        """Take batches until the state holds event ``through`` (default: the head when
        called) or the trail has no more; the events taken."""
        with self.store.read() as tx:
            cursor = tx.forensics.state().cursor_seq
            target = tx.forensics.head() if through is None else through
        taken = 0
        while cursor < target:
            cursor, events = self.step()
            if not events:
                break
            taken += events
        return taken


def follower_for(store: Store, *, settings: Settings, clock: Clock) -> Follower:
    """The follower of ``store`` as the settings pace it, with the registered consumers."""
    return Follower(
        store, settings=settings, clock=clock, batch_events=settings.forensics_batch_events
    )


class ForensicsFollowerThread:
    """``dstrail serve``'s follower: every ``every_seconds`` it catches up to the head; a
    failure is logged and tried again next time (the state is as the last batch left it)."""

    def __init__(self, follower: Follower, *, every_seconds: float) -> None:
        self._follower = follower
        self._every = every_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dstrail-forensics", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop it (a batch in progress finishes)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                while not self._stop.is_set():
                    _cursor, events = self._follower.step()
                    if not events:
                        break
            except Exception:
                logger.exception("forensics: the follower failed; it tries again")


# -- rebuild ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rebuilt:
    """A derived state: through which event, its digest, the consumers' digests."""

    first_seq: int
    through_seq: int
    digest: ForensicsDigest
    derived: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RebuildReport:
    """What a rebuild did: the events it replayed, the state it made, and (a check) the
    incremental state beside it."""

    check: bool
    events: int
    seconds: float
    rebuilt: Rebuilt
    incremental: Rebuilt | None
    purged_through: int
    """Events 1 to this are gone from the trail (retention): nothing they granted is known."""

    @property
    def equal(self) -> bool | None:
        """A check: whether the rebuilt state equals the incremental one."""
        if self.incremental is None:
            return None
        return (
            self.rebuilt.digest == self.incremental.digest
            and self.rebuilt.derived == self.incremental.derived
        )


def rebuild(
    store: Store,
    *,
    settings: Settings,
    clock: Clock,
    check: bool = False,
    batch_events: int = BATCH_EVENTS,
    consumers: Sequence[DerivedState] | None = None,
) -> RebuildReport:
    """Rebuild the derived state from the trail (see the module); ``check``: into a scratch
    database, leaving the incremental state as it is, and compare the two."""
    chosen = tuple(FINDINGS_CONSUMERS if consumers is None else consumers)
    follower = Follower(
        store, settings=settings, clock=clock, batch_events=batch_events, consumers=chosen
    )
    started = time.perf_counter()
    if check:
        return _check(follower, started)
    with store.write() as tx:
        tx.forensics.state(lock=True)
        first = tx.forensics.first_seq_after(0)
        head = tx.forensics.head()
        first_seq = head + 1 if first is None else first
        tx.forensics.reset(first_seq=first_seq, replay_through=head, now_ms=clock())
        for consumer in chosen:
            consumer.reset(tx)
    events = follower.catch_up(through=head)
    with store.read() as tx:
        rebuilt = _derived(tx, chosen)
    return RebuildReport(
        check=False, events=events, seconds=time.perf_counter() - started, rebuilt=rebuilt,
        incremental=None, purged_through=first_seq - 1,
    )  # fmt: skip


def _derived(tx: Repositories, consumers: Sequence[DerivedState]) -> Rebuilt:
    state = tx.forensics.state()
    return Rebuilt(
        first_seq=state.first_seq,
        through_seq=state.cursor_seq,
        digest=tx.forensics.digest(),
        derived={consumer.name: consumer.digest(tx) for consumer in consumers},
    )


def _check(follower: Follower, started: float) -> RebuildReport:
    """Replay the trail into a scratch SQLite database up to where the incremental state
    stands, and compare."""
    store = follower.store
    follower.catch_up()
    with store.read() as tx:
        incremental = _derived(tx, follower.consumers)
        first = tx.forensics.first_seq_after(0)
    through = incremental.through_seq
    first_seq = through + 1 if first is None else min(first, through + 1)
    with tempfile.TemporaryDirectory(prefix="dstrail-forensics-check-") as directory:
        scratch = Store(f"sqlite:///{Path(directory) / 'scratch.sqlite3'}")
        try:
            scratch.migrate(now_ms=follower.clock())
            with scratch.write() as tx:
                tx.forensics.reset(first_seq=first_seq, replay_through=through, now_ms=0)
            events = _replay(follower, scratch, first_seq=first_seq, through=through)
            with scratch.read() as tx:
                rebuilt = _derived(tx, follower.consumers)
        finally:
            scratch.dispose()
    return RebuildReport(
        check=True, events=events, seconds=time.perf_counter() - started, rebuilt=rebuilt,
        incremental=incremental, purged_through=first_seq - 1,
    )  # fmt: skip


def _replay(follower: Follower, scratch: Store, *, first_seq: int, through: int) -> int:
    """Read the trail of the follower's store a batch at a time, and apply each batch to
    ``scratch`` as the follower applies it to its own store."""
    cursor, replayed = first_seq - 1, 0
    while cursor < through:
        with follower.store.read() as tx:
            events = tx.forensics.events_after(cursor, limit=follower.batch_events, through=through)
        if not events:
            break
        context = BatchContext(
            settings=follower.settings, now_ms=follower.clock(), replaying=True,
            first_seq=first_seq,
        )  # fmt: skip
        with scratch.write() as tx:
            apply_events(tx, events, context=context, consumers=follower.consumers)
            tx.forensics.advance(events[-1].seq, now_ms=context.now_ms)
        cursor, replayed = events[-1].seq, replayed + len(events)
    return replayed
