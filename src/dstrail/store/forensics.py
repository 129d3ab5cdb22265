"""Forensics in SQL: the follower's cursor, the grant intervals, users and data sources it
derives from the trail, and the reads that answer entitlements and timelines.

Every read is an index range: the trail by primary key after the cursor (the follower), by
``ix_audit_ts`` (a time to a seq), by subject then seq (timelines: ``ix_audit_user_seq``,
``ix_audit_run_seq``, ``ix_audit_ds_seq``); the grants by data source, by subject, by kind
(everyone-shares, with the in-force test read from the index) and the open ones (a partial
index). Nothing here scans ``audit_events``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
from sqlalchemy import (
    Connection,
    Select,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)

from dstrail.domain.forensics import (
    DataSourceRecord,
    EventRef,
    Grant,
    Ledger,
    SubjectKind,
    TrailEvent,
    UserRecord,
    Via,
)
from dstrail.domain.forensics.events import EVENT_FIELDS
from dstrail.store.schema import (
    audit_events,
    forensic_data_sources,
    forensic_grants,
    forensic_users,
    forensics_state,
)

_G = forensic_grants
_EVENT_SELECT = tuple(audit_events.c[name] for name in EVENT_FIELDS)
_IN_CHUNK: Final = 500
"""Ids per ``IN`` list."""
_SUBJECT_COLUMN: Final = {
    SubjectKind.USER: audit_events.c.performed_by,
    SubjectKind.RUN: audit_events.c.run_id,
    SubjectKind.DATA_SOURCE: audit_events.c.data_source_id,
}
_DIGEST_ROWS: Final = 5_000


@dataclass(frozen=True, slots=True)
class ForensicsState:
    """Where the derived tables stand: events ``first_seq`` to ``cursor_seq`` are in them; a
    rebuild replays up to ``replay_through`` without recording anything new."""

    cursor_seq: int
    first_seq: int
    replay_through: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class ForensicsDigest:
    """The derived tables' rows and one SHA-256 over them all (ids aside), in a fixed order."""

    grants: int
    users: int
    data_sources: int
    sha256: str


def _in_force(at_seq: int) -> Any:
    return and_(
        _G.c.granted_seq <= at_seq, or_(_G.c.revoked_seq.is_(None), _G.c.revoked_seq > at_seq)
    )


def _grant(row: Any) -> Grant:
    revoked = (
        EventRef(
            seq=int(row.revoked_seq), ts_ms=int(row.revoked_ms), by=row.revoked_by,
            kind=row.revoked_kind,
        )
        if row.revoked_seq is not None
        else None
    )  # fmt: skip
    return Grant(
        data_source_id=row.data_source_id,
        data_source_name=row.data_source_name,
        via=Via(row.via),
        subject_id=row.subject_id,
        subject_name=row.subject_name,
        granted=EventRef(
            seq=int(row.granted_seq), ts_ms=int(row.granted_ms), by=row.granted_by,
            kind=row.granted_kind,
        ),
        revoked=revoked,
        id=int(row.id),
    )  # fmt: skip


def _grant_values(grant: Grant) -> dict[str, Any]:
    revoked = grant.revoked
    return {
        "data_source_id": grant.data_source_id,
        "data_source_name": grant.data_source_name,
        "via": grant.via.value,
        "subject_id": grant.subject_id,
        "subject_name": grant.subject_name[:256],
        "granted_seq": grant.granted.seq,
        "granted_ms": grant.granted.ts_ms,
        "granted_by": grant.granted.by,
        "granted_kind": grant.granted.kind,
        "revoked_seq": revoked.seq if revoked else None,
        "revoked_ms": revoked.ts_ms if revoked else None,
        "revoked_by": revoked.by if revoked else None,
        "revoked_kind": revoked.kind if revoked else None,
    }


def _data_source(row: Any) -> DataSourceRecord:
    return DataSourceRecord(
        data_source_id=row.data_source_id,
        name=row.name,
        data_source_type=row.data_source_type,
        first_seq=int(row.first_seq),
        created_seq=row.created_seq,
        created_ms=row.created_ms,
        deleted_seq=row.deleted_seq,
        deleted_ms=row.deleted_ms,
    )


def _data_source_values(record: DataSourceRecord) -> dict[str, Any]:
    return {
        "data_source_id": record.data_source_id,
        "name": record.name,
        "data_source_type": record.data_source_type,
        "first_seq": record.first_seq,
        "created_seq": record.created_seq,
        "created_ms": record.created_ms,
        "deleted_seq": record.deleted_seq,
        "deleted_ms": record.deleted_ms,
    }


def _user(row: Any) -> UserRecord:
    return UserRecord(
        user_id=row.user_id,
        username=row.username,
        role=row.role,
        created_seq=int(row.created_seq),
        created_ms=int(row.created_ms),
    )


def _user_values(record: UserRecord) -> dict[str, Any]:
    return {
        "user_id": record.user_id,
        "username": record.username[:128],
        "role": record.role[:16],
        "created_seq": record.created_seq,
        "created_ms": record.created_ms,
    }


def _chunks(values: Sequence[str]) -> Iterator[list[str]]:
    unique = list(dict.fromkeys(values))
    for start in range(0, len(unique), _IN_CHUNK):
        yield unique[start : start + _IN_CHUNK]


class ForensicsRepository:
    """The forensics tables, in the caller's transaction."""

    def __init__(self, connection: Connection) -> None:
        self._db = connection

    # -- the cursor ------------------------------------------------------------------------

    def state(self, *, lock: bool = False) -> ForensicsState:
        """The cursor row; ``lock``: held until the transaction ends (PostgreSQL; SQLite has
        one writer), so followers take turns, a batch at a time."""
        query = select(forensics_state).where(forensics_state.c.id == 1)
        if lock and self._db.dialect.name == "postgresql":
            query = query.with_for_update()
        row = self._db.execute(query).one()
        return ForensicsState(
            cursor_seq=int(row.cursor_seq),
            first_seq=int(row.first_seq),
            replay_through=int(row.replay_through),
            updated_at=int(row.updated_at),
        )

    def advance(self, cursor_seq: int, *, now_ms: int) -> None:
        """Move the cursor (the batch up to ``cursor_seq`` is stored in this transaction)."""
        self._db.execute(
            update(forensics_state)
            .where(forensics_state.c.id == 1)
            .values(cursor_seq=cursor_seq, updated_at=now_ms)
        )

    def reset(self, *, first_seq: int, replay_through: int, now_ms: int) -> None:
        """Empty the derived tables; the follower starts again at ``first_seq`` and replays up
        to ``replay_through`` without recording anything new."""
        for table in (forensic_grants, forensic_users, forensic_data_sources):
            self._db.execute(delete(table))
        self._db.execute(
            update(forensics_state)
            .where(forensics_state.c.id == 1)
            .values(
                cursor_seq=first_seq - 1, first_seq=first_seq, replay_through=replay_through,
                updated_at=now_ms,
            )
        )  # fmt: skip

    def head(self) -> int:
        """The trail's size (a plain read of the head row: never its lock)."""
        return int(self._db.execute(text("SELECT size FROM audit_head WHERE id = 1")).scalar_one())

    def events_after(self, seq: int, *, limit: int, through: int | None = None) -> list[TrailEvent]:
        """Up to ``limit`` events after ``seq`` (up to ``through``), in seq order."""
        query = select(*_EVENT_SELECT).where(audit_events.c.seq > seq)
        if through is not None:
            query = query.where(audit_events.c.seq <= through)
        return self._events(query.order_by(audit_events.c.seq).limit(limit))

    def first_seq_after(self, seq: int) -> int | None:
        """The first event after ``seq`` still held (retention may have removed older ones)."""
        found: int | None = self._db.execute(
            select(audit_events.c.seq)
            .where(audit_events.c.seq > seq)
            .order_by(audit_events.c.seq)
            .limit(1)
        ).scalar()
        return found

    def _events(self, query: Select[Any]) -> list[TrailEvent]:
        result = self._db.execute(query)
        try:
            return [TrailEvent(*row) for row in result.cursor.fetchall()]
        finally:
            result.close()

    # -- what the follower reads and writes -------------------------------------------------

    def open_grants_of(self, data_source_ids: Sequence[str]) -> list[Grant]:
        """The grants in force now of these data sources (``ix_forensic_grants_open``)."""
        found: list[Grant] = []
        for ids in _chunks(data_source_ids):
            rows = self._db.execute(
                select(_G).where(_G.c.data_source_id.in_(ids), _G.c.revoked_seq.is_(None))
            )
            found += [_grant(row) for row in rows]
        return found

    def data_sources_by_id(self, data_source_ids: Sequence[str]) -> dict[str, DataSourceRecord]:
        """The records of those of these data sources the tables hold."""
        found: dict[str, DataSourceRecord] = {}
        table = forensic_data_sources
        for ids in _chunks(data_source_ids):
            for row in self._db.execute(select(table).where(table.c.data_source_id.in_(ids))):
                found[row.data_source_id] = _data_source(row)
        return found

    def users_by_id(self, user_ids: Sequence[str]) -> dict[str, UserRecord]:
        """The records of those of these users the tables hold."""
        found: dict[str, UserRecord] = {}
        for ids in _chunks(user_ids):
            for row in self._db.execute(
                select(forensic_users).where(forensic_users.c.user_id.in_(ids))
            ):
                found[row.user_id] = _user(row)
        return found

    def save(self, ledger: Ledger) -> None:
        """Store what ``ledger`` opened, closed and learnt, in this transaction."""
        if ledger.opened:
            self._db.execute(insert(_G), [_grant_values(grant) for grant in ledger.opened])
        if ledger.closed:
            self._db.execute(
                update(_G)
                .where(_G.c.id == bindparam("grant_id"))
                .values(
                    revoked_seq=bindparam("seq"), revoked_ms=bindparam("ms"),
                    revoked_by=bindparam("by"), revoked_kind=bindparam("kind"),
                ),
                [
                    {"grant_id": g.id, "seq": g.revoked.seq, "ms": g.revoked.ts_ms,
                     "by": g.revoked.by, "kind": g.revoked.kind}
                    for g in ledger.closed
                    if g.revoked is not None
                ],
            )  # fmt: skip
        table = forensic_data_sources
        if ledger.new_data_sources:
            self._db.execute(
                insert(table), [_data_source_values(r) for r in ledger.new_data_sources.values()]
            )
        if ledger.changed_data_sources:
            self._db.execute(
                update(table)
                .where(table.c.data_source_id == bindparam("ds_id"))
                .values(
                    created_seq=bindparam("c_seq"), created_ms=bindparam("c_ms"),
                    deleted_seq=bindparam("d_seq"), deleted_ms=bindparam("d_ms"),
                ),
                [
                    {"ds_id": r.data_source_id, "c_seq": r.created_seq, "c_ms": r.created_ms,
                     "d_seq": r.deleted_seq, "d_ms": r.deleted_ms}
                    for r in ledger.changed_data_sources.values()
                ],
            )  # fmt: skip
        if ledger.new_users:
            self._db.execute(
                insert(forensic_users), [_user_values(r) for r in ledger.new_users.values()]
            )
        if ledger.changed_users:
            self._db.execute(
                update(forensic_users)
                .where(forensic_users.c.user_id == bindparam("u_id"))
                .values(role=bindparam("u_role")),
                [{"u_id": r.user_id, "u_role": r.role[:16]} for r in ledger.changed_users.values()],
            )

    # -- entitlements -----------------------------------------------------------------------

    def seq_at(self, ts_ms: int) -> int:
        """The last event at or before ``ts_ms`` in (time, seq) order (``ix_audit_ts``); 0
        when there is none."""
        seq: int | None = self._db.execute(
            select(audit_events.c.seq)
            .where(audit_events.c.ts_ms <= ts_ms)
            .order_by(audit_events.c.ts_ms.desc(), audit_events.c.seq.desc())
            .limit(1)
        ).scalar()
        return int(seq) if seq is not None else 0

    def timestamp_of(self, seq: int) -> int | None:
        """When event ``seq`` was recorded, None when the trail holds no such event."""
        ts: int | None = self._db.execute(
            select(audit_events.c.ts_ms).where(audit_events.c.seq == seq)
        ).scalar()
        return ts

    def data_source(self, data_source_id: str) -> DataSourceRecord | None:
        """A data source the trail names, by id."""
        table = forensic_data_sources
        row = self._db.execute(
            select(table).where(table.c.data_source_id == data_source_id)
        ).first()
        return _data_source(row) if row else None

    def data_source_named(self, name: str, *, at_seq: int) -> DataSourceRecord | None:
        """The data source that had ``name`` after event ``at_seq``: of those the trail named
        so by then, the newest (a name is reused only once its holder is deleted)."""
        table = forensic_data_sources
        row = self._db.execute(
            select(table)
            .where(table.c.name == name, table.c.first_seq <= at_seq)
            .order_by(table.c.first_seq.desc())
            .limit(1)
        ).first()
        return _data_source(row) if row else None

    def grants_of_data_source(self, data_source_id: str, *, at_seq: int) -> list[Grant]:
        """Every grant of a data source in force at ``at_seq``, projects included."""
        rows = self._db.execute(
            select(_G).where(_G.c.data_source_id == data_source_id, _in_force(at_seq))
        )
        return [_grant(row) for row in rows]

    def use_grants_of_user(self, user_id: str, *, at_seq: int) -> list[Grant]:
        """The owner and user grants naming ``user_id`` in force at ``at_seq``."""
        rows = self._db.execute(
            select(_G).where(
                _G.c.subject_id == user_id,
                _G.c.via.in_([Via.OWNER.value, Via.USER.value]),
                _in_force(at_seq),
            )
        )
        return [_grant(row) for row in rows]

    def grants_of_user(self, user_id: str, *, at_seq: int) -> list[Grant]:
        """The grants that let ``user_id`` use data sources at ``at_seq``: as owner, as a listed
        user, and the everyone-shares in force when the trail saw the user created by then."""
        grants = self.use_grants_of_user(user_id, at_seq=at_seq)
        user = self.user(user_id)
        if user is not None and user.created_seq <= at_seq:
            grants += self.everyone_grants(at_seq=at_seq)
        return grants

    def everyone_grants(self, *, at_seq: int) -> list[Grant]:
        """The everyone-shares in force at ``at_seq`` (``ix_forensic_grants_via``)."""
        rows = self._db.execute(select(_G).where(_G.c.via == Via.EVERYONE.value, _in_force(at_seq)))
        return [_grant(row) for row in rows]

    def project_grants_of(self, data_source_ids: Sequence[str], *, at_seq: int) -> list[Grant]:
        """The project attachments of these data sources in force at ``at_seq``."""
        found: list[Grant] = []
        for ids in _chunks(data_source_ids):
            rows = self._db.execute(
                select(_G).where(
                    _G.c.data_source_id.in_(ids), _G.c.via == Via.PROJECT.value, _in_force(at_seq)
                )
            )
            found += [_grant(row) for row in rows]
        return found

    def grant_in_force(self, data_source_id: str, user_id: str, *, at_seq: int) -> bool:
        """Whether ``user_id`` could use the data source after event ``at_seq``: owner, listed,
        or an everyone-share while the user existed."""
        direct = self._db.execute(
            select(_G.c.id)
            .where(
                _G.c.data_source_id == data_source_id,
                _G.c.via.in_([Via.OWNER.value, Via.USER.value]),
                _G.c.subject_id == user_id,
                _in_force(at_seq),
            )
            .limit(1)
        ).first()
        if direct is not None:
            return True
        user = self.user(user_id)
        if user is None or user.created_seq > at_seq:
            return False
        shared = self._db.execute(
            select(_G.c.id)
            .where(
                _G.c.data_source_id == data_source_id,
                _G.c.via == Via.EVERYONE.value,
                _in_force(at_seq),
            )
            .limit(1)
        ).first()
        return shared is not None

    def users_created_by(self, at_seq: int) -> list[UserRecord]:
        """The users the trail saw created at or before ``at_seq``, by username."""
        rows = self._db.execute(
            select(forensic_users)
            .where(forensic_users.c.created_seq <= at_seq)
            .order_by(forensic_users.c.username)
        )
        return [_user(row) for row in rows]

    def user(self, user_id: str) -> UserRecord | None:
        """A user the trail saw created, by id."""
        row = self._db.execute(
            select(forensic_users).where(forensic_users.c.user_id == user_id)
        ).first()
        return _user(row) if row else None

    def user_named(self, username: str) -> UserRecord | None:
        """A user the trail saw created, by username."""
        row = self._db.execute(
            select(forensic_users)
            .where(forensic_users.c.username == username)
            .order_by(forensic_users.c.created_seq.desc())
            .limit(1)
        ).first()
        return _user(row) if row else None

    def users_by_ids(self, user_ids: Iterable[str]) -> dict[str, UserRecord]:
        """Users the trail saw created, by id (for names in answers)."""
        return self.users_by_id(list(user_ids))

    # -- timelines --------------------------------------------------------------------------

    def events_of(
        self, kind: SubjectKind, value: str, *, after: int, through: int, limit: int
    ) -> list[TrailEvent]:
        """Up to ``limit`` events of a user (performed by), a run or a data source with a seq
        after ``after`` up to ``through``, in seq order (the subject's ``..._seq`` index)."""
        column = _SUBJECT_COLUMN[kind]
        query = (
            select(*_EVENT_SELECT)
            .where(column == value, audit_events.c.seq > after, audit_events.c.seq <= through)
            .order_by(audit_events.c.seq)
            .limit(limit)
        )
        return self._events(query)

    def events_at(self, seqs: Sequence[int]) -> list[TrailEvent]:
        """The events with these seqs (those the trail holds), in seq order."""
        if not seqs:
            return []
        query = (
            select(*_EVENT_SELECT)
            .where(audit_events.c.seq.in_(sorted(set(seqs))))
            .order_by(audit_events.c.seq)
        )
        return self._events(query)

    def grant_change_seqs(
        self, subject_id: str, *, vias: Sequence[Via], after: int, through: int, limit: int
    ) -> list[int]:
        """The first ``limit`` seqs after ``after`` up to ``through`` that opened or closed a
        grant naming ``subject_id`` through one of ``vias``, ascending."""
        found: set[int] = set()
        via_values = [via.value for via in vias]
        for column in (_G.c.granted_seq, _G.c.revoked_seq):
            rows = self._db.execute(
                select(column)
                .where(
                    _G.c.subject_id == subject_id,
                    _G.c.via.in_(via_values),
                    column > after,
                    column <= through,
                )
                .order_by(column)
                .limit(limit)
            )
            found.update(int(seq) for (seq,) in rows)
        return sorted(found)[:limit]

    def grants_moved_at(
        self,
        seqs: Sequence[int],
        *,
        subject_id: str | None = None,
        data_source_id: str | None = None,
        vias: Sequence[Via] | None = None,
    ) -> list[Grant]:
        """The grants (of a subject, or of a data source) opened or closed by these events."""
        if not seqs or (subject_id is None and data_source_id is None):
            return []
        chosen = sorted(set(seqs))
        condition: list[Any] = [or_(_G.c.granted_seq.in_(chosen), _G.c.revoked_seq.in_(chosen))]
        if subject_id is not None:
            condition.append(_G.c.subject_id == subject_id)
        if data_source_id is not None:
            condition.append(_G.c.data_source_id == data_source_id)
        if vias is not None:
            condition.append(_G.c.via.in_([via.value for via in vias]))
        return [_grant(row) for row in self._db.execute(select(_G).where(*condition))]

    def run_seen(self, run_id: str) -> bool:
        """Whether the trail names run ``run_id`` (``ix_audit_run_seq``)."""
        row = self._db.execute(
            select(audit_events.c.seq).where(audit_events.c.run_id == run_id).limit(1)
        ).first()
        return row is not None

    # -- digest -----------------------------------------------------------------------------

    def digest(self) -> ForensicsDigest:
        """The derived tables' rows, each in a fixed order and without row ids, hashed."""
        sha = hashlib.sha256()
        grant_columns = [c for c in _G.columns if c.name != "id"]
        # Text in byte order on both databases (PostgreSQL would otherwise use its locale's).
        binary = _in_byte_order if self._db.dialect.name == "postgresql" else _same
        counts = []
        for name, query in (
            (
                "grants",
                select(*grant_columns).order_by(
                    _G.c.granted_seq,
                    binary(_G.c.via),
                    binary(_G.c.subject_id),
                    binary(_G.c.data_source_id),
                ),
            ),
            ("users", select(forensic_users).order_by(binary(forensic_users.c.user_id))),
            (
                "dataSources",
                select(forensic_data_sources).order_by(
                    binary(forensic_data_sources.c.data_source_id)
                ),
            ),
        ):
            sha.update(name.encode() + b"\n")
            rows = 0
            result = self._db.execute(query.execution_options(yield_per=_DIGEST_ROWS))
            for row in result:
                sha.update(orjson.dumps([_plain(value) for value in row]) + b"\n")
                rows += 1
            counts.append(rows)
        return ForensicsDigest(
            grants=counts[0], users=counts[1], data_sources=counts[2], sha256=sha.hexdigest()
        )

    def grant_count(self) -> int:
        """How many grant intervals the tables hold."""
        return int(self._db.execute(select(func.count()).select_from(_G)).scalar_one())


def _same(column: Any) -> Any:
    return column


def _in_byte_order(column: Any) -> Any:
    return column.collate("C")


def _plain(value: object) -> object:
    """A column value as the digest encodes it, the same from both databases."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    return str(value)
