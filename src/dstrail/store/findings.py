"""Findings and the detection rules' state in SQL, in the caller's transaction.

The follower's batch reads the state of its users, data sources and (user, data source) pairs
in one statement each (the keys as one JSON array on SQLite, one array on PostgreSQL, so the
statement text never changes), the grants it asks about from the entitlement tables, and
writes the state back as upserts (``executemany`` on SQLite, one statement of JSON rows on
PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import Any, Final

import orjson
from sqlalchemy import Connection, Table, delete, func, select, text, tuple_

from dstrail.domain.forensics.findings import (
    Acknowledgement,
    Finding,
    FindingFilter,
    FindingView,
    Rule,
    Severity,
)
from dstrail.domain.forensics.rules import GrantSpan, PairState, SourceState, UserState
from dstrail.store.schema import (
    forensic_finding_events,
    forensic_findings,
    forensic_rule_pairs,
    forensic_rule_sources,
    forensic_rule_users,
)

_F = forensic_findings.c
_E = forensic_finding_events.c
_FINDING_COLUMNS = (
    _F.id, _F.rule, _F.severity, _F.summary, _F.user_id, _F.username, _F.data_source_id,
    _F.data_source_name, _F.run_id, _F.seqs, _F.ts_ms, _F.details,
    _E.raised_seq, _E.ack_by, _E.ack_username, _E.ack_ms, _E.ack_note, _E.ack_seq,
)  # fmt: skip
_JOINED = forensic_findings.outerjoin(forensic_finding_events, _E.finding_id == _F.id)

DERIVED_TABLES: Final = (
    forensic_findings,
    forensic_rule_pairs,
    forensic_rule_users,
    forensic_rule_sources,
)
"""What a rebuild empties and the follower fills again (never ``forensic_finding_events``)."""


def _names(table: Table) -> list[str]:
    return [column.name for column in table.columns]


class _Upsert:
    """``INSERT ... ON CONFLICT (key) DO UPDATE`` of whole rows of a table, in each driver's
    fastest form: ``executemany`` (SQLite), one statement of JSON rows (PostgreSQL)."""

    def __init__(self, table: Table, key: str) -> None:
        names = _names(table)
        columns = ", ".join(names)
        updates = ", ".join(f"{name} = excluded.{name}" for name in names if name != key)
        marks = ", ".join(f":{name}" for name in names)
        self.sqlite = (
            f"INSERT INTO {table.name} ({columns}) VALUES ({marks}) "
            f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
        )
        self.postgresql = (
            f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM "
            f"json_populate_recordset(CAST(NULL AS {table.name}), CAST(%(rows)s AS json)) "
            f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
        )

    def run(self, db: Connection, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if db.dialect.name == "postgresql":
            db.exec_driver_sql(self.postgresql, {"rows": orjson.dumps(rows).decode()})
        else:
            db.exec_driver_sql(self.sqlite, rows)


_PAIRS = _Upsert(forensic_rule_pairs, "pair")
_USERS = _Upsert(forensic_rule_users, "user_id")
_SOURCES = _Upsert(forensic_rule_sources, "data_source_id")
_FINDINGS = _Upsert(forensic_findings, "id")


def _keyed(table: str, columns: str, key: str, *, postgresql: bool) -> str:
    """A select of the rows whose ``key`` is in one parameter ``keys``."""
    if postgresql:
        return f"SELECT {columns} FROM {table} WHERE {key} = ANY(%(keys)s)"
    return f"SELECT {columns} FROM {table} WHERE {key} IN (SELECT value FROM json_each(:keys))"


_GRANTS = (
    "SELECT data_source_id, via, subject_id, granted_seq, granted_ms, revoked_seq, revoked_ms, "
    "revoked_kind FROM forensic_grants WHERE data_source_id {keys} "
    "AND via IN ('owner', 'user', 'everyone') AND granted_seq <= {last} "
    "AND (revoked_seq IS NULL OR revoked_seq > {first} OR revoked_ms >= {since})"
)


class FindingRepository:
    """The findings, what the trail holds of them, and the rules' state."""

    def __init__(self, connection: Connection) -> None:
        self._db = connection
        self._postgresql = connection.dialect.name == "postgresql"

    # -- the rules' state --------------------------------------------------------------------

    def _rows(self, table: Table, key: str, keys: Collection[str]) -> list[Any]:
        if not keys:
            return []
        sql = _keyed(table.name, ", ".join(_names(table)), key, postgresql=self._postgresql)
        values: object = list(keys) if self._postgresql else orjson.dumps(list(keys)).decode()
        return list(self._db.exec_driver_sql(sql, {"keys": values}))

    def pair_states(self, keys: Collection[str]) -> dict[str, PairState]:
        """The state of these (user, data source) pairs (``rules.pair_key``)."""
        return {row[0]: _pair_state(row) for row in self._rows(forensic_rule_pairs, "pair", keys)}

    def user_states(self, user_ids: Collection[str]) -> dict[str, UserState]:
        """The state of these users."""
        rows = self._rows(forensic_rule_users, "user_id", user_ids)
        return {row[0]: _user_state(row) for row in rows}

    def source_states(self, data_source_ids: Collection[str]) -> dict[str, SourceState]:
        """The state of these data sources."""
        rows = self._rows(forensic_rule_sources, "data_source_id", data_source_ids)
        return {row[0]: _source_state(row) for row in rows}

    def holds_creations_before_grants(self) -> bool:
        """Whether the rules saw a data source created before the trail recorded initial
        grants (``ix_forensic_rule_sources_before_grants``)."""
        row = self._db.exec_driver_sql(
            "SELECT 1 FROM forensic_rule_sources "
            "WHERE created_ms >= 0 AND NOT grants_recorded LIMIT 1"
        ).first()
        return row is not None

    def save_states(
        self,
        pairs: dict[str, PairState],
        users: dict[str, UserState],
        sources: dict[str, SourceState],
    ) -> None:
        """Write these states (inserted or replaced)."""
        _PAIRS.run(self._db, [
            {"pair": key, "last_ms": s.last_ms, "last_seq": s.last_seq, "hour": s.hour,
             "hour_count": s.hour_count, "hour_first_seq": s.hour_first_seq,
             "hour_fired": s.hour_fired, "peak": s.peak, "peak_hour": s.peak_hour,
             "hours": s.hours, "alarm_hour": s.alarm_hour, "lost_seq": s.lost_seq}
            for key, s in pairs.items()
        ])  # fmt: skip
        _USERS.run(self._db, [
            {"user_id": key, "hours": ",".join(map(str, s.hours)), "slots": s.slots,
             "days": s.days, "last_slot": s.last_slot, "unusual_ms": s.unusual_ms,
             "refusals": orjson.dumps(s.refusals).decode(), "burst_until": s.burst_until}
            for key, s in users.items()
        ])  # fmt: skip
        _SOURCES.run(self._db, [
            {"data_source_id": key, "created_ms": s.created_ms,
             "credential_type": s.credential_type, "is_everyone": s.is_everyone,
             "accesses": s.accesses, "run_types": orjson.dumps(sorted(s.run_types)).decode(),
             "transfer_seq": s.transfer_seq, "transfer_ms": s.transfer_ms,
             "transfer_from": s.transfer_from, "transfer_to": s.transfer_to,
             "refusals": orjson.dumps(s.refusals).decode(), "burst_until": s.burst_until,
             "grants_recorded": s.grants_recorded}
            for key, s in sources.items()
        ])  # fmt: skip

    # -- what the entitlement tables say -----------------------------------------------------

    def grants(
        self, data_source_ids: Collection[str], *, first_seq: int, last_seq: int, since_ms: int
    ) -> list[tuple[str, GrantSpan]]:
        """The use grants (owner, user, everyone) of these data sources in force at some seq
        from ``first_seq`` to ``last_seq``, or revoked at ``since_ms`` or later."""
        if not data_source_ids:
            return []
        if self._postgresql:
            sql = _GRANTS.format(
                keys="= ANY(%(keys)s)", last="%(last)s", first="%(first)s", since="%(since)s"
            )
            keys: object = list(data_source_ids)
        else:
            sql = _GRANTS.format(
                keys="IN (SELECT value FROM json_each(:keys))", last=":last", first=":first",
                since=":since",
            )  # fmt: skip
            keys = orjson.dumps(list(data_source_ids)).decode()
        rows = self._db.exec_driver_sql(
            sql, {"keys": keys, "last": last_seq, "first": first_seq, "since": since_ms}
        )
        return [
            (ds, GrantSpan(via, subject, granted_seq, granted_ms, revoked_seq, revoked_ms, kind))
            for ds, via, subject, granted_seq, granted_ms, revoked_seq, revoked_ms, kind in rows
        ]

    def users_created(self, user_ids: Collection[str]) -> dict[str, tuple[int, int]]:
        """(seq, ms) of the creation of each of these users the trail holds."""
        if not user_ids:
            return {}
        sql = _keyed(
            "forensic_users", "user_id, created_seq, created_ms", "user_id",
            postgresql=self._postgresql,
        )  # fmt: skip
        values: object = (
            list(user_ids) if self._postgresql else orjson.dumps(list(user_ids)).decode()
        )
        rows = self._db.exec_driver_sql(sql, {"keys": values})
        return {user_id: (int(seq), int(ms)) for user_id, seq, ms in rows}

    def replay_through(self) -> int:
        """Events up to this seq are being replayed by a rebuild: their findings are found
        again, and recorded in the trail already (or never)."""
        value = self._db.execute(
            text("SELECT replay_through FROM forensics_state WHERE id = 1")
        ).scalar()
        return int(value or 0)

    # -- findings ----------------------------------------------------------------------------

    def add(self, findings: Sequence[Finding]) -> None:
        """Store findings (one found again replaces itself)."""
        _FINDINGS.run(self._db, [
            {"id": f.id, "rule": f.rule.value, "severity": f.severity.value,
             "summary": f.summary, "user_id": f.user_id, "username": f.username,
             "data_source_id": f.data_source_id, "data_source_name": f.data_source_name,
             "run_id": f.run_id, "seqs": orjson.dumps(f.seqs).decode(),
             "first_seq": f.first_seq, "last_seq": f.last_seq, "ts_ms": f.ts_ms,
             "details": orjson.dumps(f.details, option=orjson.OPT_SORT_KEYS).decode()}
            for f in findings
        ])  # fmt: skip

    def raised(self, finding_ids: Collection[str]) -> set[str]:
        """Which of these findings have their ``ForensicFindingRaised`` event."""
        if not finding_ids:
            return set()
        rows = self._db.execute(
            select(_E.finding_id).where(
                _E.finding_id.in_(list(finding_ids)), _E.raised_seq.isnot(None)
            )
        )
        return {str(row[0]) for row in rows}

    def note_raised(self, raised: Sequence[tuple[str, int]], *, ms: int) -> None:
        """Each finding's ``ForensicFindingRaised`` event: (finding id, its seq) pairs."""
        if not raised:
            return
        self._db.execute(
            text(
                "INSERT INTO forensic_finding_events (finding_id, raised_seq, raised_ms) "
                "VALUES (:id, :seq, :ms) ON CONFLICT (finding_id) DO UPDATE SET "
                "raised_seq = excluded.raised_seq, raised_ms = excluded.raised_ms"
            ),
            [{"id": finding_id, "seq": seq, "ms": ms} for finding_id, seq in raised],
        )

    def acknowledge(self, finding_id: str, ack: Acknowledgement) -> bool:
        """Note the acknowledgement; False (nothing changed) when it had one already."""
        result = self._db.execute(
            text(
                "INSERT INTO forensic_finding_events (finding_id, ack_by, ack_username, ack_ms, "
                "ack_note, ack_seq) VALUES (:id, :by, :username, :ms, :note, :seq) "
                "ON CONFLICT (finding_id) DO UPDATE SET ack_by = excluded.ack_by, "
                "ack_username = excluded.ack_username, ack_ms = excluded.ack_ms, "
                "ack_note = excluded.ack_note, ack_seq = excluded.ack_seq "
                "WHERE forensic_finding_events.ack_seq IS NULL"
            ),
            {"id": finding_id, "by": ack.by, "username": ack.by_username, "ms": ack.at_ms,
             "note": ack.note, "seq": ack.seq},
        )  # fmt: skip
        return bool(result.rowcount)

    def by_id(self, finding_id: str) -> FindingView | None:
        """One finding, with what the trail holds of it."""
        row = self._db.execute(select(*_FINDING_COLUMNS).select_from(_JOINED).where(
            _F.id == finding_id
        )).first()  # fmt: skip
        return _view(row) if row is not None else None

    def page(self, wanted: FindingFilter) -> list[FindingView]:
        """Up to ``wanted.limit`` + 1 findings, newest first (the seq of the event that fired
        each, then id), after its cursor."""
        query = select(*_FINDING_COLUMNS).select_from(_JOINED)
        conditions: list[Any] = []
        if wanted.rules:
            conditions.append(_F.rule.in_([r.value for r in wanted.rules]))
        if wanted.severities:
            conditions.append(_F.severity.in_([s.value for s in wanted.severities]))
        if wanted.user_ids:
            conditions.append(_F.user_id.in_(list(wanted.user_ids)))
        if wanted.usernames:
            conditions.append(_F.username.in_(list(wanted.usernames)))
        if wanted.data_source_ids:
            conditions.append(_F.data_source_id.in_(list(wanted.data_source_ids)))
        if wanted.data_source_names:
            conditions.append(_F.data_source_name.in_(list(wanted.data_source_names)))
        if wanted.acknowledged is True:
            conditions.append(_E.ack_seq.isnot(None))
        elif wanted.acknowledged is False:
            conditions.append(_E.ack_seq.is_(None))
        if wanted.start_ms is not None:
            conditions.append(_F.ts_ms >= wanted.start_ms)
        if wanted.end_ms is not None:
            conditions.append(_F.ts_ms <= wanted.end_ms)
        if wanted.cursor is not None:
            at = wanted.cursor
            conditions.append(tuple_(_F.last_seq, _F.id) < tuple_(at.seq, at.id))
        rows = self._db.execute(
            query.where(*conditions)
            .order_by(_F.last_seq.desc(), _F.id.desc())
            .limit(wanted.limit + 1)
        )
        return [_view(row) for row in rows]

    def count(self) -> int:
        """How many findings there are."""
        return int(
            self._db.execute(select(func.count()).select_from(forensic_findings)).scalar_one()
        )

    # -- rebuilds ----------------------------------------------------------------------------

    def reset(self) -> None:
        """Empty the derived tables (findings and the rules' state), for a replay."""
        for table in DERIVED_TABLES:
            self._db.execute(delete(table))

    def derived_rows(self) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """(table, row) of every derived row, each table in key order (for a digest)."""
        for table in DERIVED_TABLES:
            key = next(iter(table.primary_key.columns))
            result = self._db.execution_options(stream_results=True, yield_per=5000).execute(
                select(*table.columns).order_by(key)
            )
            for row in result:
                yield table.name, tuple(row)


def _refusals(text: str) -> list[tuple[int, int, str]]:
    return [(int(ts), int(seq), str(other)) for ts, seq, other in orjson.loads(text)]


def _pair_state(row: Any) -> PairState:
    (_, last_ms, last_seq, hour, hour_count, hour_first_seq, hour_fired, peak, peak_hour,
     hours, alarm_hour, lost_seq) = row  # fmt: skip
    return PairState(
        last_ms=last_ms, last_seq=last_seq, hour=hour, hour_count=hour_count,
        hour_first_seq=hour_first_seq, hour_fired=bool(hour_fired), peak=peak,
        peak_hour=peak_hour, hours=hours, alarm_hour=alarm_hour, lost_seq=lost_seq,
    )  # fmt: skip


def _user_state(row: Any) -> UserState:
    _, hours, slots, days, last_slot, unusual_ms, refusals, burst_until = row
    return UserState(
        hours=[int(n) for n in hours.split(",")], slots=slots, days=days, last_slot=last_slot,
        unusual_ms=unusual_ms, refusals=_refusals(refusals), burst_until=burst_until,
    )  # fmt: skip


def _source_state(row: Any) -> SourceState:
    (_, created_ms, credential_type, is_everyone, accesses, run_types, transfer_seq,
     transfer_ms, transfer_from, transfer_to, refusals, burst_until,
     grants_recorded) = row  # fmt: skip
    return SourceState(
        created_ms=created_ms, credential_type=credential_type, is_everyone=bool(is_everyone),
        accesses=accesses, run_types=set(orjson.loads(run_types)), transfer_seq=transfer_seq,
        transfer_ms=transfer_ms, transfer_from=transfer_from, transfer_to=transfer_to,
        refusals=_refusals(refusals), burst_until=burst_until,
        grants_recorded=bool(grants_recorded),
    )  # fmt: skip


def _view(row: Any) -> FindingView:
    (
        id_, rule, severity, summary, user_id, username, ds_id, ds_name, run_id, seqs, ts_ms,
        details, raised_seq, ack_by, ack_username, ack_ms, ack_note, ack_seq,
    ) = row  # fmt: skip
    finding = Finding(
        id=id_, rule=Rule(rule), severity=Severity(severity), summary=summary, user_id=user_id,
        username=username, data_source_id=ds_id, data_source_name=ds_name, run_id=run_id,
        seqs=tuple(orjson.loads(seqs)), ts_ms=int(ts_ms), details=orjson.loads(details),
    )  # fmt: skip
    acknowledgement = None
    if ack_seq is not None:
        acknowledgement = Acknowledgement(
            by=ack_by, by_username=ack_username or "", at_ms=int(ack_ms), note=ack_note or "",
            seq=int(ack_seq),
        )  # fmt: skip
    return FindingView(
        finding=finding,
        raised_seq=int(raised_seq) if raised_seq is not None else None,
        acknowledgement=acknowledgement,
    )
