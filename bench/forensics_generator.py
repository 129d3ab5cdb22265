"""A realistic trail with known incidents planted in it, for measuring the detection rules.

    .venv/bin/python bench/forensics_generator.py [--events N] [--seed S] [--out DIR]
                                                  [--database-url URL]

The background is a simulation of 150 days (from Monday 6 January 2025) of an organisation
using dstrail, a day at a time, scaled to about ``--events`` events (1,000,000 by default):

- users in several time zones, each with working hours (a start between 07:00 and 10:00
  local, 8 to 9 hours, a little jitter, rare overtime or early starts), weekends mostly off
  (a few hours' work on some), vacations; new joiners through the whole span;
- projects with their owner and collaborators; runs of every run type, each recorded
  (``RunStarted`` / ``RunStopped``): a workspace a working day, batch jobs and launchers run
  by hand, scheduled jobs at their hour (night ones too), apps and model APIs serving at any
  hour, the odd ``Other`` run;
- data sources of many types, with Shared or Individual credentials, some for everyone, with
  a lifecycle: created (and attached to a project), users added and removed, ownership
  transferred, shared with everyone and back, deleted;
- each user's working set of data sources, reached interactively (from a workspace or from
  outside any run) in their working hours, and by their jobs and services; it changes as
  grants come and go: a new grant is used within days, a lost one is never tried again;
  users sometimes stop using a data source;
- normal refusals: a user trying a data source they never had (once, sometimes with a retry
  or two), a job reaching one after its run ended.

Every access is one the entitlements allow at that moment (the generator follows the same
rules: owner, listed user, everyone), so the background is clean of integrity alarms. Then
incidents are planted, one per rule with variations (several instances each), and the seqs
of the events of each are recorded in ``incidents.json`` beside the store:
``{"rule", "variation", "seqs"}``.

The store is built as ``bench/scale_bench.py`` builds its own: the events sorted by time,
numbered, sealed (leaf hashes, subtree hashes, a signed checkpoint every 1,000) and written
in bulk, indexes dropped and rebuilt around the load (``Sink``). SQLite under ``--out`` by
default; ``--database-url postgresql://...`` for an existing empty PostgreSQL database.
"""

from __future__ import annotations

import argparse
import collections
import math
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from audit_bench import Backend, PostgreSQLBackend, SQLiteBackend, _count_days
from dstrail.context import open_dstrail
from dstrail.domain.timestamps import DAY_MS
from dstrail.settings import Settings
from scale_bench import Sink
from support import Sealer, raw_row

HOUR_MS: Final = 3_600_000
MINUTE_MS: Final = 60_000
T0: Final = 1_736_121_600_000
"""Monday 6 January 2025, 00:00 UTC."""
SPAN_DAYS: Final = 150
WARMUP_DAYS: Final = 35
"""Incidents are planted after this many days (the rules' baselines need a history)."""
EVENTS_AT_SCALE_1: Final = 800_000
"""About how many events the population of scale 1 makes in the span (measured)."""
INSTANCES: Final = 6
"""Incidents planted per rule (its variations in turn)."""

TABULAR: Final = ("SnowflakeConfig", "PostgreSQLConfig", "RedshiftConfig", "BigQueryConfig",
                  "MySQLConfig")  # fmt: skip
OBJECT_STORES: Final = ("S3Config", "GenericS3Config", "DatasetConfig", "GCSConfig")
INDIVIDUAL_TYPES: Final = ("SnowflakeConfig", "PostgreSQLConfig", "RedshiftConfig", "MySQLConfig")
"""Types whose users may bring their own credentials."""
WORDS: Final = ("sales", "churn", "fraud", "ledger", "clicks", "claims", "genomics", "pricing",
                "risk", "supply", "hr", "marketing", "telemetry", "billing", "forecast")  # fmt: skip
ZONES: Final = (-8, -8, -5, -5, -5, 0, 0, 1, 1, 1, 2, 5, 8)
"""Users' UTC offsets (hours)."""
DATA_PLANE: Final = "000000000000000000000000"
OPERATOR_ID: Final = "0" * 24

Event = tuple[Any, ...]
"""(ts_ms, order, kind, ds_id, ds_name, ds_type, user_id, username, run_id, project_id,
metadata JSON, incident index or -1)."""


# -- the world ---------------------------------------------------------------------------------


@dataclass(eq=False)
class User:
    id: str
    name: str
    role: str
    zone: int
    start: float
    """Local start of the working day (hours)."""
    length: float
    created_ms: int
    project: Project | None = None
    vacation: set[int] = field(default_factory=set)
    weekend_worker: float = 0.03
    left_day: int | None = None
    entries: list[Entry] = field(default_factory=list)
    hist: list[int] = field(default_factory=lambda: [0] * 24)
    """Interactive active hours by UTC hour of day (what ``unusualHour`` learns)."""
    ever: set[str] = field(default_factory=set)
    """Data sources this user ever had a grant of."""


@dataclass(eq=False)
class Project:
    id: str
    name: str
    owner: User
    members: list[User] = field(default_factory=list)


@dataclass(eq=False)
class Source:
    id: str
    name: str
    type: str
    credential: str
    owner: User
    everyone: bool
    users: set[str]
    created_ms: int
    project: Project | None
    deleted_ms: int | None = None
    transferred_ms: int = -(10**15)
    everyone_since: int = 0
    was_everyone: bool = False
    changed_ms: int = 0
    """When the background last changed it (its changes stay in order)."""
    types: set[str] = field(default_factory=set)
    """Run types its accesses come from ("" for outside any run)."""
    granted: dict[str, int] = field(default_factory=dict)
    """When each listed user was listed."""
    accesses: int = 0
    reserved_until: int = 0
    """An incident uses it until then: the background leaves it alone."""

    @property
    def tabular(self) -> bool:
        return self.type in TABULAR

    def ref(self) -> tuple[str, str, str]:
        return self.id, self.name, self.type


@dataclass(eq=False)
class Stream:
    kind: str
    """Batch, Scheduled, Launcher, Other (runs) or App, Endpoint (a service)."""
    size: float
    per_week: float = 0.0
    hour: float = 0.0
    """Scheduled: the UTC hour it runs at."""
    rate: float = 0.0
    """App, Endpoint: accesses an hour."""
    run: str | None = None
    next_forced: bool = True
    """Its first run is on the day it starts, so the data source knows its run type early."""


@dataclass(eq=False)
class Entry:
    user: User
    source: Source
    start_ms: int
    end_ms: int = 10**15
    p_hour: float = 0.3
    lam: float = 2.0
    outside: float = 0.3
    """Share of its interactive accesses from outside any run (else a workspace)."""
    interactive: bool = True
    streams: list[Stream] = field(default_factory=list)
    last_ms: int = -1
    faded: bool = False
    """The user stopped using it (no grant was taken away)."""
    pending: list[str] = field(default_factory=list)
    """Interactive run types not used yet: its first accesses use them, so the data source
    sees each early."""

    def valid(self, ts: int) -> bool:
        return self.start_ms <= ts < self.end_ms


@dataclass
class Incident:
    rule: str
    variation: str
    orders: list[int] = field(default_factory=list)


class World:
    """The simulation: its entities, the events it emitted, the incidents planted."""

    def __init__(self, seed: int, scale: float) -> None:
        self.seed = seed
        self._works: dict[tuple[str, int], bool] = {}
        self.rng = random.Random(seed)
        self.scale = scale
        self.events: list[Event] = []
        self.order = 0
        self.users: list[User] = []
        self.admins: list[User] = []
        self.projects: list[Project] = []
        self.sources: list[Source] = []
        self.by_id: dict[str, Source] = {}
        self.incidents: list[Incident] = []
        self.deferred: list[tuple[int, Callable[[int], None]]] = []
        self.night_owls: set[str] = set()
        """Users an unusual-hour incident was planted for (one each: the rule's cooldown)."""
        self.planted_pairs: set[tuple[str, str]] = set()
        """(user, data source) pairs an incident used: no other incident touches them."""
        self.pair_hours: dict[tuple[str, str, int], int] = collections.Counter()
        self.pair_peak: dict[tuple[str, str], int] = collections.Counter()
        self.counter = 0
        self.names: collections.Counter[str] = collections.Counter()

    # -- ids, names, time ----------------------------------------------------------------------

    def new_id(self) -> str:
        self.counter += 1
        return f"{0x6500_0000 + self.counter:08x}{self.rng.getrandbits(64):016x}"

    def name_for(self, stem: str) -> str:
        self.names[stem] += 1
        count = self.names[stem]
        return stem if count == 1 else f"{stem}-{count}"

    def working(self, user: User, day: int) -> bool:
        """Whether the user works that day (the same answer every time it is asked)."""
        if user.created_ms > T0 + (day + 1) * DAY_MS or (
            user.left_day is not None and day >= user.left_day
        ):
            return False
        if day in user.vacation:
            return False
        key = (user.id, day)
        if key not in self._works:
            roll = random.Random(f"{self.seed}:{user.id}:{day}").random()
            self._works[key] = roll < user.weekend_worker if day % 7 >= 5 else roll > 0.04
        return self._works[key]

    def defer(self, ts: int, action: Callable[[int], None]) -> None:
        """Do ``action`` at ``ts`` (on that day, before its activity)."""
        self.deferred.append((ts, action))

    def run_deferred(self, day: int) -> None:
        end = T0 + (day + 1) * DAY_MS
        due = sorted((d for d in self.deferred if d[0] < end), key=lambda d: d[0])
        self.deferred = [d for d in self.deferred if d[0] >= end]
        for ts, action in due:
            action(ts)

    def away_soon(self, user: User, day: int, days: int = 14) -> bool:
        """Whether the user is on vacation within ``days`` from ``day``."""
        return any(d in user.vacation for d in range(day, day + days))

    def window(self, user: User, day: int) -> tuple[int, int]:
        """The user's working hours that day, UTC epoch ms."""
        start = user.start + self.rng.uniform(-0.4, 0.4)
        length = user.length + self.rng.uniform(-0.5, 0.3)
        if self.rng.random() < 0.03:
            length += 0.9  # overtime
        elif self.rng.random() < 0.03:
            start -= 0.9  # an early start
        begin = T0 + day * DAY_MS + int((start - user.zone) * HOUR_MS)
        return begin, begin + int(length * HOUR_MS)

    def work_time(self, user: User, day: int) -> int:
        """A moment inside the user's usual working hours that day (no jitter)."""
        begin = T0 + day * DAY_MS + int((user.start - user.zone) * HOUR_MS)
        return begin + int(self.rng.uniform(0.5, user.length - 1.0) * HOUR_MS)

    # -- emitting ------------------------------------------------------------------------------

    def emit(
        self,
        ts: int,
        kind: str,
        user: User | None,
        metadata: dict[str, str],
        *,
        source: Source | None = None,
        run: str | None = None,
        project: str | None = None,
        incident: Incident | None = None,
        actor: tuple[str, str] | None = None,
    ) -> None:
        user_id, username = actor or ((user.id, user.name) if user else (OPERATOR_ID, "operator"))
        text = orjson.dumps({"performedByUsername": username, **metadata}).decode()
        ds = source.ref() if source is not None else ("", "", "")
        self.order += 1
        self.events.append(
            (ts, self.order, kind, *ds, user_id, username, run, project, text,
             len(self.incidents) - 1 if incident is not None else -1)
        )  # fmt: skip
        if incident is not None:
            incident.orders.append(self.order)

    def platform(
        self, ts: int, kind: str, actor: User | None, metadata: dict[str, str], **extra: Any
    ) -> None:
        self.emit(ts, kind, actor, metadata, **extra)

    def start_run(
        self, ts: int, user: User, run_type: str, *, incident: Incident | None = None
    ) -> tuple[str, str]:
        run = self.new_id()
        project = (user.project or self.projects[0]).id
        self.emit(ts, "RunStarted", user, self._run_keys(user, run_type, run, project),
                  run=run, project=project, incident=incident)  # fmt: skip
        return run, project

    def stop_run(self, ts: int, user: User, run_type: str, run: str, project: str) -> None:
        self.emit(ts, "RunStopped", user, self._run_keys(user, run_type, run, project),
                  run=run, project=project)  # fmt: skip

    @staticmethod
    def _run_keys(user: User, run_type: str, run: str, project: str) -> dict[str, str]:
        return {"userId": user.id, "username": user.name, "runType": run_type,
                "projectId": project, "runId": run, "dataPlaneId": DATA_PLANE}  # fmt: skip

    def operation(self, source: Source, *, listing: bool = False) -> dict[str, str]:
        rng = self.rng
        if listing:
            return {"operation": "listObjects", "prefix": f"{rng.choice(WORDS)}/"}
        if source.tabular:
            if rng.random() < 0.15:
                return {"operation": "getDataSource"}
            return {"operation": "query", "queryDigest": f"{rng.getrandbits(256):064x}"}
        roll = rng.random()
        if roll < 0.1:
            return {"operation": "getDataSource"}
        if roll < 0.3:
            return {"operation": "listObjects", "prefix": f"{rng.choice(WORDS)}/"}
        return {
            "operation": "objectKey",
            "isReadWrite": "true" if roll > 0.92 else "false",
            "objectKey": f"{rng.choice(WORDS)}/part-{rng.randrange(10_000):05d}.parquet",
        }

    def access(
        self,
        ts: int,
        user: User,
        source: Source,
        run_type: str,
        run: tuple[str, str] | None,
        *,
        incident: Incident | None = None,
        listing: bool = False,
    ) -> None:
        metadata: dict[str, str] = {}
        if run is not None:
            metadata = {"runType": run_type, "projectId": run[1], "runId": run[0],
                        "dataPlaneId": DATA_PLANE}  # fmt: skip
        metadata["clientSource"] = "R" if user.zone == 1 and self.rng.random() < 0.3 else "Python"
        metadata.update(self.operation(source, listing=listing))
        self.emit(ts, "AccessDataSource", user, metadata, source=source,
                  run=run[0] if run else None, project=run[1] if run else None,
                  incident=incident)  # fmt: skip
        source.accesses += 1
        source.types.add(run_type)
        hour = ts // HOUR_MS
        key = (user.id, source.id, hour)
        count = self.pair_hours[key] = self.pair_hours.get(key, 0) + 1
        pair = (user.id, source.id)
        if count > self.pair_peak[pair]:
            self.pair_peak[pair] = count

    def refuse(
        self,
        ts: int,
        user: User,
        source: Source,
        reason: str,
        *,
        incident: Incident | None = None,
        run: str | None = None,
    ) -> None:
        metadata = {"clientSource": "Python", **self.operation(source)}
        if run is not None:
            metadata["claimedRunId"] = run
        metadata["reason"] = reason
        self.emit(ts, "AccessDataSourceRefused", user, metadata, source=source,
                  incident=incident)  # fmt: skip

    # -- entitlements (as the trail says them) ------------------------------------------------

    def covered(self, user: User, source: Source, ts: int) -> bool:
        if source.deleted_ms is not None and source.deleted_ms <= ts:
            return False
        return (
            source.owner is user
            or user.id in source.users
            or (source.everyone and user.created_ms <= ts)
        )

    def end_uncovered(self, source: Source, ts: int) -> None:
        """Entries of users who lost every grant of ``source`` at ``ts`` end then."""
        for user in self.users:
            for entry in user.entries:
                if (
                    entry.source is source
                    and entry.end_ms > ts
                    and not self.covered(user, source, ts + 1)
                ):
                    entry.end_ms = ts

    def old_cover(self, user: User, source: Source, since: int) -> bool:
        """Whether a grant the user has had since ``since`` at least covers them now."""
        if source.deleted_ms is not None:
            return False
        if source.owner is user and source.transferred_ms < since and source.created_ms < since:
            return True
        if user.id in source.users and source.granted.get(user.id, since) < since:
            return True
        return source.everyone and source.everyone_since < since and user.created_ms < since

    def entry_of(self, user: User, source: Source, ts: int) -> Entry | None:
        for entry in user.entries:
            if entry.source is source and entry.valid(ts):
                return entry
        return None

    # -- making things -------------------------------------------------------------------------

    def make_user(self, ts: int, *, role: str = "User", by: User | None = None) -> User:
        rng = self.rng
        name = self.name_for(f"{rng.choice('abcdefghijklmnopqrstuvwxyz')}{rng.choice(WORDS)}")
        user = User(
            id=self.new_id(), name=name, role=role, zone=rng.choice(ZONES),
            start=rng.uniform(7.0, 10.0), length=rng.uniform(8.0, 9.0), created_ms=ts,
            weekend_worker=rng.choice((0.0, 0.02, 0.05, 0.1)),
        )  # fmt: skip
        joined = (ts - T0) // DAY_MS
        for _ in range(rng.randrange(1, 3)):
            first = rng.randrange(joined + 20, joined + 20 + SPAN_DAYS)
            user.vacation.update(range(first, first + rng.randrange(5, 15)))
        self.users.append(user)
        self.platform(ts, "UserCreated", by, {"userId": user.id, "username": name, "role": role})
        self.platform(ts, "ApiKeyIssued", by, {"userId": user.id, "username": name,
                                               "keyId": self.new_id(), "label": "default"})  # fmt: skip
        return user

    def make_project(self, ts: int, owner: User, members: list[User]) -> Project:
        project = Project(self.new_id(), self.name_for(f"{self.rng.choice(WORDS)}-analysis"), owner)
        project.members = [owner, *members]
        self.projects.append(project)
        self.platform(ts, "ProjectCreated", owner, {
            "projectId": project.id, "projectName": project.name, "ownerId": owner.id,
            "collaboratorIds": ",".join(m.id for m in members),
        }, project=project.id)  # fmt: skip
        for member in project.members:
            member.project = member.project or project
        return project

    def make_source(
        self,
        ts: int,
        owner: User,
        *,
        everyone: bool = False,
        listed: list[User] | None = None,
        credential: str | None = None,
        ds_type: str | None = None,
        incident: Incident | None = None,
    ) -> Source:
        rng = self.rng
        if ds_type is None:
            ds_type = (
                rng.choice(INDIVIDUAL_TYPES) if everyone else rng.choice(TABULAR + OBJECT_STORES)
            )
        if credential is None:
            individual = ds_type in INDIVIDUAL_TYPES and (everyone or rng.random() < 0.3)
            credential = "Individual" if individual else "Shared"
        source = Source(
            id=self.new_id(), name=self.name_for(f"{rng.choice(WORDS)}-{rng.choice(('db', 'lake', 'raw', 'mart', 'files'))}"),
            type=ds_type, credential=credential, owner=owner, everyone=everyone,
            users={u.id for u in listed or []}, created_ms=ts, project=owner.project,
            everyone_since=ts,
        )  # fmt: skip
        source.was_everyone = everyone
        self.sources.append(source)
        self.by_id[source.id] = source
        self.emit(ts, "CreateDataSource", owner, {
            "credentialType": credential, "isEveryone": "true" if everyone else "false",
            "ownerId": owner.id, "userIds": ",".join(sorted(source.users)), "projectIds": "",
        }, source=source, incident=incident)  # fmt: skip
        owner.ever.add(source.id)
        for user in listed or []:
            user.ever.add(source.id)
            source.granted[user.id] = ts
        if source.project is not None:
            project = source.project
            self.emit(ts + 2000, "DataSourceAssociatedToProject", owner,
                      {"projectId": project.id, "projectName": project.name},
                      source=source, project=project.id)  # fmt: skip
        return source

    def add_entry(self, user: User, source: Source, start_ms: int, *, late: bool) -> Entry | None:
        """``user`` starts using ``source`` at ``start_ms``; ``late``: the data source is
        established, so only the run types it knows are used."""
        rng = self.rng
        if any(e.source is source and e.end_ms > start_ms for e in user.entries):
            return None
        if self.away_soon(user, int((start_ms - T0) // DAY_MS)):
            return None  # first used after a vacation: a dormant grant, not the background
        entry = Entry(user=user, source=source, start_ms=start_ms,
                      p_hour=rng.uniform(0.12, 0.45), lam=rng.uniform(1.0, 3.5),
                      outside=rng.choice((0.0, 0.15, 0.3, 0.5)))  # fmt: skip
        allowed = source.types if late else None
        if allowed is not None:
            interactive = {"Workspace", ""} & allowed
            if not interactive:
                entry.interactive = False
            elif interactive == {"Workspace"}:
                entry.outside = 0.0
            elif interactive == {""}:
                entry.outside = 1.0
        again = any(e.source is source for e in user.entries)  # back after losing it
        if rng.random() < 0.22 and not again:
            kind = rng.choices(("Batch", "Scheduled", "Launcher", "Other"), (50, 35, 12, 3))[0]
            if allowed is None or kind in allowed:
                entry.streams.append(self._stream(kind))
        if (
            rng.random() < 0.03
            and not again
            and len(self.services()) < max(4, int(16 * self.scale))
        ):
            kind = rng.choice(("App", "Endpoint"))
            if allowed is None or kind in allowed:
                entry.streams.append(Stream(kind, 0, rate=rng.uniform(0.5, 3.0)))
        if not entry.interactive and not entry.streams:
            return None
        if entry.interactive:
            entry.pending = [t for t in ("", "Workspace") if t in self._types_of(entry)]
        user.entries.append(entry)
        user.ever.add(source.id)
        if allowed is None:
            source.types.update(self._types_of(entry))
        return entry

    def _stream(self, kind: str) -> Stream:
        rng = self.rng
        size = math.exp(rng.gauss(math.log(22), 0.6))
        if kind == "Launcher":
            size = rng.uniform(3, 12)
        if kind == "Scheduled":
            return Stream(kind, size, hour=rng.uniform(0, 24))
        return Stream(kind, size, per_week={"Batch": 2.5, "Launcher": 1.5, "Other": 0.5}[kind])

    @staticmethod
    def _types_of(entry: Entry) -> set[str]:
        types = {s.kind for s in entry.streams}
        if entry.interactive:
            if entry.outside > 0:
                types.add("")
            if entry.outside < 1:
                types.add("Workspace")
        return types

    def services(self) -> list[Stream]:
        return [
            s
            for u in self.users
            for e in u.entries
            for s in e.streams
            if s.kind in ("App", "Endpoint")
        ]

    def active_sources(self, ts: int) -> list[Source]:
        """Data sources created before ``ts``, not deleted, not used by an incident."""
        return [s for s in self.sources if s.deleted_ms is None and s.reserved_until < ts
                and s.created_ms < ts]  # fmt: skip


# -- the background, a day at a time ---------------------------------------------------------------


def poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, int(rng.gauss(lam, math.sqrt(lam)) + 0.5))
    threshold, count, product = math.exp(-lam), 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


def found(world: World, day: int) -> None:
    """Day 0: the organisation as it starts (its users, projects and data sources)."""
    rng, f = world.rng, world.scale
    ts = T0 + 6 * HOUR_MS
    admin = world.make_user(ts, role="SysAdmin")
    world.admins = [admin, world.make_user(ts + 1000, role="SysAdmin", by=admin)]
    users = [world.make_user(ts + 2000 + i, by=admin) for i in range(max(24, int(300 * f)))]
    rng.shuffle(users)
    teams = max(5, int(55 * f))
    for index in range(teams):
        team = users[index::teams]
        world.make_project(ts + 60_000 + index, team[0], team[1:])
    for index in range(max(18, int(230 * f))):
        owner = rng.choice(users)
        team = owner.project.members if owner.project else users
        everyone = rng.random() < 0.1
        listed = [] if everyone else rng.sample(team, min(len(team), rng.randrange(0, 6)))
        listed = [u for u in listed if u is not owner]
        source = world.make_source(
            ts + 120_000 + index * 500, owner, everyone=everyone, listed=listed
        )
        _users_of(world, source, ts, within_days=5, listed=listed)


def _users_of(
    world: World, source: Source, ts: int, *, within_days: float, listed: list[User]
) -> None:
    """The owner and most listed users start using a new data source within days; an
    everyone one draws a few more."""
    rng = world.rng
    takers = [source.owner] if rng.random() < 0.9 else []
    takers += [u for u in listed if rng.random() < 0.8]
    if source.everyone:
        takers += rng.sample(world.users, min(len(world.users), rng.randrange(2, 8)))
    for user in dict.fromkeys(takers):
        world.add_entry(user, source, ts + int(rng.uniform(0.02, within_days) * DAY_MS), late=False)


def management(world: World, day: int) -> None:
    """The day's changes: new users and data sources, grants, transfers, deletions."""
    rng, f = world.rng, world.scale
    base = T0 + day * DAY_MS
    if day % 7 >= 5:
        return
    established = [
        u
        for u in world.users
        if u.created_ms < base - 20 * DAY_MS and u.role == "User" and u.left_day is None
    ]
    if not established:
        return

    def moment(user: User) -> int:
        return world.work_time(user, day)

    def at(source: Source, user: User) -> int:
        """A moment for a change to ``source`` after the others it had (a day's changes are
        picked in any order)."""
        ts = max(moment(user), source.changed_ms + MINUTE_MS)
        source.changed_ms = ts
        return ts

    for _ in range(poisson(rng, 0.45 * f)):  # a new joiner
        admin = rng.choice(world.admins)
        ts = moment(admin)
        user = world.make_user(ts, by=admin)
        project = rng.choice(world.projects)
        project.members.append(user)
        user.project = project
        world.platform(ts + 60_000, "ProjectCollaboratorAdded", project.owner, {
            "projectId": project.id, "projectName": project.name, "userId": user.id,
            "username": user.name,
        }, project=project.id)  # fmt: skip
        everyone = [s for s in world.active_sources(ts) if s.everyone]
        for source in rng.sample(everyone, min(len(everyone), rng.randrange(0, 3))):
            world.add_entry(user, source, ts + int(rng.uniform(0.1, 6) * DAY_MS), late=True)
        owned = [s for s in world.active_sources(ts) if s.project is project and not s.everyone]
        for source in rng.sample(owned, min(len(owned), rng.randrange(1, 4))):
            granted = max(ts + int(rng.uniform(5, 120) * MINUTE_MS), source.changed_ms + MINUTE_MS)
            source.changed_ms = granted
            _grant(world, source, user, granted)
            world.add_entry(user, source, granted + int(rng.uniform(0.02, 4) * DAY_MS), late=True)

    for _ in range(poisson(rng, 0.5 * f)):  # a new data source
        owner = rng.choice(established)
        ts = moment(owner)
        team = owner.project.members if owner.project else established
        everyone = rng.random() < 0.1
        listed = (
            []
            if everyone
            else [
                u
                for u in rng.sample(team, min(len(team), rng.randrange(0, 5)))
                if u is not owner and u.created_ms < ts
            ]
        )
        source = world.make_source(ts, owner, everyone=everyone, listed=listed)
        _users_of(world, source, ts, within_days=4, listed=listed)

    for _ in range(poisson(rng, 1.0 * f)):  # a colleague added
        candidates = [
            s for s in world.active_sources(base) if not s.everyone and s.owner.left_day is None
        ]
        if not candidates:
            break
        source = rng.choice(candidates)
        team = source.owner.project.members if source.owner.project else established
        new = [
            u
            for u in team
            if u.created_ms < base and not world.covered(u, source, base) and u.left_day is None
        ]
        if not new:
            continue
        user = rng.choice(new)
        ts = at(source, source.owner)
        _grant(world, source, user, ts)
        if rng.random() < 0.85:
            delay = min(rng.expovariate(1.0), 9.0)
            world.add_entry(user, source, ts + int((0.01 + delay) * DAY_MS), late=True)

    for _ in range(poisson(rng, 0.7 * f)):  # a colleague removed
        candidates = [s for s in world.active_sources(base) if s.users]
        if not candidates:
            break
        source = rng.choice(candidates)
        removed = rng.choice(sorted(source.users))
        ts = at(source, source.owner)
        source.users.discard(removed)
        world.emit(ts, "DataSourceChangeOfPermissions", source.owner, {
            "isEveryone": "true" if source.everyone else "false", "addedUserIds": "",
            "removedUserIds": removed,
        }, source=source)  # fmt: skip
        world.end_uncovered(source, ts)

    for _ in range(poisson(rng, 0.15 * f)):  # ownership transferred
        candidates = [
            s for s in world.active_sources(base) if s.transferred_ms < base - 10 * DAY_MS
        ]
        if not candidates:
            break
        source = rng.choice(candidates)
        team = source.owner.project.members if source.owner.project else established
        heirs = [
            u for u in team if u is not source.owner and u.created_ms < base and u.left_day is None
        ]
        if not heirs:
            continue
        heir, previous = rng.choice(heirs), source.owner
        ts = at(source, previous)
        had = world.covered(heir, source, ts)
        _transfer(world, source, heir, ts, by=previous)
        if not had and not source.everyone and rng.random() < 0.7:
            world.add_entry(heir, source, ts + int(rng.uniform(0.05, 5) * DAY_MS), late=True)

    for _ in range(poisson(rng, 0.15 * f)):  # deleted
        candidates = [
            s
            for s in world.active_sources(base)
            if s.transferred_ms < base - 7 * DAY_MS and s.created_ms < base - 14 * DAY_MS
        ]
        if not candidates:
            break
        source = rng.choice(candidates)
        _delete(world, source, at(source, source.owner), by=source.owner)

    for _ in range(poisson(rng, 0.04 * f)):  # an Individual-credential data source for everyone
        candidates = [
            s for s in world.active_sources(base) if not s.everyone and s.credential == "Individual"
        ]
        if candidates:
            source = rng.choice(candidates)
            _everyone(world, source, at(source, source.owner), True, by=source.owner)

    for _ in range(poisson(rng, 0.03 * f)):  # no longer for everyone
        candidates = [s for s in world.active_sources(base) if s.everyone]
        if candidates:
            source = rng.choice(candidates)
            _everyone(world, source, at(source, source.owner), False, by=source.owner)

    if rng.random() < 0.02 * f * 5:  # someone leaves: they stop, their account stays
        leaver = rng.choice(established)
        leaver.left_day = day + 1

    for user in established:  # users sometimes stop using a data source (never to return)
        for entry in user.entries:
            if entry.end_ms > base and entry.start_ms < base and rng.random() < 0.0015:
                entry.end_ms, entry.faded = base, True


def _grant(
    world: World, source: Source, user: User, ts: int, *, incident: Incident | None = None
) -> None:
    source.users.add(user.id)
    source.granted[user.id] = ts
    user.ever.add(source.id)
    world.emit(ts, "DataSourceChangeOfPermissions", source.owner, {
        "isEveryone": "true" if source.everyone else "false", "addedUserIds": user.id,
        "removedUserIds": "",
    }, source=source, incident=incident)  # fmt: skip


def _transfer(
    world: World, source: Source, heir: User, ts: int, *, by: User, incident: Incident | None = None
) -> None:
    previous = source.owner
    source.owner = heir
    source.transferred_ms = ts
    heir.ever.add(source.id)
    world.emit(ts, "DataSourceChangeOfOwnership", by, {
        "previousOwnerId": previous.id, "previousOwnerUsername": previous.name,
        "newOwnerId": heir.id, "newOwnerUsername": heir.name,
    }, source=source, incident=incident)  # fmt: skip
    world.end_uncovered(source, ts)


def _delete(
    world: World, source: Source, ts: int, *, by: User, incident: Incident | None = None
) -> None:
    source.deleted_ms = ts
    world.emit(ts, "DeleteDataSource", by, {}, source=source, incident=incident)
    world.end_uncovered(source, ts)


def _everyone(
    world: World, source: Source, ts: int, on: bool, *, by: User, incident: Incident | None = None
) -> None:
    source.was_everyone = source.was_everyone or on
    source.everyone = on
    source.everyone_since = ts
    world.emit(ts, "DataSourceChangeOfPermissions", by, {
        "isEveryone": "true" if on else "false", "addedUserIds": "", "removedUserIds": "",
    }, source=source, incident=incident)  # fmt: skip
    if not on:
        world.end_uncovered(source, ts)


def activity(world: World, day: int) -> None:
    """The day's accesses, runs and normal refusals."""
    rng = world.rng
    base, end = T0 + day * DAY_MS, T0 + (day + 1) * DAY_MS
    for user in list(world.users):
        works = world.working(user, day)
        if works:
            begin, finish = world.window(user, day)
            _interactive(world, user, day, begin, finish)
        for entry in user.entries:
            if entry.end_ms <= base or entry.start_ms >= end:
                continue
            for stream in entry.streams:
                _stream_day(world, entry, stream, day, works)
        if works and rng.random() < 0.07:
            _curious(world, user, world.work_time(user, day))


def _interactive(world: World, user: User, day: int, begin: int, finish: int) -> None:
    rng = world.rng
    workspace: tuple[str, str] | None = None
    slots: set[int] = set()
    for entry in user.entries:
        if not entry.interactive or entry.end_ms <= begin or entry.start_ms >= finish:
            continue
        hour = begin // HOUR_MS
        first = entry.last_ms < 0  # its first day: used in some hour for sure
        while hour * HOUR_MS < finish:
            lo, hi = (
                max(hour * HOUR_MS, begin, entry.start_ms),
                min((hour + 1) * HOUR_MS, finish, entry.end_ms),
            )
            if hi > lo and (rng.random() < entry.p_hour or first):
                first = False
                for _ in range(max(1 + len(entry.pending), poisson(rng, entry.lam))):
                    ts = rng.randrange(lo, hi)
                    run_type = (
                        entry.pending.pop()
                        if entry.pending
                        else ("" if rng.random() < entry.outside else "Workspace")
                    )
                    if run_type == "":
                        world.access(ts, user, entry.source, "", None)
                    else:
                        if workspace is None:
                            workspace = world.start_run(begin - 5 * MINUTE_MS, user, "Workspace")
                        world.access(ts, user, entry.source, "Workspace", workspace)
                    slots.add(ts // HOUR_MS)
                    entry.last_ms = max(entry.last_ms, ts)
            hour += 1
    if workspace is not None:
        world.stop_run(finish + 5 * MINUTE_MS, user, "Workspace", *workspace)
    for slot in slots:
        user.hist[slot % 24] += 1


def _stream_day(world: World, entry: Entry, stream: Stream, day: int, works: bool) -> None:
    rng = world.rng
    user, source = entry.user, entry.source
    base = T0 + day * DAY_MS
    if stream.kind in ("App", "Endpoint"):
        first = max(base, entry.start_ms)
        if stream.run is None:
            stream.run = world.start_run(first, user, stream.kind)[0]
        project = (user.project or world.projects[0]).id
        for hour in range(24):
            lo, hi = (
                max(base + hour * HOUR_MS, entry.start_ms),
                min(base + (hour + 1) * HOUR_MS, entry.end_ms),
            )
            if hi <= lo:
                continue
            local = (hour + user.zone) % 24
            busy = 1.6 if 8 <= local < 19 else 0.5
            for _ in range(poisson(rng, stream.rate * busy)):
                world.access(
                    rng.randrange(lo, hi), user, source, stream.kind, (stream.run, project)
                )
        if entry.end_ms < base + DAY_MS:
            world.stop_run(entry.end_ms - 1000, user, stream.kind, stream.run, project)
        return
    if stream.next_forced and entry.start_ms < base + DAY_MS:
        # run once by hand when it is set up: its data source sees its run type, and the
        # user's baseline its size, from the start
        stream.next_forced = False
        ts = entry.start_ms + rng.randrange(2 * MINUTE_MS, 50 * MINUTE_MS)
        if entry.valid(ts + HOUR_MS):
            _job(world, entry, stream, ts, rng.uniform(5, 20))
        return
    if stream.kind == "Scheduled":
        ts = base + int(stream.hour * HOUR_MS) + rng.randrange(0, 8 * MINUTE_MS)
        if entry.valid(ts) and (day % 7 < 5 or stream.size < 40):
            _job(world, entry, stream, ts, rng.uniform(5, 20))
        return
    if works and rng.random() < stream.per_week / 5:
        ts = world.work_time(user, day)
        if entry.valid(ts + HOUR_MS):
            _job(world, entry, stream, ts, rng.uniform(8, 40))


def _job(world: World, entry: Entry, stream: Stream, ts: int, minutes: float, *,
         factor: float = 1.0, incident: Incident | None = None) -> None:  # fmt: skip
    rng = world.rng
    user, source = entry.user, entry.source
    run = world.start_run(ts, user, stream.kind, incident=incident)
    count = max(1, int(stream.size * factor * math.exp(rng.gauss(0, 0.22))))
    span = int(minutes * MINUTE_MS)
    for offset in sorted(rng.randrange(1000, span) for _ in range(count)):
        if ts + offset >= entry.end_ms:
            break  # its grant was taken away: the job stops there
        world.access(ts + offset, user, source, stream.kind, run, incident=incident)
    world.stop_run(ts + span + 2000, user, stream.kind, *run)
    if incident is None and rng.random() < 0.02:  # the job goes on after its run ended
        for index in range(rng.randrange(1, 3)):
            later = ts + span + 60_000 * (index + 2)
            if entry.valid(later):
                world.refuse(later, user, source, "runEnded", run=run[0])


def _curious(world: World, user: User, ts: int) -> None:
    """A user tries a data source they never had (and may retry)."""
    rng = world.rng
    strangers = [s for s in rng.sample(world.sources, min(12, len(world.sources)))
                 if s.deleted_ms is None and s.id not in user.ever and not world.covered(user, s, ts)
                 and s.reserved_until < ts and not s.was_everyone and s.created_ms < ts]  # fmt: skip
    if not strangers:
        return
    source = strangers[0]
    for index in range(1 + (rng.random() < 0.35) + (rng.random() < 0.1)):
        world.refuse(ts + index * rng.randrange(5_000, 60_000), user, source, "notPermitted")


# -- the incidents ---------------------------------------------------------------------------------

Planter = Callable[["World", int, int], bool]


def _pick(world: World, items: list[Any]) -> Any | None:
    return world.rng.choice(items) if items else None


def _regulars(
    world: World, day: int, *, interactive: bool = True, min_days: int = 25
) -> list[Entry]:
    """Entries in use for a while, of users working that day, on data sources left alone."""
    base = T0 + day * DAY_MS
    found_entries = []
    for user in world.users:
        if (
            user.role != "User"
            or user.created_ms > base - 30 * DAY_MS
            or not world.working(user, day)
        ):
            continue
        for entry in user.entries:
            source = entry.source
            if (entry.valid(base + DAY_MS) and entry.start_ms < base - min_days * DAY_MS
                    and entry.last_ms > base - 5 * DAY_MS and source.deleted_ms is None
                    and source.reserved_until < base and source.transferred_ms < base - 7 * DAY_MS
                    and (user.id, source.id) not in world.planted_pairs
                    and (entry.interactive or not interactive)):  # fmt: skip
                found_entries.append(entry)
    return found_entries


def _interactive_type(source: Source) -> str | None:
    options = [t for t in ("Workspace", "") if t in source.types]
    return options[0] if options else None


def _plant_access(world: World, user: User, source: Source, ts: int, run_type: str,
                  incident: Incident, *, count: int = 1) -> None:  # fmt: skip
    world.planted_pairs.add((user.id, source.id))
    user.ever.add(source.id)
    run = world.start_run(ts - MINUTE_MS, user, run_type, incident=incident) if run_type else None
    for index in range(count):
        world.access(ts + index * world.rng.randrange(2_000, 40_000), user, source, run_type, run,
                     incident=incident)  # fmt: skip
    if run is not None:
        world.stop_run(ts + count * 45_000 + MINUTE_MS, user, run_type, *run)


def _reserve(source: Source, until: int) -> None:
    source.reserved_until = max(source.reserved_until, until)


def plant_first_access(world: World, day: int, variation: int) -> bool:
    rng, base = world.rng, T0 + day * DAY_MS
    users = [u for u in world.users if u.role == "User" and u.created_ms < base - 40 * DAY_MS
             and u.left_day is None and world.working(u, day)]  # fmt: skip
    if variation == 0:  # a long-standing everyone share, never used by this user
        pairs = [(u, s) for s in world.active_sources(base) if s.everyone and _interactive_type(s) is not None
                 for u in users if s.id not in u.ever and world.old_cover(u, s, base - 30 * DAY_MS)
                 and (u.id, s.id) not in world.planted_pairs]  # fmt: skip
        name = "dormant everyone share"
    elif variation == 1:  # listed long ago, never used
        pairs = [(u, s) for s in world.active_sources(base) if _interactive_type(s) is not None
                 for u in users if world.old_cover(u, s, base - 30 * DAY_MS) and u.id in s.users
                 and not any(e.source is s for e in u.entries)
                 and (u.id, s.id) not in world.planted_pairs]  # fmt: skip
        name = "dormant listed user"
    else:  # back after two months away
        pairs = [(e.user, e.source) for u in users for e in u.entries
                 if e.faded and 0 < e.last_ms < base - 50 * DAY_MS
                 and world.old_cover(u, e.source, base - 50 * DAY_MS) and e.source.reserved_until < base
                 and (u.id, e.source.id) not in world.planted_pairs
                 and _interactive_type(e.source) is not None
                 and not any(x.source is e.source and x.end_ms > e.end_ms for x in u.entries)]  # fmt: skip
        name = "back after months"
    choice = _pick(world, pairs)
    if choice is None:
        return False
    user, source = choice
    incident = _incident(world, "firstAccess", name)
    ts = world.work_time(user, day)
    _plant_access(
        world,
        user,
        source,
        ts,
        _interactive_type(source) or "",
        incident,
        count=rng.randrange(1, 4),
    )
    _reserve(source, ts + 2 * HOUR_MS)
    return True


def plant_after_revocation(world: World, day: int, variation: int) -> bool:
    rng = world.rng
    entries = _regulars(world, day, interactive=False)
    if variation == 0:  # removed from the user list
        options = [
            e
            for e in entries
            if e.user.id in e.source.users
            and not e.source.everyone
            and e.source.owner is not e.user
        ]
        name = "permission removed"
    elif variation == 1:  # the owner gave it away
        options = [e for e in entries if e.source.owner is e.user and e.user.id not in e.source.users
                   and not e.source.everyone and e.user.project is not None]  # fmt: skip
        name = "ownership transferred away"
    elif variation == 2:  # deleted under a user's feet
        options = [e for e in entries if e.source.owner is not e.user]
        name = "data source deleted"
    else:  # the everyone share removed
        options = [
            e
            for e in entries
            if e.source.everyone
            and e.source.owner is not e.user
            and e.user.id not in e.source.users
        ]
        name = "everyone share removed"
    entry = _pick(world, options)
    if entry is None:
        return False
    user, source = entry.user, entry.source
    incident = _incident(world, "accessAfterRevocation", name)
    ts = world.work_time(source.owner, day)
    if variation == 0:
        source.users.discard(user.id)
        world.emit(ts, "DataSourceChangeOfPermissions", source.owner, {
            "isEveryone": "true" if source.everyone else "false", "addedUserIds": "",
            "removedUserIds": user.id,
        }, source=source, incident=incident)  # fmt: skip
        world.end_uncovered(source, ts)
    elif variation == 1:
        heirs = [u for u in (user.project.members if user.project else []) if u is not user]
        if not heirs:
            world.incidents.pop()
            return False
        _transfer(world, source, rng.choice(heirs), ts, by=user, incident=incident)
    elif variation == 2:
        _delete(world, source, ts, by=source.owner, incident=incident)
    else:
        _everyone(world, source, ts, False, by=source.owner, incident=incident)
    later = ts + int(rng.uniform(0.3, 30) * HOUR_MS)
    reason = "deleted" if variation == 2 else "notPermitted"
    for index in range(rng.randrange(1, 4)):
        world.refuse(
            later + index * rng.randrange(20_000, 20 * MINUTE_MS),
            user,
            source,
            reason,
            incident=incident,
        )
    _reserve(source, later + 3 * DAY_MS)
    return True


def plant_without_grant(world: World, day: int, variation: int) -> bool:
    rng, base = world.rng, T0 + day * DAY_MS
    users = [
        u
        for u in world.users
        if u.role == "User" and u.created_ms < base - 30 * DAY_MS and world.working(u, day)
    ]
    if variation == 0:  # never granted
        user = _pick(world, users)
        if user is None:
            return False
        strangers = [s for s in world.active_sources(base) if not s.everyone and s.id not in user.ever
                     and _interactive_type(s) is not None and s.transferred_ms < base - 7 * DAY_MS]  # fmt: skip
        source = _pick(world, strangers)
        if source is None:
            return False
        incident = _incident(world, "accessWithoutGrant", "never granted")
        ts = world.work_time(user, day)
    else:
        entries = [e for e in _regulars(world, day) if e.source.owner is not e.user
                   and (variation == 2 or (e.user.id in e.source.users and not e.source.everyone))]  # fmt: skip
        entry = _pick(world, entries)
        if entry is None:
            return False
        user, source = entry.user, entry.source
        incident = _incident(
            world, "accessWithoutGrant", "after removal" if variation == 1 else "after deletion"
        )
        begin = T0 + day * DAY_MS + int((user.start - user.zone) * HOUR_MS)
        cut = begin + int(rng.uniform(0.3, 2.5) * HOUR_MS)  # in the user's working hours
        if variation == 1:
            source.users.discard(user.id)
            world.emit(cut, "DataSourceChangeOfPermissions", source.owner, {
                "isEveryone": "true" if source.everyone else "false", "addedUserIds": "",
            "removedUserIds": user.id,
            }, source=source, incident=incident)  # fmt: skip
            world.end_uncovered(source, cut)
        else:
            _delete(world, source, cut, by=source.owner, incident=incident)
        ts = cut + int(rng.uniform(0.1, user.length - 3.5) * HOUR_MS)
    kind = _interactive_type(source) or ""
    _plant_access(world, user, source, ts, kind, incident)
    _reserve(source, ts + 2 * DAY_MS)
    return True


def plant_volume(world: World, day: int, variation: int) -> bool:
    rng = world.rng
    if variation == 1:  # a job run far bigger than ever
        entries = [
            e
            for e in _regulars(world, day, interactive=False)
            if any(s.kind == "Batch" for s in e.streams)
        ]
    else:
        entries = [e for e in _regulars(world, day) if _interactive_type(e.source) is not None]
    entries = [e for e in entries if world.pair_peak[(e.user.id, e.source.id)] < 120]
    entry = _pick(world, entries)
    if entry is None:
        return False
    user, source = entry.user, entry.source
    world.planted_pairs.add((user.id, source.id))
    peak = world.pair_peak[(user.id, source.id)]
    ts = world.work_time(user, day)
    ts = ts - ts % HOUR_MS + 3 * MINUTE_MS  # within one clock hour
    if variation == 1:
        incident = _incident(world, "volumeSpike", "job run blown up")
        stream = next(s for s in entry.streams if s.kind == "Batch")
        factor = max(7.5 * max(peak, 10) / stream.size, 90 / stream.size, 8.0)
        _job(world, entry, stream, ts, rng.uniform(25, 45), factor=factor, incident=incident)
    else:
        incident = _incident(
            world, "volumeSpike", "bulk download" if variation == 0 else "listing sweep"
        )
        count = max(int(5.5 * peak) + 40, rng.randrange(220, 600))
        kind = _interactive_type(source) or ""
        run = world.start_run(ts - MINUTE_MS, user, kind, incident=incident) if kind else None
        span = int(rng.uniform(20, 50) * MINUTE_MS)
        for offset in sorted(rng.randrange(0, span) for _ in range(count)):
            world.access(ts + offset, user, source, kind, run, incident=incident,
                         listing=variation == 2 and not source.tabular)  # fmt: skip
        if run is not None:
            world.stop_run(ts + span + MINUTE_MS, user, kind, *run)
    _reserve(source, ts + 3 * HOUR_MS)
    return True


def plant_refused_burst(world: World, day: int, variation: int) -> bool:
    rng, base = world.rng, T0 + day * DAY_MS
    users = [
        u
        for u in world.users
        if u.role == "User" and u.created_ms < base - 20 * DAY_MS and world.working(u, day)
    ]
    user = _pick(world, users)
    if user is None:
        return False
    ts = world.work_time(user, day)
    strangers = [s for s in world.active_sources(base) if s.id not in user.ever and not s.was_everyone
                 and not world.covered(user, s, ts)]  # fmt: skip
    if variation == 0 and len(strangers) >= 12:  # one user tries one data source after another
        incident = _incident(world, "refusedBurst", "scanning data sources")
        for index, source in enumerate(
            rng.sample(strangers, rng.randrange(12, min(20, len(strangers)) + 1))
        ):
            world.refuse(
                ts + index * rng.randrange(5_000, 25_000),
                user,
                source,
                "notPermitted",
                incident=incident,
            )
        return True
    if variation == 1 and strangers:  # one user hammers one data source
        incident = _incident(world, "refusedBurst", "hammering one data source")
        source = rng.choice(strangers)
        for index in range(rng.randrange(15, 30)):
            world.refuse(
                ts + index * rng.randrange(3_000, 12_000),
                user,
                source,
                "notPermitted",
                incident=incident,
            )
        return True
    if variation == 2:  # several users against one data source
        sources = [s for s in world.active_sources(base) if not s.was_everyone]
        source = _pick(world, sources)
        if source is None:
            return False
        many = [u for u in users if source.id not in u.ever and not world.covered(u, source, ts)]
        if len(many) < 4:
            return False
        incident = _incident(world, "refusedBurst", "many users, one data source")
        moment = ts
        for attacker in rng.sample(many, min(len(many), rng.randrange(4, 7))):
            for _ in range(rng.randrange(2, 4)):
                moment += rng.randrange(5_000, 25_000)
                world.refuse(moment, attacker, source, "notPermitted", incident=incident)
        _reserve(source, moment + HOUR_MS)
        return True
    return False


def plant_everyone(world: World, day: int, variation: int) -> bool:
    rng, base = world.rng, T0 + day * DAY_MS
    users = [
        u
        for u in world.users
        if u.role == "User" and u.created_ms < base - 20 * DAY_MS and world.working(u, day)
    ]
    user = _pick(world, users)
    if user is None:
        return False
    if variation == 0:  # created for everyone, with a service account's credentials
        incident = _incident(world, "everyoneShare", "created for everyone")
        source = world.make_source(world.work_time(user, day), user, everyone=True, credential="Shared",
                                   ds_type=rng.choice(("S3Config", "PostgreSQLConfig", "SnowflakeConfig")),
                                   incident=incident)  # fmt: skip
        _reserve(source, base + 30 * DAY_MS)
        return True
    sources = [s for s in world.active_sources(base) if not s.everyone and s.credential == "Shared"]
    source = _pick(world, sources)
    if source is None:
        return False
    actor = source.owner if variation == 1 else rng.choice(world.admins)
    incident = _incident(
        world, "everyoneShare", "shared by its owner" if variation == 1 else "shared by an admin"
    )
    ts = world.work_time(source.owner, day)
    _everyone(world, source, ts, True, by=actor, incident=incident)
    if rng.random() < 0.5:  # taken back the next day
        world.defer(ts + DAY_MS, lambda at: _everyone(world, source, at, False, by=source.owner))
    _reserve(source, ts + 3 * DAY_MS)
    return True


def plant_transfer_delete(world: World, day: int, variation: int) -> bool:
    rng, base = world.rng, T0 + day * DAY_MS
    sources = [
        s
        for s in world.active_sources(base)
        if s.owner.project is not None and len(s.owner.project.members) > 2
    ]
    source = _pick(world, sources)
    if source is None:
        return False
    owner = source.owner
    team = [u for u in owner.project.members if u is not owner]  # type: ignore[union-attr]
    ts = world.work_time(owner, day)
    if variation == 0:  # given to a colleague, who deletes it
        incident = _incident(world, "transferThenDelete", "new owner deletes")
        heir = rng.choice(team)
        _transfer(world, source, heir, ts, by=owner, incident=incident)
        _delete(world, source, ts + int(rng.uniform(0.5, 8) * HOUR_MS), by=heir, incident=incident)
    elif variation == 1:  # an admin takes it and deletes it
        incident = _incident(world, "transferThenDelete", "admin takes and deletes")
        admin = rng.choice(world.admins)
        _transfer(world, source, admin, ts, by=admin, incident=incident)
        _delete(
            world, source, ts + int(rng.uniform(8, 45) * MINUTE_MS), by=admin, incident=incident
        )
    else:  # passed on twice, then deleted
        incident = _incident(world, "transferThenDelete", "passed on twice")
        first, second = rng.sample(team, 2) if len(team) > 1 else (team[0], owner)
        _transfer(world, source, first, ts, by=owner, incident=incident)
        _transfer(
            world,
            source,
            second,
            ts + int(rng.uniform(1, 5) * HOUR_MS),
            by=first,
            incident=incident,
        )
        _delete(
            world, source, ts + int(rng.uniform(12, 30) * HOUR_MS), by=second, incident=incident
        )
    return True


def plant_unusual_hour(world: World, day: int, variation: int) -> bool:
    rng = world.rng
    entries = [e for e in _regulars(world, day, min_days=30) if _interactive_type(e.source) is not None
               and sum(e.user.hist) > 200]  # fmt: skip
    if variation == 1:
        entries = [e for e in entries if "" in e.source.types]
    entries = [e for e in entries if e.user.id not in world.night_owls]  # one night each
    entry = _pick(world, entries)
    if entry is None:
        return False
    user, source = entry.user, entry.source
    local = {0: rng.uniform(2, 4.5), 1: (user.start + user.length + rng.uniform(4, 5.5)) % 24,
             2: rng.uniform(0.5, 4)}[variation]  # fmt: skip
    plant_day = day if variation != 2 else day - day % 7 - 2  # the Saturday night before
    utc = (local - user.zone) % 24
    hist = user.hist
    hour = int(utc)
    if sum(hist[(hour + step) % 24] for step in (-2, -1, 0, 1, 2)) > 0.005 * sum(hist):
        return False
    ts = T0 + plant_day * DAY_MS + int(utc * HOUR_MS)
    world.night_owls.add(user.id)
    incident = _incident(
        world,
        "unusualHour",
        ("night workspace", "late outside any run", "weekend night")[variation],
    )
    kind = "" if variation == 1 else (_interactive_type(source) or "")
    _plant_access(world, user, source, ts, kind, incident, count=rng.randrange(2, 7))
    _reserve(source, ts + 2 * HOUR_MS)
    return True


def plant_new_run_type(world: World, day: int, variation: int) -> bool:
    rng, base = world.rng, T0 + day * DAY_MS
    wanted = ("Endpoint", "App", "")[variation]
    entries = [e for e in _regulars(world, day, interactive=False) if wanted not in e.source.types
               and e.source.accesses > 400 and e.source.created_ms < base - 30 * DAY_MS]  # fmt: skip
    if wanted == "" and not entries:
        wanted = "Launcher"
        entries = [e for e in _regulars(world, day, interactive=False) if wanted not in e.source.types
                   and e.source.accesses > 400 and e.source.created_ms < base - 30 * DAY_MS]  # fmt: skip
    entry = _pick(world, entries)
    if entry is None:
        return False
    user, source = entry.user, entry.source
    incident = _incident(world, "newRunType", {"Endpoint": "model API", "App": "app", "": "outside any run",
                                               "Launcher": "launcher"}[wanted])  # fmt: skip
    ts = world.work_time(user, day)
    _plant_access(world, user, source, ts, wanted, incident, count=rng.randrange(2, 8))
    _reserve(source, ts + 2 * HOUR_MS)
    return True


def _incident(world: World, rule: str, variation: str) -> Incident:
    incident = Incident(rule, variation)
    world.incidents.append(incident)
    return incident


PLANTERS: Final[dict[str, tuple[Planter, int]]] = {
    "firstAccess": (plant_first_access, 3),
    "accessAfterRevocation": (plant_after_revocation, 4),
    "accessWithoutGrant": (plant_without_grant, 3),
    "volumeSpike": (plant_volume, 3),
    "refusedBurst": (plant_refused_burst, 3),
    "everyoneShare": (plant_everyone, 3),
    "transferThenDelete": (plant_transfer_delete, 3),
    "unusualHour": (plant_unusual_hour, 3),
    "newRunType": (plant_new_run_type, 3),
}
"""Each rule's planter and how many variations it has."""


def schedule(rng: random.Random) -> dict[int, list[tuple[str, int, int]]]:
    """Which incident (rule, variation, instance) is planted on which day: spread over the
    span (one that finds no fitting target is tried again the next day)."""
    plan: dict[int, list[tuple[str, int, int]]] = collections.defaultdict(list)
    for rule, (_, variations) in PLANTERS.items():
        for index in range(INSTANCES):
            day = rng.randrange(WARMUP_DAYS, SPAN_DAYS - 6)
            plan[day].append((rule, index % variations, index))
    return plan


# -- the whole trail ---------------------------------------------------------------------------------


@dataclass
class Generated:
    events: list[Event]
    incidents: list[Incident]
    missed: list[tuple[str, int]]
    seconds: float


def simulate(seed: int, events: int) -> Generated:
    """The background and its incidents (see the module)."""
    started = time.perf_counter()
    world = World(seed, scale=events / EVENTS_AT_SCALE_1)
    plan = schedule(random.Random(seed + 1))
    pending: list[tuple[str, int, int]] = []

    def changes(day: int) -> None:
        nonlocal pending
        world.run_deferred(day)
        management(world, day)
        due, pending = [*pending, *plan.get(day, [])], []
        for token in due:
            rule, variation, _ = token
            if day > SPAN_DAYS - 4 or not PLANTERS[rule][0](world, day, variation):
                pending.append(token)

    found(world, 0)
    changes(0)
    for day in range(SPAN_DAYS):
        # the next day's changes and incidents first: a working day that runs past midnight
        # UTC meets them
        if day + 1 < SPAN_DAYS:
            changes(day + 1)
        activity(world, day)
    missed = [(rule, variation) for rule, variation, _ in pending]
    world.events.sort(key=lambda event: (event[0], event[1]))
    return Generated(world.events, world.incidents, missed, time.perf_counter() - started)


def rows_of(
    generated: Generated, *, first_seq: int
) -> tuple[Iterator[list[tuple[Any, ...]]], dict[int, int]]:
    """The events as rows of ``RAW_COLUMNS`` in batches, and each event's seq by its order."""
    seq_of = {event[1]: first_seq + index for index, event in enumerate(generated.events)}

    def batches() -> Iterator[list[tuple[Any, ...]]]:
        batch: list[tuple[Any, ...]] = []
        for index, event in enumerate(generated.events):
            ts, _, kind, ds_id, ds_name, ds_type, user_id, username, run, project, text, _ = event
            batch.append(raw_row(
                seq=first_seq + index, ts_ms=ts, event_kind=kind, data_source_id=ds_id,
                data_source_name=ds_name, data_source_type=ds_type, performed_by=user_id,
                performed_by_username=username, run_id=run, project_id=project, metadata=text,
            ))  # fmt: skip
            if len(batch) == 50_000:
                yield batch
                batch = []
        if batch:
            yield batch

    return batches(), seq_of


@dataclass
class Built:
    url: str
    directory: Path
    events: int
    incidents: list[dict[str, Any]]
    missed: list[tuple[str, int]]
    generate_seconds: float
    load_seconds: float


def build(events: int, seed: int, directory: Path, *, database_url: str | None = None) -> Built:
    """Generate the trail and load it into a new store under ``directory`` (or into the empty
    database of ``database_url``); write ``incidents.json`` there."""
    directory.mkdir(parents=True, exist_ok=True)
    generated = simulate(seed, events)
    backend: Backend
    if database_url and database_url.startswith("postgres"):
        backend = PostgreSQLBackend("forensics")
        backend.url = database_url
    else:
        backend = SQLiteBackend(directory, "forensics")
        backend.drop()
    started = time.perf_counter()
    dstrail = open_dstrail(Settings(data_dir=directory / "data", database_url=backend.url))
    conn = backend.raw()
    size, packed = backend.raw_select(
        conn, "SELECT size, frontier FROM audit_head WHERE id = 1", []
    )[0]
    frontier = bytes(packed or b"")
    sealer = Sealer(
        size=int(size), frontier=[frontier[i : i + 32] for i in range(0, len(frontier), 32)]
    )
    sink = Sink(backend, dstrail, conn)
    first_ms, last_ms = generated.events[0][0], generated.events[-1][0]
    sink.start(first_ms, last_ms)
    batches, seq_of = rows_of(generated, first_seq=int(size) + 1)
    counts: collections.Counter[tuple[int, str]] = collections.Counter()
    total = 0
    for batch in batches:
        sink.write(sealer.seal(batch))
        _count_days(counts, batch)
        total += len(batch)
    sealer.close(last_ms)
    sink.finish(sealer, counts, total)
    conn.close()
    dstrail.store.dispose()
    incidents = [
        {"rule": incident.rule, "variation": incident.variation,
         "seqs": sorted(seq_of[order] for order in incident.orders)}
        for incident in generated.incidents if incident.orders
    ]  # fmt: skip
    (directory / "incidents.json").write_bytes(orjson.dumps({
        "seed": seed, "events": total, "url": backend.url, "incidents": incidents,
        "missed": generated.missed,
    }, option=orjson.OPT_INDENT_2))  # fmt: skip
    return Built(backend.url, directory, total, incidents, generated.missed,
                 generated.seconds, time.perf_counter() - started)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("forensics-trail"))
    parser.add_argument(
        "--database-url", help="an empty PostgreSQL database (default: SQLite under --out)"
    )
    args = parser.parse_args(argv)
    built = build(args.events, args.seed, args.out, database_url=args.database_url)
    kinds = collections.Counter(incident["rule"] for incident in built.incidents)
    print(f"{built.events:,} events (seed {args.seed}) in {built.url}: generated in "
          f"{built.generate_seconds:.1f} s, loaded in {built.load_seconds:.1f} s")  # fmt: skip
    print("planted: " + ", ".join(f"{rule} {count}" for rule, count in sorted(kinds.items())))
    if built.missed:
        print(f"not planted (no fitting target): {built.missed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
