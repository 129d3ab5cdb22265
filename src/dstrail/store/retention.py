"""Retention in SQL: the policy row, how far the trail is purged, and the removal itself.

The removal is the only path that deletes events. It first copies the tree hashes of the rows
it removes into ``audit_tree_hashes`` (proofs and tiles read them from there), then removes the
bodies: on PostgreSQL by dropping whole month partitions where it can, else by deleting rows,
all in the caller's transaction; on SQLite in short batches of their own (``remove_batch``).
The database's own triggers refuse a DELETE of any event past ``purge_through``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, func, or_, select, text, update

from dstrail.domain.retention import RetentionPolicy
from dstrail.domain.timestamps import DAY_MS
from dstrail.store.partitions import MonthPartition, drop_month_partition, month_partitions
from dstrail.store.schema import audit_events, audit_retention, audit_tree_hashes

_COPY_HASHES = text(
    "INSERT INTO audit_tree_hashes (seq, leaf_hash, subtree_hashes) "
    "SELECT seq, leaf_hash, subtree_hashes FROM audit_events "
    "WHERE seq BETWEEN :first AND :last AND leaf_hash IS NOT NULL "
    "ON CONFLICT (seq) DO NOTHING"
)
_RECOUNT_DAYS = text(
    "INSERT INTO audit_daily_counts (day, event_kind, count) "
    "SELECT ts_ms / 86400000, event_kind, count(*) FROM audit_events "
    "WHERE ts_ms < :end AND seq > :through GROUP BY ts_ms / 86400000, event_kind"
)


@dataclass(frozen=True, slots=True)
class RetentionState:
    """The policy, and how far purges have gone: events 1 to ``purge_through`` are purged
    (archived, recorded); 1 to ``removed_through`` are removed from the table (the rest of a
    purge on SQLite is removed batch by batch after it is recorded)."""

    policy: RetentionPolicy
    purge_through: int
    purge_cutoff_ms: int
    removed_through: int
    last_purge_at: int | None
    last_archive: str

    @property
    def removal_pending(self) -> bool:
        """A recorded purge whose rows are not all removed yet (SQLite, after a crash)."""
        return self.removed_through < self.purge_through


class RetentionRepository:
    """The retention row and the removal of purged events, in the caller's transaction."""

    def __init__(self, connection: Connection) -> None:
        self._db = connection

    def state(self, *, lock: bool = False) -> RetentionState:
        """The retention row; ``lock``: held until the transaction ends (PostgreSQL), so two
        purges or policy changes take turns."""
        query = select(audit_retention).where(audit_retention.c.id == 1)
        if lock and self._db.dialect.name == "postgresql":
            query = query.with_for_update()
        row = self._db.execute(query).one()
        return RetentionState(
            policy=RetentionPolicy(
                days=row.days, locked=bool(row.locked), set_at=int(row.set_at), set_by=row.set_by
            ),
            purge_through=int(row.purge_through),
            purge_cutoff_ms=int(row.purge_cutoff_ms),
            removed_through=int(row.removed_through),
            last_purge_at=row.last_purge_at,
            last_archive=row.last_archive,
        )

    def set_policy(self, policy: RetentionPolicy) -> None:
        """Store a new policy (the service checked that it may replace the old one)."""
        self._db.execute(
            update(audit_retention)
            .where(audit_retention.c.id == 1)
            .values(
                days=policy.days, locked=policy.locked, set_at=policy.set_at, set_by=policy.set_by
            )
        )

    def boundary(self, *, cutoff_ms: int, after: int, at_most: int) -> int:
        """The largest seq ``b`` (``after`` to ``at_most``) such that every event from
        ``after + 1`` to ``b`` happened before ``cutoff_ms``: a purge removes a prefix of the
        trail, never an event that an older one follows.

        Two index reads: the first young event in time order bounds the answer; below it,
        only an event recorded out of time order (a clock step back) can be younger."""
        if at_most <= after:
            return after
        seq, ts_ms = audit_events.c.seq, audit_events.c.ts_ms
        first_in_time = self._db.execute(
            select(seq).where(ts_ms >= cutoff_ms, seq > after).order_by(ts_ms, seq).limit(1)
        ).scalar()
        candidate = at_most if first_in_time is None else min(at_most, int(first_in_time) - 1)
        if candidate <= after:
            return after
        first_young = self._db.execute(
            select(func.min(seq)).where(seq.between(after + 1, candidate), ts_ms >= cutoff_ms)
        ).scalar()
        return candidate if first_young is None else int(first_young) - 1

    def oldest_hot(self, after: int) -> tuple[int, int] | None:
        """(seq, ts_ms) of the first event after ``after``, None when there is none."""
        row = self._db.execute(
            select(audit_events.c.seq, audit_events.c.ts_ms)
            .where(audit_events.c.seq > after)
            .order_by(audit_events.c.seq)
            .limit(1)
        ).first()
        return (int(row[0]), int(row[1])) if row else None

    def copy_hashes(self, first: int, last: int) -> None:
        """Keep the tree hashes of events ``first`` to ``last`` (again: idempotent)."""
        self._db.execute(_COPY_HASHES, {"first": first, "last": last})

    def mark_purged(self, *, through: int, cutoff_ms: int, now_ms: int, archive: str) -> None:
        """Events up to ``through`` (all before ``cutoff_ms``) are purged: from here on the
        triggers let them be removed."""
        self._db.execute(
            update(audit_retention)
            .where(audit_retention.c.id == 1)
            .values(
                purge_through=through,
                purge_cutoff_ms=cutoff_ms,
                last_purge_at=now_ms,
                last_archive=archive,
            )
        )

    def droppable_partitions(self, *, through: int, cutoff_ms: int) -> list[MonthPartition]:
        """PostgreSQL: the month partitions that end by ``cutoff_ms`` and hold no event past
        ``through``: a purge through ``through`` drops them whole."""
        droppable = []
        for partition in month_partitions(self._db):
            if partition.end_ms > cutoff_ms:
                continue
            newest = self._db.execute(
                select(func.max(audit_events.c.seq)).where(
                    audit_events.c.ts_ms >= partition.start_ms,
                    audit_events.c.ts_ms < partition.end_ms,
                )
            ).scalar()
            if newest is None or int(newest) <= through:
                droppable.append(partition)
        return droppable

    def remove_rows_outside(self, first: int, last: int, kept: list[MonthPartition]) -> int:
        """Delete events ``first`` to ``last`` except those in the partitions ``kept`` for
        dropping whole (their ``ts_ms`` ranges); how many went."""
        query = audit_events.delete().where(audit_events.c.seq.between(first, last))
        for partition in kept:
            query = query.where(
                or_(
                    audit_events.c.ts_ms < partition.start_ms,
                    audit_events.c.ts_ms >= partition.end_ms,
                )
            )
        return int(self._db.execute(query).rowcount or 0)

    def drop_partitions(self, partitions: list[MonthPartition], *, lock_timeout: str) -> None:
        """Detach and drop ``partitions``. Detaching locks the whole table until the
        transaction ends: it waits at most ``lock_timeout`` for readers (then the purge fails
        and is tried again), and the caller commits right after."""
        if not partitions:
            return
        self._db.execute(text(f"SET LOCAL lock_timeout = '{lock_timeout}'"))
        for partition in partitions:
            drop_month_partition(self._db, partition.name)

    def remove_rows(self, first: int, last: int) -> int:
        """Delete events ``first`` to ``last`` (their hashes were copied); how many went."""
        result = self._db.execute(
            audit_events.delete().where(audit_events.c.seq.between(first, last))
        )
        return int(result.rowcount or 0)

    def mark_removed(self, through: int) -> None:
        """Events up to ``through`` are gone from the table."""
        self._db.execute(
            update(audit_retention).where(audit_retention.c.id == 1).values(removed_through=through)
        )

    def recount_days(self, *, cutoff_ms: int, through: int) -> None:
        """Rebuild the daily rollup of the days up to that of ``cutoff_ms`` (those a purge
        removed events of) from the events past ``through`` (those it keeps): few, since they
        are older than the cutoff. Run before or after the removal."""
        end = cutoff_ms - cutoff_ms % DAY_MS + DAY_MS
        self._db.execute(
            text("DELETE FROM audit_daily_counts WHERE day < :last"), {"last": end // DAY_MS}
        )
        self._db.execute(_RECOUNT_DAYS, {"end": end, "through": through})

    def kept_hashes_between(self, first: int, last: int) -> int:
        """How many of events ``first`` to ``last`` have their hashes kept."""
        query = select(func.count()).where(audit_tree_hashes.c.seq.between(first, last))
        return int(self._db.execute(query).scalar_one())
