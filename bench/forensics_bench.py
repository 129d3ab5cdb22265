"""Forensics at scale: a trail of N events (default 1,000,000; ``--events 10000000``) over 182
days, on SQLite and PostgreSQL (``--only``), built through the bulk path of ``audit_bench.py
--scale`` (sealed batches: leaf hashes, subtrees, signed checkpoints; ``executemany`` on
SQLite, ``COPY`` on PostgreSQL, indexes rebuilt after), with data source lifecycles mixed in so
that grants exist: 500 data sources created at the start, then about 2% of the events are
permission changes (users added and removed, everyone-shares made and taken back), ownership
transfers, project attachments and detachments, and deletions with the name given again to a
new data source; the rest are accesses from 4,000 runs of 200 users, each by a user who can use
the data source at that moment (3% are refused attempts, by users who cannot).

Then:

(f) the follower from event 1 to the head (events/s), with the consumers ``dstrail serve``
    runs (the detection rules), or the grants alone (``--grants-only``); on PostgreSQL with a
    ``VACUUM (ANALYZE)`` of the derived tables every ``VACUUM_EVERY`` events, counted;
(q) each answer timed in process (the service call: catching up, reading, naming) beside a
    raw indexed SQL query over the same events, interleaved, medians and p90s:
    - entitlements of a data source at T (the middle of the span), beside the data source's
      granting events read up to T (``ix_audit_ds_seq``), replayed;
    - entitlements of a user at T, beside every granting event up to T (``ix_audit_kind_ts``)
      replayed for that user;
    - the first page (100) of the timelines of a user, a run and a data source, beside the
      subject's first 100 events (``ix_audit_user_seq``, ``ix_audit_run_seq``,
      ``ix_audit_ds_seq``);
    - with the rules: the first page (100) of the findings, newest first (all, of the rule
      that found most and of the one that found least, of the user of the newest finding by
      id and by name), and the newest finding with its linked events, beside the same rows
      read raw.

The answers are checked against the raw replays before they are timed. Target: every answer
under a second at 10,000,000 events.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson
import psycopg

from audit_bench import (
    Backend,
    Catalog,
    PostgreSQLBackend,
    SQLiteBackend,
    _count_days,
    bench_admin,
    load_average,
    make_catalog,
    median,
    p90,
    pg_reachable,
    say,
)
from dstrail.context import Dstrail, open_dstrail
from dstrail.domain.forensics.entitlements import GRANTING_KINDS
from dstrail.domain.forensics.findings import FindingFilter, Rule
from dstrail.domain.forensics.queries import EntitlementsQuery, TimelineQuery
from dstrail.domain.timestamps import DAY_MS
from dstrail.domain.trail import EventKind
from dstrail.domain.users import OPERATOR
from dstrail.services.finding_answers import finding_with_events, findings_page
from dstrail.services.forensic_answers import (
    DataSourceEntitlements,
    UserEntitlements,
    entitlements,
    timeline,
)
from dstrail.services.forensics import Follower
from dstrail.settings import Settings
from long_reads import SPAN_DAYS, interleaved
from scale_bench import Sink
from support import Sealer, raw_row

DEFAULT_EVENTS: Final = 1_000_000
BATCH_ROWS: Final = 200_000
LIFECYCLE_SHARE: Final = 0.02
REFUSED_SHARE: Final = 0.03
PAGE: Final = 100
_GRANTING = sorted(GRANTING_KINDS)


# -- the trail ----------------------------------------------------------------------------------


def _hex(rng: random.Random) -> str:
    return f"{rng.getrandbits(96):024x}"


@dataclass
class Source:
    """A data source of the generated trail, as its events left it."""

    id: str
    name: str
    type: str
    owner: int
    users: set[int] = field(default_factory=set)
    everyone: bool = False
    projects: set[str] = field(default_factory=set)


class Lifecycles:
    """Makes the events, one at a time, keeping the data sources' state so that each change
    is one the services would record (the metadata keys theirs)."""

    def __init__(self, catalog: Catalog, rng: random.Random) -> None:
        self.catalog, self.rng = catalog, rng
        self.users = catalog.users
        self.projects = sorted({run[2] for run in catalog.runs})
        self.sources = [
            Source(ds_id, name, ds_type, owner=rng.randrange(len(self.users)))
            for ds_id, name, ds_type in catalog.sources
        ]
        for source in self.sources:
            source.users = set(rng.sample(range(len(self.users)), rng.randrange(0, 4)))
            source.everyone = rng.random() < 0.2
        self._setup = self._setup_events()

    def _setup_events(self) -> Iterator[tuple[Any, ...]]:
        for user_id, username in self.users:
            yield self._platform(
                EventKind.USER_CREATED, {"userId": user_id, "username": username, "role": "User"}
            )
        for source in self.sources:
            yield self._create(source)

    def _platform(self, kind: EventKind, metadata: dict[str, str]) -> tuple[Any, ...]:
        return (kind.value, "", "", "", OPERATOR.id, OPERATOR.username, None, None, metadata)

    def _of(
        self,
        kind: EventKind,
        source: Source,
        actor: int,
        metadata: dict[str, str],
        run: tuple[str, str, str, str] | None = None,
        project_id: str | None = None,
    ) -> tuple[Any, ...]:
        user_id, username = self.users[actor]
        return (
            kind.value, source.id, source.name, source.type, user_id, username,
            run[0] if run else None, run[2] if run else project_id, metadata,
        )  # fmt: skip

    def _create(self, source: Source) -> tuple[Any, ...]:
        return self._of(
            EventKind.CREATE_DATA_SOURCE, source, source.owner,
            {
                "credentialType": "Shared",
                "isEveryone": "true" if source.everyone else "false",
                "ownerId": self.users[source.owner][0],
                "userIds": ",".join(sorted(self.users[u][0] for u in source.users)),
                "projectIds": "",
            },
        )  # fmt: skip

    def next(self) -> tuple[Any, ...]:
        """(kind, ds id, ds name, ds type, performed by, username, run id, project id,
        metadata) of the next event."""
        setup = next(self._setup, None)
        if setup is not None:
            return setup
        rng = self.rng
        source = rng.choice(self.sources)
        if rng.random() < LIFECYCLE_SHARE:
            return self._change(source)
        run = rng.choice(self.catalog.runs)
        metadata = {
            "runType": run[1], "projectId": run[2], "runId": run[0], "dataPlaneId": run[3],
            "clientSource": "Python", **self._operation(source),
        }  # fmt: skip
        if rng.random() < REFUSED_SHARE:
            metadata["reason"] = "notPermitted"
            return self._of(EventKind.ACCESS_REFUSED, source, self._outsider(source), metadata)
        return self._of(
            EventKind.ACCESS_DATA_SOURCE, source, self._entitled(source), metadata, run=run
        )

    def _entitled(self, source: Source) -> int:
        """A user who can use ``source`` (as the data path lets through)."""
        if source.everyone:
            return self.rng.randrange(len(self.users))
        return self.rng.choice([source.owner, *sorted(source.users)])

    def _outsider(self, source: Source) -> int:
        """A user the data path refuses: one without a grant, or anyone when it is shared with
        everyone (a refusal then stands for one on other grounds, a wrong operation say)."""
        if source.everyone or len({source.owner, *source.users}) >= len(self.users):
            return self.rng.randrange(len(self.users))
        while True:
            actor = self.rng.randrange(len(self.users))
            if actor != source.owner and actor not in source.users:
                return actor

    def _operation(self, source: Source) -> dict[str, str]:
        rng = self.rng
        pick = rng.random()
        if pick < 0.6:
            return {
                "operation": "objectKey",
                "objectKey": f"{source.name}/part-{rng.randrange(10_000):05d}.parquet",
                "isReadWrite": "false",
            }
        if pick < 0.8:
            return {"operation": "listObjects", "prefix": f"{source.name}/{rng.randrange(50)}/"}
        return {"operation": "query", "queryDigest": f"{rng.getrandbits(256):064x}"}

    def _change(self, source: Source) -> tuple[Any, ...]:
        rng = self.rng
        pick = rng.random()
        actor = source.owner
        if pick < 0.45:
            added = {u for u in rng.sample(range(len(self.users)), 2) if u not in source.users}
            removed = set(rng.sample(sorted(source.users), min(len(source.users), 1)))
            everyone = (not source.everyone) if rng.random() < 0.3 else source.everyone
            source.users = (source.users - removed) | added
            source.everyone = everyone
            return self._of(
                EventKind.CHANGE_OF_PERMISSIONS, source, actor,
                {
                    "isEveryone": "true" if everyone else "false",
                    "addedUserIds": ",".join(sorted(self.users[u][0] for u in added)),
                    "removedUserIds": ",".join(sorted(self.users[u][0] for u in removed)),
                },
            )  # fmt: skip
        if pick < 0.75:
            project = rng.choice(self.projects)
            name = {"projectId": project, "projectName": f"project-{project[-5:]}"}
            if project in source.projects:
                source.projects.discard(project)
                kind = EventKind.DISSOCIATED_FROM_PROJECT
            else:
                source.projects.add(project)
                kind = EventKind.ASSOCIATED_TO_PROJECT
            return self._of(kind, source, actor, name, project_id=project)
        if pick < 0.9:
            new = rng.choice([u for u in range(len(self.users)) if u != source.owner])
            previous = source.owner
            source.owner = new
            return self._of(
                EventKind.CHANGE_OF_OWNERSHIP, source, actor,
                {
                    "previousOwnerId": self.users[previous][0],
                    "previousOwnerUsername": self.users[previous][1],
                    "newOwnerId": self.users[new][0],
                    "newOwnerUsername": self.users[new][1],
                },
            )  # fmt: skip
        # deleted, and its name given to a new data source at once (the next event)
        deleted = self._of(EventKind.DELETE_DATA_SOURCE, source, actor, {})
        index = self.sources.index(source)
        fresh = Source(_hex(rng), source.name, source.type, owner=rng.randrange(len(self.users)))
        fresh.everyone = rng.random() < 0.2
        self.sources[index] = fresh
        self._setup = iter([self._create(fresh)])
        return deleted


def trail_batches(
    catalog: Catalog, count: int, *, now_ms: int, seed: int, first_seq: int
) -> Iterator[list[tuple[Any, ...]]]:
    """``count`` events over the ``SPAN_DAYS`` before ``now_ms``, oldest first, as raw rows
    (``support.RAW_COLUMNS``), ``BATCH_ROWS`` at a time, numbered from ``first_seq``."""
    rng = random.Random(seed)
    lifecycles = Lifecycles(catalog, rng)
    span = SPAN_DAYS * DAY_MS
    first_ms = now_ms - span
    for done in range(0, count, BATCH_ROWS):
        rows = min(BATCH_ROWS, count - done)
        low = first_ms + span * done // count
        high = first_ms + span * (done + rows) // count
        stamps = sorted(rng.randrange(low, high) for _ in range(rows))
        batch = []
        for i, ts_ms in enumerate(stamps):
            kind, ds_id, name, ds_type, by, username, run_id, project_id, metadata = (
                lifecycles.next()
            )
            batch.append(
                raw_row(
                    seq=first_seq + done + i, ts_ms=ts_ms, event_kind=kind, data_source_id=ds_id,
                    data_source_name=name, data_source_type=ds_type, performed_by=by,
                    performed_by_username=username, run_id=run_id, project_id=project_id,
                    metadata=orjson.dumps({"performedByUsername": username, **metadata}).decode(),
                )
            )  # fmt: skip
        yield batch


@dataclass
class Store:
    """One database, built."""

    backend: Backend
    dstrail: Dstrail
    conn: Any
    sink: Sink


def build(
    backends: list[Backend], catalog: Catalog, events: int, seed: int, workdir: Path
) -> tuple[list[Store], int]:
    """Each database migrated, then the same sealed events written to each; the first ms."""
    now_ms = time.time_ns() // 1_000_000
    first_ms = now_ms - SPAN_DAYS * DAY_MS
    stores = []
    for backend in backends:
        backend.create()
        dstrail = open_dstrail(
            Settings(
                data_dir=workdir / f"forensics-{backend.name.lower()}", database_url=backend.url
            )
        )
        conn = backend.raw()
        stores.append(Store(backend, dstrail, conn, Sink(backend, dstrail, conn)))
    size, packed = stores[0].backend.raw_select(
        stores[0].conn, "SELECT size, frontier FROM audit_head WHERE id = 1", []
    )[0]
    frontier = [bytes(packed or b"")[i : i + 32] for i in range(0, len(packed or b""), 32)]
    sealer = Sealer(size=int(size), frontier=frontier)
    for store in stores:
        store.sink.start(first_ms, now_ms)
    counts: collections.Counter[tuple[int, str]] = collections.Counter()
    started, total = time.perf_counter(), 0
    for batch in trail_batches(catalog, events, now_ms=now_ms, seed=seed, first_seq=int(size) + 1):
        sealed = sealer.seal(batch)
        for store in stores:
            store.sink.write(sealed)
        _count_days(counts, batch)
        total += len(batch)
    sealer.close(now_ms)
    for store in stores:
        store.sink.finish(sealer, counts, total)
        bench_admin(store.dstrail.store, time.time_ns() // 1_000_000)
    say(f"built {total:,} events in {time.perf_counter() - started:.0f}s")
    return stores, first_ms


# -- raw baselines --------------------------------------------------------------------------------

_EVENT_COLUMNS = (
    "seq, ts_ms, event_kind, data_source_id, data_source_name, data_source_type, performed_by, "
    "performed_by_username, run_id, project_id, metadata"
)
_SEQ_AT = "SELECT seq FROM audit_events WHERE ts_ms <= ? ORDER BY ts_ms DESC, seq DESC LIMIT 1"


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" * len(values))


def raw_data_source(backend: Backend, conn: Any, ds_id: str, at_ms: int) -> set[tuple[str, str]]:
    """The use grants (via, subject) of ``ds_id`` at ``at_ms``, from its granting events."""
    [(at_seq,)] = backend.raw_select(conn, _SEQ_AT, [at_ms])
    rows = backend.raw_select(
        conn,
        f"SELECT event_kind, metadata FROM audit_events WHERE data_source_id = ? AND seq <= ? "
        f"AND event_kind IN ({_marks(_GRANTING)}) ORDER BY seq",
        [ds_id, at_seq, *_GRANTING],
    )
    return _replay(rows).get("only", set())


def raw_user(backend: Backend, conn: Any, user_id: str, at_ms: int) -> set[str]:
    """The data sources ``user_id`` could use at ``at_ms``, from every granting event."""
    [(at_seq,)] = backend.raw_select(conn, _SEQ_AT, [at_ms])
    rows = backend.raw_select(
        conn,
        f"SELECT event_kind, metadata, data_source_id FROM audit_events "
        f"WHERE event_kind IN ({_marks(_GRANTING)}) AND ts_ms <= ? AND seq <= ? ORDER BY seq",
        [*_GRANTING, at_ms + DAY_MS, at_seq],
    )
    grants = _replay(rows)
    return {
        ds_id for ds_id, found in grants.items()
        if any(subject in (user_id, "") for _via, subject in found)
    }  # fmt: skip


def _replay(rows: list[tuple[Any, ...]]) -> dict[str, set[tuple[str, str]]]:
    """Granting events (kind, metadata[, ds id]) in seq order to each data source's use grants."""
    grants: dict[str, set[tuple[str, str]]] = {}
    for row in rows:
        kind, text = row[0], row[1]
        ds_id = row[2] if len(row) > 2 else "only"
        m = orjson.loads(text)
        held = grants.setdefault(ds_id, set())
        if kind == EventKind.CREATE_DATA_SOURCE:
            held.clear()
            held.add(("owner", m["ownerId"]))
            held |= {("user", u) for u in m["userIds"].split(",") if u}
            if m["isEveryone"] == "true":
                held.add(("everyone", ""))
        elif kind == EventKind.CHANGE_OF_PERMISSIONS:
            held -= {("user", u) for u in m["removedUserIds"].split(",") if u}
            held |= {("user", u) for u in m["addedUserIds"].split(",") if u}
            held.discard(("everyone", ""))
            if m["isEveryone"] == "true":
                held.add(("everyone", ""))
        elif kind == EventKind.CHANGE_OF_OWNERSHIP:
            held -= {g for g in held if g[0] == "owner"}
            held.add(("owner", m["newOwnerId"]))
        elif kind == EventKind.DELETE_DATA_SOURCE:
            held.clear()
    return grants


def raw_page(backend: Backend, conn: Any, column: str, value: str) -> list[tuple[Any, ...]]:
    """The first ``PAGE`` events of a subject, in seq order (its ``..._seq`` index)."""
    return backend.raw_select(
        conn,
        f"SELECT {_EVENT_COLUMNS} FROM audit_events WHERE {column} = ? ORDER BY seq LIMIT ?",
        [value, PAGE],
    )


_FINDING_PAGE = (
    "SELECT f.*, e.* FROM forensic_findings f LEFT JOIN forensic_finding_events e "
    "ON e.finding_id = f.id {where} ORDER BY f.last_seq DESC, f.id DESC LIMIT ?"
)


def raw_findings(backend: Backend, conn: Any, where: str, values: list[Any]) -> list[Any]:
    """The first ``PAGE`` findings (newest first), with what the trail holds of each."""
    return backend.raw_select(conn, _FINDING_PAGE.format(where=where), [*values, PAGE + 1])


def raw_finding(backend: Backend, conn: Any, finding_id: str) -> list[Any]:
    """One finding, then its linked events."""
    [row] = backend.raw_select(conn, _FINDING_PAGE.format(where="WHERE f.id = ?"), [finding_id, 1])
    seqs = orjson.loads(row[9])
    events = backend.raw_select(
        conn,
        f"SELECT {_EVENT_COLUMNS} FROM audit_events WHERE seq IN ({_marks(seqs)}) ORDER BY seq",
        seqs,
    )
    return [row, *events]


Answer = tuple[str, Callable[[], object], Callable[[], object], str]


def findings_figures(store: Store, follower: Follower) -> list[Answer]:
    """The findings list (newest first: all, of the most and the least frequent rule, of one
    user by id and by name) and one finding with its events, each beside the raw select of
    the same rows; none when the rules did not run or found nothing."""
    backend, conn = store.backend, store.conn
    rows = backend.raw_select(
        conn, "SELECT rule, COUNT(*) FROM forensic_findings GROUP BY rule ORDER BY 2 DESC", []
    )
    if not rows:
        return []
    say("  findings: " + ", ".join(f"{rule} {count:,}" for rule, count in rows))
    rule, rule_count = rows[0][0], int(rows[0][1])
    rare, rare_count = rows[-1][0], int(rows[-1][1])
    [(newest_id, user_id, username)] = backend.raw_select(
        conn,
        "SELECT id, user_id, username FROM forensic_findings "
        "ORDER BY last_seq DESC, id DESC LIMIT 1",
        [],
    )
    [(user_count,)] = backend.raw_select(
        conn, "SELECT COUNT(*) FROM forensic_findings WHERE user_id = ?", [user_id]
    )
    total = sum(int(count) for _rule, count in rows)

    def listed(wanted: FindingFilter) -> Callable[[], object]:
        return lambda: findings_page(follower, wanted)

    detail = finding_with_events(follower, newest_id)
    if len(raw_finding(backend, conn, newest_id)) != 1 + len(detail.events):
        raise SystemExit(f"{backend.name}: the finding's events differ from the raw select")
    first = findings_page(follower, FindingFilter(limit=PAGE)).findings
    if [v.finding.id for v in first] != [row[0] for row in raw_findings(backend, conn, "", [])][
        :PAGE
    ]:
        raise SystemExit(f"{backend.name}: the first page of findings differs from the raw select")
    return [
        (
            "findings, first page", listed(FindingFilter(limit=PAGE)),
            lambda: raw_findings(backend, conn, "", []), f"of {total:,}",
        ),
        (
            "findings of one rule, first page",
            listed(FindingFilter(rules=(Rule(rule),), limit=PAGE)),
            lambda: raw_findings(backend, conn, "WHERE f.rule = ?", [rule]),
            f"{rule}: {rule_count:,}",
        ),
        (
            "findings of the rarest rule, first page",
            listed(FindingFilter(rules=(Rule(rare),), limit=PAGE)),
            lambda: raw_findings(backend, conn, "WHERE f.rule = ?", [rare]),
            f"{rare}: {rare_count:,}",
        ),
        (
            "findings of one user, first page",
            listed(FindingFilter(user_ids=(user_id,), limit=PAGE)),
            lambda: raw_findings(backend, conn, "WHERE f.user_id = ?", [user_id]),
            f"of {user_count:,}",
        ),
        (
            "findings of one username, first page",
            listed(FindingFilter(usernames=(username,), limit=PAGE)),
            lambda: raw_findings(backend, conn, "WHERE f.username = ?", [username]),
            f"of {user_count:,}",
        ),
        (
            "a finding with its events", lambda: finding_with_events(follower, newest_id),
            lambda: raw_finding(backend, conn, newest_id), f"{len(detail.events)} events",
        ),
    ]  # fmt: skip


# -- the run --------------------------------------------------------------------------------------


@dataclass
class Figure:
    label: str
    app: list[float]
    raw: list[float]
    size: str

    def line(self) -> str:
        app, raw = median(self.app), median(self.raw)
        return (
            f"  {self.label:<40} {app * 1000:8.1f} ms (p90 {p90(self.app) * 1000:7.1f})   "
            f"raw {raw * 1000:8.1f} ms (p90 {p90(self.raw) * 1000:7.1f})   "
            f"{app / raw if raw else float('inf'):6.2f}x   {self.size}"
        )


VACUUM_EVERY: Final = 500_000
"""On PostgreSQL the follower is timed in stretches of this many events with a ``VACUUM
(ANALYZE)`` of the derived tables after each, its time counted: autovacuum does that work on
a server left at its defaults (about when a table's dead rows pass a fifth of its live ones),
and it is off on this machine's server."""
_DERIVED = (
    "forensics_state, forensic_grants, forensic_users, forensic_data_sources, "
    "forensic_findings, forensic_finding_events, forensic_rule_pairs, forensic_rule_users, "
    "forensic_rule_sources"
)


def follow(follower: Follower, backend: Backend, conn: Any) -> tuple[int, float, str]:
    """The follower from its cursor to the head: (events, seconds, how the tables were kept)."""
    if isinstance(conn, sqlite3.Connection):
        started = time.perf_counter()
        taken = follower.catch_up()
        return taken, time.perf_counter() - started, ""
    [(head,)] = backend.raw_select(conn, "SELECT size FROM audit_head WHERE id = 1", [])
    conn.commit()
    conn.autocommit = True
    taken, vacuum_seconds, started = 0, 0.0, time.perf_counter()
    try:
        while True:
            done = follower.catch_up(through=min(follower.cursor() + VACUUM_EVERY, int(head)))
            taken += done
            vacuum_started = time.perf_counter()
            conn.execute(f"VACUUM (ANALYZE) {_DERIVED}")
            vacuum_seconds += time.perf_counter() - vacuum_started
            if not done or follower.cursor() >= int(head):
                break
    finally:
        conn.autocommit = False
    seconds = time.perf_counter() - started
    return taken, seconds, f"; VACUUM every {VACUUM_EVERY:,} events: {vacuum_seconds:.1f}s of it"


def bench_database(
    store: Store, catalog: Catalog, first_ms: int, reps: int, grants_only: bool
) -> list[str]:
    dstrail, backend, conn = store.dstrail, store.backend, store.conn
    follower = Follower(
        dstrail.store, settings=dstrail.settings, clock=dstrail.clock,
        batch_events=dstrail.settings.forensics_batch_events,
        **({"consumers": ()} if grants_only else {}),
    )  # fmt: skip
    taken, seconds, vacuumed = follow(follower, backend, conn)
    consumers = ", ".join(c.name for c in follower.consumers) or "none"
    follow_line = (
        f"follower: {taken:,} events in {seconds:.1f}s = {taken / seconds:,.0f} events/s "
        f"(consumers: {consumers}{vacuumed})"
    )
    say(f"  {follow_line}")
    with dstrail.store.read() as tx:
        digest = tx.forensics.digest()
    say(
        f"  derived: {digest.grants:,} grants, {digest.users:,} users, {digest.data_sources:,} data sources"
    )
    if isinstance(conn, sqlite3.Connection):
        conn.execute("ANALYZE")
    else:
        conn.autocommit = True
        conn.execute(
            "ANALYZE forensic_grants, forensic_users, forensic_data_sources, forensic_findings"
        )
        conn.autocommit = False

    at_ms = first_ms + SPAN_DAYS * DAY_MS // 2
    ds_id = catalog.sources[7][0]
    user_id = catalog.users[3][0]
    run_id = catalog.runs[11][0]

    def ds_answer() -> DataSourceEntitlements:
        answer = entitlements(follower, EntitlementsQuery("data_source_id", ds_id, at_ms=at_ms))
        assert isinstance(answer, DataSourceEntitlements)
        return answer

    def user_answer() -> UserEntitlements:
        answer = entitlements(follower, EntitlementsQuery("user_id", user_id, at_ms=at_ms))
        assert isinstance(answer, UserEntitlements)
        return answer

    got = {(g.via.value, g.subject_id) for g in ds_answer().grants}
    if got != raw_data_source(backend, conn, ds_id, at_ms):
        raise SystemExit(f"{backend.name}: the data source's entitlements differ from the replay")
    reachable = {e.data_source_id for e in user_answer().data_sources}
    if reachable != raw_user(backend, conn, user_id, at_ms):
        raise SystemExit(f"{backend.name}: the user's entitlements differ from the replay")

    def page(subject: str, value: str) -> Callable[[], object]:
        return lambda: timeline(follower, TimelineQuery(subject, value, limit=PAGE))

    figures = []
    for label, app, raw, size in (
        (
            "entitlements of a data source at T", ds_answer,
            lambda: raw_data_source(backend, conn, ds_id, at_ms),
            f"{len(got)} grants, {len(ds_answer().reach)} users",
        ),
        (
            "entitlements of a user at T", user_answer,
            lambda: raw_user(backend, conn, user_id, at_ms), f"{len(reachable)} data sources",
        ),
        (
            "timeline of a user, first page", page("user_id", user_id),
            lambda: raw_page(backend, conn, "performed_by", user_id), f"{PAGE} entries",
        ),
        (
            "timeline of a run, first page", page("run_id", run_id),
            lambda: raw_page(backend, conn, "run_id", run_id), f"{PAGE} entries",
        ),
        (
            "timeline of a data source, first page", page("data_source_id", ds_id),
            lambda: raw_page(backend, conn, "data_source_id", ds_id), f"{PAGE} entries",
        ),
        *findings_figures(store, follower),
    ):  # fmt: skip
        timed = interleaved(app, raw, reps)
        figures.append(Figure(label, timed.app, timed.raw, size))
        say(figures[-1].line())
    slowest = max(figures, key=lambda f: median(f.app))
    return [follow_line, f"slowest answer {median(slowest.app) * 1000:.1f} ms ({slowest.label})"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--only", choices=("sqlite", "postgresql"), default=None)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument(
        "--grants-only", action="store_true", help="follow without the detection rules' consumers"
    )
    args = parser.parse_args(argv)
    say(
        f"dstrail forensics benchmark: {args.events:,} events over {SPAN_DAYS} days, "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, SQLite "
        f"{sqlite3.sqlite_version}, psycopg {psycopg.__version__}; load average {load_average()}"
    )
    catalog = make_catalog(random.Random(args.seed))
    summary = []
    with tempfile.TemporaryDirectory(prefix="dstrail-forensics-") as tmp:
        backends: list[Backend] = []
        for kind in [args.only] if args.only else ["postgresql", "sqlite"]:
            if kind == "postgresql":
                why = pg_reachable()
                if why:
                    say(f"PostgreSQL: skipped, not reachable: {why}")
                    continue
                backends.append(PostgreSQLBackend("forensics"))
            else:
                backends.append(SQLiteBackend(Path(tmp), "forensics"))
        try:
            stores, first_ms = build(backends, catalog, args.events, args.seed, Path(tmp))
            for store in stores:
                say(f"\n{store.backend.name}  (load average {load_average()})")
                lines = bench_database(store, catalog, first_ms, args.reps, args.grants_only)
                summary += [f"  {store.backend.name}: {line}" for line in lines]
                store.conn.close()
                store.dstrail.store.dispose()
        finally:
            for backend in backends:
                backend.drop()
    say("\nsummary:")
    for line in summary:
        say(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
