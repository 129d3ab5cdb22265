"""Entitlements from the trail alone: what each event does to the grants of its data source,
and the ledger that turns a run of events into grant intervals by sequence number.

The access rule (``domain.datasources.can_use``): a user may use an active data source when
they own it, are listed (``permissions.userIds``) or it is shared with everyone. Projects grant
no use: a data source is *attached* to them, and that is reported beside the grants. A grant
is open from the event that gave it (``granted``) to the event that took it away
(``revoked``): in force at seq S when ``granted.seq <= S`` and it was not revoked at or before
S. Everyone at S is every user the trail saw created at or before S.

Pure: no I/O. The follower loads the open grants of the data sources a batch names, runs the
batch through a ``Ledger`` and stores what it opened and closed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from dstrail.domain.forensics.events import TrailEvent, split_ids
from dstrail.domain.trail import EventKind


class Via(StrEnum):
    """Through what a grant reaches a data source."""

    OWNER = "owner"
    USER = "user"
    EVERYONE = "everyone"
    PROJECT = "project"
    """Attached to a project: reported, grants no use."""


USE_VIAS: Final = (Via.OWNER, Via.USER, Via.EVERYONE)
"""The grants that let a user use a data source, in the order answers list them."""
EVERYONE_SUBJECT: Final = ""
"""The ``subject_id`` of an everyone-share."""

GRANTING_KINDS: Final = frozenset(
    {
        EventKind.CREATE_DATA_SOURCE.value,
        EventKind.CHANGE_OF_PERMISSIONS.value,
        EventKind.CHANGE_OF_OWNERSHIP.value,
        EventKind.ASSOCIATED_TO_PROJECT.value,
        EventKind.DISSOCIATED_FROM_PROJECT.value,
        EventKind.DELETE_DATA_SOURCE.value,
    }
)
"""The kinds whose events open or close grants."""
USER_KINDS: Final = frozenset({EventKind.USER_CREATED.value, EventKind.USER_ROLE_CHANGED.value})
"""The kinds whose events say which users exist, and their role."""


@dataclass(frozen=True, slots=True)
class EventRef:
    """The event that gave or took away a grant: its seq, time, who performed it, its kind."""

    seq: int
    ts_ms: int
    by: str
    kind: str

    @classmethod
    def of(cls, event: TrailEvent) -> EventRef:
        """The reference to ``event``."""
        return cls(seq=event.seq, ts_ms=event.ts_ms, by=event.performed_by, kind=event.event_kind)


GrantKey = tuple[str, "Via", str]
"""(data source id, via, subject id): at most one grant of a key is open at a time."""


@dataclass(slots=True)
class Grant:
    """One grant interval. ``id`` is the stored row's (None: not stored yet)."""

    data_source_id: str
    data_source_name: str
    via: Via
    subject_id: str
    subject_name: str
    granted: EventRef
    revoked: EventRef | None = None
    id: int | None = None

    @property
    def key(self) -> GrantKey:
        """Its data source, via and subject."""
        return (self.data_source_id, self.via, self.subject_id)

    def in_force_at(self, seq: int) -> bool:
        """Whether it held after event ``seq``."""
        return self.granted.seq <= seq and (self.revoked is None or self.revoked.seq > seq)


class Status(StrEnum):
    """A data source's state at a seq, as the trail tells it."""

    ACTIVE = "Active"
    DELETED = "Deleted"
    NOT_YET = "NotYetCreated"


@dataclass(slots=True)
class DataSourceRecord:
    """A data source the trail names: the first event naming it, its creation and deletion
    when the trail holds them."""

    data_source_id: str
    name: str
    data_source_type: str
    first_seq: int
    created_seq: int | None = None
    created_ms: int | None = None
    deleted_seq: int | None = None
    deleted_ms: int | None = None

    def status_at(self, seq: int) -> Status:
        """Active, deleted or not created yet after event ``seq``."""
        if self.deleted_seq is not None and self.deleted_seq <= seq:
            return Status.DELETED
        if seq < (self.created_seq if self.created_seq is not None else self.first_seq):
            return Status.NOT_YET
        return Status.ACTIVE


@dataclass(slots=True)
class UserRecord:
    """A user the trail saw created, with their role as last recorded."""

    user_id: str
    username: str
    role: str
    created_seq: int
    created_ms: int


# -- what one event does ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Open:
    """Open a grant of the event's data source (nothing when one of that key is open)."""

    via: Via
    subject_id: str
    subject_name: str = ""


@dataclass(frozen=True, slots=True)
class Close:
    """Close the open grants of the event's data source that match (None: any)."""

    via: Via | None = None
    subject_id: str | None = None


GrantChange = Open | Close


def grant_changes(event: TrailEvent) -> list[GrantChange]:
    """What ``event`` does to the grants of its data source, in order (none for the kinds
    outside ``GRANTING_KINDS``)."""
    kind, metadata = event.event_kind, event.metadata
    if kind == EventKind.CREATE_DATA_SOURCE:
        # ownerId came with the hardened trail; before it, the creator owned what they made.
        owner = metadata.get("ownerId") or event.performed_by
        owner_name = event.performed_by_username if owner == event.performed_by else ""
        changes: list[GrantChange] = [Close(), Open(Via.OWNER, owner, owner_name)]
        changes += [Open(Via.USER, user_id) for user_id in split_ids(metadata.get("userIds"))]
        if metadata.get("isEveryone") == "true":
            changes.append(Open(Via.EVERYONE, EVERYONE_SUBJECT))
        changes += [Open(Via.PROJECT, pid) for pid in split_ids(metadata.get("projectIds"))]
        return changes
    if kind == EventKind.CHANGE_OF_PERMISSIONS:
        changes = [Close(Via.USER, uid) for uid in split_ids(metadata.get("removedUserIds"))]
        changes += [Open(Via.USER, uid) for uid in split_ids(metadata.get("addedUserIds"))]
        everyone = metadata.get("isEveryone")
        if everyone == "true":
            changes.append(Open(Via.EVERYONE, EVERYONE_SUBJECT))
        elif everyone == "false":
            changes.append(Close(Via.EVERYONE))
        return changes
    if kind == EventKind.CHANGE_OF_OWNERSHIP:
        changes = [Close(Via.OWNER)]
        new_owner = metadata.get("newOwnerId")
        if new_owner:
            changes.append(Open(Via.OWNER, new_owner, metadata.get("newOwnerUsername", "")))
        return changes
    if kind == EventKind.ASSOCIATED_TO_PROJECT:
        project_id = metadata.get("projectId") or event.project_id
        return (
            [Open(Via.PROJECT, project_id, metadata.get("projectName", ""))] if project_id else []
        )
    if kind == EventKind.DISSOCIATED_FROM_PROJECT:
        project_id = metadata.get("projectId") or event.project_id
        return [Close(Via.PROJECT, project_id)] if project_id else []
    if kind == EventKind.DELETE_DATA_SOURCE:
        return [Close()]
    return []


# -- a run of events --------------------------------------------------------------------------


class Ledger:
    """Applies events in sequence order to the open grants of the data sources it was given
    (every data source whose granting events it will see), and to the data sources and users
    they name; then says what to store: ``opened`` (new grants, some already revoked again),
    ``closed`` (stored grants now revoked), the data sources and users new or changed."""

    def __init__(
        self,
        *,
        loaded: Iterable[str],
        open_grants: Iterable[Grant],
        data_sources: Mapping[str, DataSourceRecord],
        users: Mapping[str, UserRecord],
    ) -> None:
        self._loaded = set(loaded)
        self._open: dict[str, dict[tuple[Via, str], Grant]] = {}
        for grant in open_grants:
            self._open.setdefault(grant.data_source_id, {})[(grant.via, grant.subject_id)] = grant
        self._data_sources = dict(data_sources)
        self._users = dict(users)
        self.opened: list[Grant] = []
        self.closed: list[Grant] = []
        self.new_data_sources: dict[str, DataSourceRecord] = {}
        self.changed_data_sources: dict[str, DataSourceRecord] = {}
        self.new_users: dict[str, UserRecord] = {}
        self.changed_users: dict[str, UserRecord] = {}

    def apply_all(self, events: Iterable[TrailEvent]) -> Ledger:
        """``apply`` each event, in order; the ledger."""
        for event in events:
            self.apply(event)
        return self

    def apply(self, event: TrailEvent) -> None:
        """Take one event (the next in sequence order) into account."""
        if event.data_source_id:
            self._note_data_source(event)
        if event.event_kind in GRANTING_KINDS and event.data_source_id:
            if event.data_source_id not in self._loaded:
                raise ValueError(
                    f"event {event.seq}: the open grants of data source "
                    f"{event.data_source_id!r} were not loaded"
                )
            ref = EventRef.of(event)
            for change in grant_changes(event):
                if isinstance(change, Open):
                    self._open_grant(event, change, ref)
                else:
                    self._close(event.data_source_id, change, ref)
        elif event.event_kind in USER_KINDS:
            self._note_user(event)

    def _open_grant(self, event: TrailEvent, change: Open, ref: EventRef) -> None:
        open_now = self._open.setdefault(event.data_source_id, {})
        if (change.via, change.subject_id) in open_now:
            return  # already in force: the grant keeps the event that first gave it
        grant = Grant(
            data_source_id=event.data_source_id,
            data_source_name=event.data_source_name,
            via=change.via,
            subject_id=change.subject_id,
            subject_name=change.subject_name,
            granted=ref,
        )
        open_now[(change.via, change.subject_id)] = grant
        self.opened.append(grant)

    def _close(self, data_source_id: str, change: Close, ref: EventRef) -> None:
        open_now = self._open.get(data_source_id, {})
        for (via, subject_id), grant in list(open_now.items()):
            if change.via is not None and via is not change.via:
                continue
            if change.subject_id is not None and subject_id != change.subject_id:
                continue
            grant.revoked = ref
            del open_now[(via, subject_id)]
            if grant.id is not None:
                self.closed.append(grant)

    def _note_data_source(self, event: TrailEvent) -> None:
        ds_id = event.data_source_id
        record = self._data_sources.get(ds_id)
        if record is None:
            record = DataSourceRecord(
                data_source_id=ds_id,
                name=event.data_source_name,
                data_source_type=event.data_source_type,
                first_seq=event.seq,
            )
            self._data_sources[ds_id] = record
            self.new_data_sources[ds_id] = record
        kind = event.event_kind
        if kind == EventKind.CREATE_DATA_SOURCE and record.created_seq is None:
            record.created_seq, record.created_ms = event.seq, event.ts_ms
            self._changed(record)
        elif kind == EventKind.DELETE_DATA_SOURCE and record.deleted_seq is None:
            record.deleted_seq, record.deleted_ms = event.seq, event.ts_ms
            self._changed(record)

    def _changed(self, record: DataSourceRecord) -> None:
        if record.data_source_id not in self.new_data_sources:
            self.changed_data_sources[record.data_source_id] = record

    def _note_user(self, event: TrailEvent) -> None:
        metadata = event.metadata
        user_id = metadata.get("userId", "")
        if not user_id:
            return
        known = self._users.get(user_id)
        if event.event_kind == EventKind.USER_CREATED:
            if known is None:
                record = UserRecord(
                    user_id=user_id,
                    username=metadata.get("username", ""),
                    role=metadata.get("role", ""),
                    created_seq=event.seq,
                    created_ms=event.ts_ms,
                )
                self._users[user_id] = record
                self.new_users[user_id] = record
        elif known is not None and metadata.get("role"):
            # A user created before the trail recorded it stays unknown: when is not known.
            known.role = metadata["role"]
            if user_id not in self.new_users:
                self.changed_users[user_id] = known


def data_sources_named(events: Iterable[TrailEvent]) -> list[str]:
    """The data sources these events name, each once, in order."""
    return list(dict.fromkeys(e.data_source_id for e in events if e.data_source_id))


def data_sources_granting(events: Iterable[TrailEvent]) -> list[str]:
    """The data sources whose grants these events change, each once, in order."""
    return list(
        dict.fromkeys(
            e.data_source_id for e in events if e.event_kind in GRANTING_KINDS and e.data_source_id
        )
    )


def users_named(events: Iterable[TrailEvent]) -> list[str]:
    """The users whose creation or role these events record, each once, in order."""
    return list(
        dict.fromkeys(
            e.metadata.get("userId", "")
            for e in events
            if e.event_kind in USER_KINDS and e.metadata.get("userId")
        )
    )


# -- answers ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reach:
    """A user who could use a data source, and through which grants."""

    user_id: str
    vias: tuple[Via, ...]


def reach_of(grants: Sequence[Grant], everyone: Sequence[UserRecord]) -> list[Reach]:
    """Who could use a data source given its grants in force (owner, users, everyone) and the
    users that existed then (``everyone``: used only when an everyone-share is in force)."""
    vias: dict[str, list[Via]] = {}
    shared = False
    for grant in grants:
        if grant.via is Via.EVERYONE:
            shared = True
        elif grant.via in (Via.OWNER, Via.USER):
            vias.setdefault(grant.subject_id, []).append(grant.via)
    if shared:
        for user in everyone:
            vias.setdefault(user.user_id, []).append(Via.EVERYONE)
    order = {via: index for index, via in enumerate(USE_VIAS)}
    return [
        Reach(user_id=user_id, vias=tuple(sorted(set(found), key=order.__getitem__)))
        for user_id, found in sorted(vias.items())
    ]


def by_via(grants: Iterable[Grant]) -> list[Grant]:
    """Grants in the order answers list them: owner, users, everyone, projects; then subject."""
    order = {via: index for index, via in enumerate((*USE_VIAS, Via.PROJECT))}
    return sorted(grants, key=lambda g: (order[g.via], g.subject_id, g.granted.seq))


@dataclass(frozen=True, slots=True)
class UserDataSource:
    """A data source a user could use at a seq: the grants that let them, and the projects it
    was attached to then."""

    data_source_id: str
    data_source_name: str
    grants: tuple[Grant, ...]
    projects: tuple[Grant, ...] = field(default=())


def group_by_data_source(
    grants: Iterable[Grant], projects: Iterable[Grant]
) -> list[UserDataSource]:
    """The use grants of one user, one entry a data source (by name, then id), each with the
    project attachments of that data source."""
    usable: dict[str, list[Grant]] = {}
    for grant in grants:
        usable.setdefault(grant.data_source_id, []).append(grant)
    attached: dict[str, list[Grant]] = {}
    for grant in projects:
        attached.setdefault(grant.data_source_id, []).append(grant)
    entries = [
        UserDataSource(
            data_source_id=ds_id,
            data_source_name=found[0].data_source_name,
            grants=tuple(by_via(found)),
            projects=tuple(by_via(attached.get(ds_id, []))),
        )
        for ds_id, found in usable.items()
    ]
    return sorted(entries, key=lambda e: (e.data_source_name, e.data_source_id))
