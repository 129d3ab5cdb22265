"""Random histories made through the real services, and an oracle written apart from the
forensics code: the trail read back through the audit query service and replayed into plain
dicts, event by event.

``History`` chooses each step among the moves the services allow at that point (names free for
a new data source, active data sources to change, attached pairs to detach); what the trail
records is then the only input of ``replay``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import orjson

from dstrail.audit.query import iter_chunks
from dstrail.context import Dstrail
from dstrail.domain.audit_filter import AuditFilter
from dstrail.domain.datasources import CredentialType, DataSource, Permissions
from dstrail.domain.projects import Project
from dstrail.domain.trail import (
    DATA_SOURCE_ID,
    DATA_SOURCE_NAME,
    EVENT_KIND,
    METADATA,
    PERFORMED_BY,
    SEQ,
    TS_MS,
    EventKind,
)
from dstrail.domain.users import OPERATOR, Role, User
from dstrail.services import datasources as ds_service
from dstrail.services import projects as project_service
from dstrail.services import users as user_service
from dstrail.services.credentials import CredentialVault
from dstrail.services.forensics import Follower
from tests.support import SettableClock

START_MS: Final = 1_780_000_000_000
"""Where every history's clock starts (May 2026)."""
NAMES: Final = ("ds-a", "ds-b", "ds-c")
"""The data source names a history uses: few, so that deleted names are reused."""
MOVES: Final = (
    "user", "create", "create", "delete", "permissions", "permissions", "transfer",
    "project", "attach", "detach", "catch-up",
)  # fmt: skip
STEPS_MS: Final = (0, 1, 1, 3, 50, -2)
"""How far the clock moves before a step: sometimes not at all, sometimes back."""


class History:
    """Makes a history, step by step, through the services (each step its own transaction)."""

    def __init__(self, dstrail: Dstrail, clock: SettableClock, follower: Follower) -> None:
        self.dstrail, self.clock, self.follower = dstrail, clock, follower
        self.vault = CredentialVault(dstrail.keys.encryption_key)
        self.users: list[User] = []
        self.admin = self._user("admin", Role.SYS_ADMIN)
        self.active: dict[str, DataSource] = {}
        self.projects: list[Project] = []
        self.attached: set[tuple[str, str]] = set()

    def _user(self, name: str, role: Role = Role.USER) -> User:
        with self.dstrail.store.write() as tx:
            user, _key = user_service.create_user(
                tx, actor=OPERATOR, username=name, email=None, role=role, now_ms=self.clock()
            )
        self.users.append(user)
        return user

    def _pick_users(self, bits: int) -> tuple[str, ...]:
        return tuple(user.id for i, user in enumerate(self.users) if bits >> i & 1)

    def step(self, move: str, a: int, b: int, dt: int) -> None:
        """One move (``MOVES``), its choices made by ``a`` and ``b``; a move the state does
        not allow now does nothing."""
        self.clock.advance(STEPS_MS[dt % len(STEPS_MS)])
        now = self.clock()
        active = sorted(self.active.values(), key=lambda ds: ds.id)
        if move == "user":
            self._user(f"user-{len(self.users)}")
        elif move == "catch-up":
            self.follower.catch_up()
        elif move == "project":
            owner = self.users[a % len(self.users)]
            with self.dstrail.store.write() as tx:
                self.projects.append(
                    project_service.create_project(
                        tx, actor=owner, name=f"p{len(self.projects)}", owner=owner,
                        collaborators=[], now_ms=now,
                    )
                )  # fmt: skip
        elif move == "create":
            taken = {ds.name for ds in active}
            free = [name for name in NAMES if name not in taken]
            if free:
                self._create(free[a % len(free)], self.users[a % len(self.users)], b, now)
        elif active:
            self._change(move, active[a % len(active)], b, now)

    def _create(self, name: str, owner: User, b: int, now: int) -> None:
        spec = ds_service.DataSourceCreate(
            name=name, data_source_type="DatasetConfig", auth_type="NoAuth",
            credential_type=CredentialType.SHARED, config={},
            permissions=Permissions(is_everyone=b % 3 == 0, user_ids=self._pick_users(b >> 2)),
        )  # fmt: skip
        with self.dstrail.store.write() as tx:
            ds = ds_service.create_data_source(tx, self.vault, spec=spec, actor=owner, now_ms=now)
        self.active[ds.id] = ds

    def _change(self, move: str, ds: DataSource, b: int, now: int) -> None:
        actor = self.admin if b % 2 else self.owner_of(ds)
        with self.dstrail.store.write() as tx:
            if move == "delete":
                ds_service.delete_data_source(tx, data_source_id=ds.id, actor=actor, now_ms=now)
                del self.active[ds.id]
                self.attached = {pair for pair in self.attached if pair[0] != ds.id}
                return
            if move == "permissions":
                permissions = Permissions(
                    is_everyone=b >> 1 & 1 == 1, user_ids=self._pick_users(b >> 2)
                )
                self.active[ds.id] = ds_service.set_permissions(
                    tx, data_source_id=ds.id, permissions=permissions, actor=actor, now_ms=now
                ).data_source
            elif move == "transfer":
                owner = self.users[b % len(self.users)]
                if owner.id != ds.owner_id:
                    self.active[ds.id] = ds_service.transfer_ownership(
                        tx, data_source_id=ds.id, new_owner_id=owner.id, actor=actor, now_ms=now
                    )
            elif move == "attach" and self.projects:
                project = self.projects[b % len(self.projects)]
                if (ds.id, project.id) not in self.attached:
                    self.active[ds.id] = ds_service.attach_to_project(
                        tx, data_source_id=ds.id, project_id=project.id, actor=self.admin,
                        now_ms=now,
                    )  # fmt: skip
                    self.attached.add((ds.id, project.id))
            elif move == "detach":
                pairs = sorted(pair for pair in self.attached if pair[0] == ds.id)
                if pairs:
                    _ds, project_id = pairs[b % len(pairs)]
                    self.active[ds.id] = ds_service.detach_from_project(
                        tx, data_source_id=ds.id, project_id=project_id, actor=self.admin,
                        now_ms=now,
                    )  # fmt: skip
                    self.attached.discard((ds.id, project_id))

    def owner_of(self, ds: DataSource) -> User:
        """The user who owns ``ds`` now."""
        return next(user for user in self.users if user.id == ds.owner_id)


# -- the oracle ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """An event of the trail as the audit query service returns it."""

    seq: int
    ts_ms: int
    kind: str
    data_source_id: str
    data_source_name: str
    performed_by: str
    metadata: dict[str, str]


def read_trail(dstrail: Dstrail) -> list[Event]:
    """Every event of the trail, every kind, in seq order, through the audit query service."""
    everything = AuditFilter(start_ms=0, end_ms=2**62, event_kinds=tuple(EventKind))
    rows = [row for chunk in iter_chunks(dstrail.store, everything) for row in chunk]
    return sorted(
        (
            Event(
                seq=row[SEQ], ts_ms=row[TS_MS], kind=row[EVENT_KIND],
                data_source_id=row[DATA_SOURCE_ID], data_source_name=row[DATA_SOURCE_NAME],
                performed_by=row[PERFORMED_BY], metadata=orjson.loads(row[METADATA]),
            )
            for row in rows
        ),
        key=lambda event: event.seq,
    )  # fmt: skip


def seq_at(events: list[Event], ts_ms: int) -> int:
    """The seq of the last event at or before ``ts_ms`` in (time, seq) order; 0: none."""
    before = [(e.ts_ms, e.seq) for e in events if e.ts_ms <= ts_ms]
    return max(before)[1] if before else 0


def _ids(value: str | None) -> list[str]:
    return [part for part in (value or "").split(",") if part]


@dataclass
class Source:
    """A data source as the replay knows it: each grant with the seq that gave it."""

    name: str
    first_seq: int
    owner: tuple[str, int] | None = None
    users: dict[str, int] = field(default_factory=dict)
    everyone: int | None = None
    projects: dict[str, int] = field(default_factory=dict)
    created: bool = False
    deleted: bool = False


@dataclass
class World:
    """What events 1..S say."""

    sources: dict[str, Source] = field(default_factory=dict)
    created: dict[str, int] = field(default_factory=dict)
    """User id to the seq of their UserCreated."""


def replay(events: list[Event], through: int) -> World:
    """The world after events 1 to ``through``, one simple rule a kind."""
    world = World()
    for e in events:
        if e.seq > through:
            break
        m = e.metadata
        if e.kind == EventKind.USER_CREATED:
            world.created.setdefault(m["userId"], e.seq)
            continue
        if not e.data_source_id:
            continue
        source = world.sources.setdefault(e.data_source_id, Source(e.data_source_name, e.seq))
        if e.kind == EventKind.CREATE_DATA_SOURCE:
            source.created = True
            source.owner = (m["ownerId"], e.seq)
            source.users = dict.fromkeys(_ids(m.get("userIds")), e.seq)
            source.everyone = e.seq if m["isEveryone"] == "true" else None
            source.projects = dict.fromkeys(_ids(m.get("projectIds")), e.seq)
        elif e.kind == EventKind.CHANGE_OF_PERMISSIONS:
            for user_id in _ids(m.get("removedUserIds")):
                source.users.pop(user_id, None)
            for user_id in _ids(m.get("addedUserIds")):
                source.users.setdefault(user_id, e.seq)
            if m["isEveryone"] == "true":
                source.everyone = source.everyone or e.seq
            else:
                source.everyone = None
        elif e.kind == EventKind.CHANGE_OF_OWNERSHIP:
            source.owner = (m["newOwnerId"], e.seq)
        elif e.kind == EventKind.ASSOCIATED_TO_PROJECT:
            source.projects.setdefault(m["projectId"], e.seq)
        elif e.kind == EventKind.DISSOCIATED_FROM_PROJECT:
            source.projects.pop(m["projectId"], None)
        elif e.kind == EventKind.DELETE_DATA_SOURCE:
            source.deleted = True
            source.owner, source.users, source.everyone, source.projects = None, {}, None, {}
    return world


GrantSet = set[tuple[str, str, int]]
"""(via, subject, seq of the granting event)."""


def expected_grants(world: World, ds_id: str) -> tuple[GrantSet, GrantSet, dict[str, set[str]]]:
    """A data source's use grants, its project attachments, and who could use it (user id to
    the vias), as the replay says."""
    source = world.sources.get(ds_id)
    if source is None:
        return set(), set(), {}
    grants: GrantSet = set()
    if source.owner is not None:
        grants.add(("owner", source.owner[0], source.owner[1]))
    grants |= {("user", user_id, seq) for user_id, seq in source.users.items()}
    if source.everyone is not None:
        grants.add(("everyone", "", source.everyone))
    projects = {("project", pid, seq) for pid, seq in source.projects.items()}
    reach: dict[str, set[str]] = {}
    for via, subject, _seq in grants:
        if via == "everyone":
            for user_id in world.created:
                reach.setdefault(user_id, set()).add("everyone")
        else:
            reach.setdefault(subject, set()).add(via)
    return grants, projects, reach


def expected_of_user(world: World, user_id: str) -> dict[str, tuple[GrantSet, GrantSet]]:
    """The data sources a user could use: data source id to (its grants naming the user, or
    its everyone-share while the user existed; its project attachments)."""
    found: dict[str, tuple[GrantSet, GrantSet]] = {}
    for ds_id in world.sources:
        grants, projects, _reach = expected_grants(world, ds_id)
        mine = {
            g for g in grants
            if g[1] == user_id or (g[0] == "everyone" and user_id in world.created)
        }  # fmt: skip
        if mine:
            found[ds_id] = (mine, projects)
    return found


def named_at(world: World, name: str) -> str | None:
    """The data source that had ``name``: the newest the trail named so."""
    named = [(s.first_seq, ds_id) for ds_id, s in world.sources.items() if s.name == name]
    return max(named)[1] if named else None


def status_of(world: World, ds_id: str) -> str:
    """Active, Deleted or NotYetCreated."""
    source = world.sources.get(ds_id)
    if source is None:
        return "NotYetCreated"
    return "Deleted" if source.deleted else "Active"


def all_ids(events: list[Event]) -> tuple[list[str], list[str]]:
    """Every data source id and every user id the trail names, each once."""
    sources = list(dict.fromkeys(e.data_source_id for e in events if e.data_source_id))
    users = list(
        dict.fromkeys(e.metadata["userId"] for e in events if e.kind == EventKind.USER_CREATED)
    )
    return sources, users
