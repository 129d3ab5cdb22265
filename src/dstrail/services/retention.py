"""Retention: how long the trail is kept, and purging what is older, provably.

A purge, in order:

1. plans the range: events from the last purge to the newest one whose whole UTC month has
   left the policy's window, never past a stream destination that has not delivered them
   (unless forced: the destinations passed are then named in the record);
2. writes the range to the archive (Parquet a month, and a manifest with a signed checkpoint
   and proofs), reads it back and verifies it; nothing is removed before that succeeds;
3. records ``AuditTrailPurged`` (seq range, archive location, the manifest's SHA-256) and the
   new boundary, with the tree hashes of the range kept, in one transaction;
4. removes the bodies: on PostgreSQL in that same transaction (whole month partitions dropped,
   stragglers deleted), so a crash leaves the old state or the new one; on SQLite in short
   batches afterwards, each its own transaction, resumed by the next purge after a crash (the
   purge is already recorded and every hash kept: the trail has no hole at any point).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dstrail.audit.archive import Archive, verify_archive, write_archive
from dstrail.audit.archive_targets import ArchiveTarget
from dstrail.audit.checkpoints import checkpoint_now
from dstrail.audit.recorder import record_platform_event
from dstrail.domain.retention import (
    RetentionPolicy,
    next_purge_at,
    purge_cutoff,
    refusal,
)
from dstrail.domain.streams import Destination
from dstrail.domain.trail import EventKind
from dstrail.domain.users import OPERATOR, User
from dstrail.errors import Conflict, DstrailError, Forbidden
from dstrail.services.users import require_admin
from dstrail.store import Store
from dstrail.store.retention import RetentionRepository, RetentionState

logger = logging.getLogger("dstrail.retention")

REMOVE_BATCH = 5_000
"""Events a SQLite removal batch deletes in one transaction (a few ms of write lock)."""
DETACH_LOCK_TIMEOUT = "5s"
"""How long a PostgreSQL purge waits to detach a month (readers finishing; appends wait
behind it meanwhile) before it gives up, to be tried again at the next check."""


class RetentionLocked(Conflict):
    """A change a locked policy refuses (409; the attempt is recorded)."""


@dataclass(frozen=True, slots=True)
class RetentionView:
    """What ``dstrail retention show`` says."""

    policy: RetentionPolicy
    purge_through: int
    removed_through: int
    oldest_hot_seq: int | None
    oldest_hot_ms: int | None
    next_purge_ms: int | None
    last_purge_ms: int | None
    last_archive: str


def show_retention(store: Store, *, actor: User, now_ms: int) -> RetentionView:
    """The policy, the oldest event kept hot and when the next month leaves the window
    (SysAdmins and Auditors)."""
    if not actor.can_read_audit:
        raise Forbidden("reading the retention policy requires the SysAdmin or the Auditor role")
    with store.read() as tx:
        state = tx.retention.state()
        oldest = tx.retention.oldest_hot(state.purge_through)
    days = state.policy.days
    return RetentionView(
        policy=state.policy,
        purge_through=state.purge_through,
        removed_through=state.removed_through,
        oldest_hot_seq=oldest[0] if oldest else None,
        oldest_hot_ms=oldest[1] if oldest else None,
        next_purge_ms=None if days is None else next_purge_at(days, now_ms),
        last_purge_ms=state.last_purge_at,
        last_archive=state.last_archive,
    )


def set_retention(
    store: Store, *, actor: User, days: int | None, lock: bool, now_ms: int
) -> RetentionView:
    """Change the policy; records ``AuditRetentionPolicySet``. A locked policy that would be
    shortened, unlocked or removed raises ``RetentionLocked`` and changes nothing; the
    attempt is recorded as ``AuditRetentionChangeRefused``, committed on its own."""
    require_admin(actor, "changing the retention policy")
    asked = {"days": "forever" if days is None else str(days), "locked": str(lock).lower()}
    with store.write() as tx:
        current = tx.retention.state(lock=True).policy
        reason = refusal(current, days=days, lock=lock)
        if reason is None:
            policy = RetentionPolicy(days=days, locked=lock, set_at=now_ms, set_by=actor.id)
            tx.retention.set_policy(policy)
            previous = "forever" if current.days is None else str(current.days)
            record_platform_event(
                tx, kind=EventKind.RETENTION_SET, actor=actor, now_ms=now_ms,
                metadata={**asked, "previousDays": previous,
                          "previousLocked": str(current.locked).lower()},
            )  # fmt: skip
    if reason is not None:
        with store.write() as tx:
            record_platform_event(
                tx, kind=EventKind.RETENTION_REFUSED, actor=actor, now_ms=now_ms,
                metadata={**asked, "reason": reason},
            )  # fmt: skip
        raise RetentionLocked(reason)
    return show_retention(store, actor=actor, now_ms=now_ms)


@dataclass(frozen=True, slots=True)
class PurgePlan:
    """Which events a purge would remove: ``first`` to ``last`` (none when ``last < first``),
    and why it stops where it does."""

    first: int
    last: int
    cutoff_ms: int | None
    held_back_by: tuple[str, ...] = ()
    """Destinations whose undelivered events stopped the purge short (not forced)."""
    forced_past: tuple[str, ...] = ()
    """Destinations whose undelivered events a forced purge removes anyway."""
    reason: str = ""

    @property
    def events(self) -> int:
        """How many events it removes."""
        return max(0, self.last - self.first + 1)


def plan_purge(store: Store, *, now_ms: int, force: bool = False) -> PurgePlan:
    """What a purge would remove now (nothing is changed)."""
    with store.read() as tx:
        state = tx.retention.state()
        return _plan(tx.retention, tx.streams.all(), tx.audit.size(), state, now_ms, force)


def _plan(
    retention: RetentionRepository,
    destinations: list[Destination],
    size: int,
    state: RetentionState,
    now_ms: int,
    force: bool,
) -> PurgePlan:
    first = state.purge_through + 1
    days = state.policy.days
    if days is None:
        return PurgePlan(first, first - 1, None, reason="the policy keeps everything")
    cutoff = purge_cutoff(days, now_ms)
    last = retention.boundary(cutoff_ms=cutoff, after=state.purge_through, at_most=size)
    if last < first:
        return PurgePlan(first, last, cutoff, reason="no event has left the policy's window")
    lagging = sorted((d.cursor, d.name) for d in destinations if d.cursor < last)
    if not lagging:
        return PurgePlan(first, last, cutoff)
    names = tuple(name for _, name in lagging)
    if force:
        return PurgePlan(first, last, cutoff, forced_past=names)
    held = max(first - 1, lagging[0][0])
    reason = f"held back by stream destinations that have not delivered them: {', '.join(names)}"
    return PurgePlan(first, held, cutoff, held_back_by=names, reason=reason)


@dataclass(slots=True)
class PurgeResult:
    """What a purge did, and how long each step took (seconds)."""

    plan: PurgePlan
    dry_run: bool
    archive: Archive | None = None
    removed: int = 0
    partitions_dropped: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def apply_retention(
    store: Store,
    target: ArchiveTarget,
    *,
    actor: User,
    public_key: bytes,
    now_ms: int,
    dry_run: bool = False,
    force: bool = False,
    clock: Callable[[], float] = time.perf_counter,
) -> PurgeResult:
    """Purge what the policy no longer keeps: archive, verify, record, remove (see above)."""
    require_admin(actor, "applying the retention policy")
    finish_removal(store)
    plan = plan_purge(store, now_ms=now_ms, force=force)
    result = PurgeResult(plan=plan, dry_run=dry_run)
    if dry_run or plan.events == 0:
        return result
    started = clock()
    checkpoint = checkpoint_now(store, now_ms=now_ms)
    archive = write_archive(
        store, target, first=plan.first, last=plan.last, checkpoint=checkpoint, now_ms=now_ms
    )
    result.seconds["archive"] = clock() - started
    started = clock()
    checked = verify_archive(target, archive.folder, public_key=public_key)
    if checked.manifest_sha256 != archive.manifest_sha256:
        raise DstrailError(f"{archive.location}: the manifest read back is not the one written")
    result.seconds["verify"] = clock() - started
    result.archive = archive
    started = clock()
    result.partitions_dropped, result.removed = _record_and_remove(
        store, plan, archive, actor=actor, now_ms=now_ms
    )
    result.removed += finish_removal(store)
    result.seconds["remove"] = clock() - started
    return result


def _record_and_remove(
    store: Store, plan: PurgePlan, archive: Archive, *, actor: User, now_ms: int
) -> tuple[list[str], int]:
    """Record the purge and keep the range's hashes (one transaction); on PostgreSQL remove
    the bodies in it too. Returns (partitions dropped, events removed).

    On SQLite the hashes are copied first, in batches of their own (copying is idempotent),
    so that the recording transaction holds the one write lock only for an instant."""
    postgresql = store.dialect == "postgresql"
    if not postgresql:
        for start in range(plan.first, plan.last + 1, REMOVE_BATCH):
            with store.write() as tx:
                tx.retention.copy_hashes(start, min(plan.last, start + REMOVE_BATCH - 1))
    with store.write() as tx:
        state = tx.retention.state(lock=True)
        if state.purge_through >= plan.last:
            return [], 0  # another purge got there first
        if postgresql:
            tx.retention.copy_hashes(plan.first, plan.last)
        elif tx.retention.kept_hashes_between(plan.first, plan.last) != plan.events:
            raise DstrailError(f"the tree hashes of events {plan.first}-{plan.last} were not kept")
        tx.retention.mark_purged(
            through=plan.last, cutoff_ms=plan.cutoff_ms or 0, now_ms=now_ms,
            archive=archive.location,
        )  # fmt: skip
        metadata = {
            "firstSeq": str(plan.first),
            "lastSeq": str(plan.last),
            "events": str(plan.events),
            "archive": archive.location,
            "archiveSha256": archive.manifest_sha256,
            "checkpointSize": str(archive.checkpoint_size),
            "cutoff": str(plan.cutoff_ms),
        }
        if plan.forced_past:
            metadata["forced"] = "true"
            metadata["forcedPastStreams"] = ",".join(plan.forced_past)
        record_platform_event(
            tx, kind=EventKind.TRAIL_PURGED, actor=actor, now_ms=now_ms, metadata=metadata
        )
        if not postgresql:
            return [], 0
        cutoff = plan.cutoff_ms or 0
        whole = tx.retention.droppable_partitions(through=plan.last, cutoff_ms=cutoff)
        tx.retention.remove_rows_outside(plan.first, plan.last, whole)
        tx.retention.recount_days(cutoff_ms=cutoff, through=plan.last)
        tx.retention.mark_removed(plan.last)
        # Last: detaching locks the table (appends wait) until the commit just after.
        tx.retention.drop_partitions(whole, lock_timeout=DETACH_LOCK_TIMEOUT)
    # Every event of the range went: the triggers let nothing else be deleted, and the
    # partitions dropped held only events of it.
    return [p.name for p in whole], plan.events


def finish_removal(store: Store) -> int:
    """Remove the bodies of purged events still in the table (SQLite: the batches after a
    purge is recorded, or those a crash interrupted). Returns how many were removed."""
    removed = 0
    with store.read() as tx:
        state = tx.retention.state()
    if not state.removal_pending:
        return 0
    upto = state.purge_through
    start = state.removed_through + 1
    while start <= upto:
        end = min(upto, start + REMOVE_BATCH - 1)
        with store.write() as tx:  # the hashes were kept before the purge was recorded
            removed += tx.retention.remove_rows(start, end)
            tx.retention.mark_removed(end)
        start = end + 1
    with store.write() as tx:
        tx.retention.recount_days(cutoff_ms=state.purge_cutoff_ms, through=upto)
    return removed


class RetentionScheduler:
    """``dstrail serve``'s purges: every ``every_seconds``, the policy is applied (archive,
    verify, record, remove) as ``operator``; a failure is logged and tried again next time,
    with nothing removed that was not archived and verified."""

    def __init__(
        self,
        store: Store,
        target: ArchiveTarget,
        *,
        public_key: bytes,
        clock: Callable[[], int],
        every_seconds: float,
    ) -> None:
        self._store = store
        self._target = target
        self._public_key = public_key
        self._clock = clock
        self._every = every_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dstrail-retention", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop it (a purge in progress finishes its current step)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def run_once(self) -> PurgeResult:
        """Apply the policy now."""
        return apply_retention(
            self._store, self._target, actor=OPERATOR, public_key=self._public_key,
            now_ms=self._clock(),
        )  # fmt: skip

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                result = self.run_once()
            except DstrailError as error:
                logger.warning("retention purge failed: %s", error.message)
                continue
            except Exception:
                logger.exception("retention purge failed")
                continue
            if result.plan.events:
                logger.info(
                    "retention purged events %d-%d to %s",
                    result.plan.first, result.plan.last,
                    result.archive.location if result.archive else "-",
                )  # fmt: skip
            elif result.plan.held_back_by:
                logger.warning("retention purge %s", result.plan.reason)
