"""Forensic answers: who could reach a data source at a moment and through which grant, what a
user could reach, and the timeline of a user, a run or a data source.

Every answer first brings the derived state up to the head (``Follower.catch_up``) and is then
read in one snapshot, in which the state holds every event the answer depends on. "At T" is
the state after every event up to the last one recorded at or before T (in time, then seq
order: ``ix_audit_ts``); ``atSeq`` names that event directly; neither is now. The callers
(routes, commands) record each answer as a read of the trail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, TypeVar

from dstrail.domain.forensics import (
    USE_VIAS,
    DataSourceRecord,
    Grant,
    Reach,
    Status,
    SubjectKind,
    TimelinePage,
    TimelineSubject,
    UserDataSource,
    UserRecord,
    Via,
)
from dstrail.domain.forensics.entitlements import by_via, group_by_data_source, reach_of
from dstrail.domain.forensics.queries import EntitlementsQuery, TimelineQuery
from dstrail.domain.forensics.timeline import entries_of, first_seqs
from dstrail.domain.users import OPERATOR
from dstrail.errors import InvalidInput, NotFound, Unavailable
from dstrail.services.forensics import Follower
from dstrail.store import Repositories
from dstrail.store.forensics import ForensicsState

T = TypeVar("T")
_ATTEMPTS: Final = 5
REQUEST_CATCH_UP: Final = 20_000
"""The most events an HTTP answer catches up on itself; further behind (just after an upgrade
or a rebuild), it is a 503 until ``dstrail serve``'s follower has caught up."""
_USER_VIAS: Final = (Via.OWNER, Via.USER)


@dataclass(frozen=True, slots=True)
class Moment:
    """Where an answer stands: after event ``at_seq`` (recorded at ``at_event_ms``); the time
    asked for, if one was; the first event the derived state holds."""

    at_seq: int
    at_event_ms: int | None
    asked_ms: int | None
    first_seq: int


@dataclass(frozen=True, slots=True)
class DataSourceEntitlements:
    """Who could use a data source after ``moment``, through which grant, and the projects it
    was attached to."""

    moment: Moment
    data_source: DataSourceRecord
    status: Status
    grants: list[Grant]
    """Owner, listed users and the everyone-share in force."""
    projects: list[Grant]
    reach: list[Reach]
    """Every user who could use it, with the grants that let them."""
    names: dict[str, str]
    """User and project ids to their names, where known."""
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class UserEntitlements:
    """What a user could use after ``moment``: each data source with its grants and projects."""

    moment: Moment
    user_id: str
    username: str
    role: str
    created: UserRecord | None
    """When the trail saw them created (None: it did not)."""
    existed: bool
    data_sources: list[UserDataSource]
    names: dict[str, str]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Behind:
    """The state does not hold event ``seq`` yet, which the answer depends on."""

    seq: int


def _answered(
    follower: Follower,
    read: Callable[[Repositories, ForensicsState], T | Behind],
    *,
    at_most: int | None,
) -> T:
    """Catch up, then ``read`` in one snapshot; when ``read`` finds the state ``Behind`` (new
    events, or a rebuild started meanwhile), catch up to that event and read again."""
    _catch_up(follower, through=None, at_most=at_most)
    for _ in range(_ATTEMPTS):
        with follower.store.read() as tx:
            answer = read(tx, tx.forensics.state())
        if not isinstance(answer, Behind):
            return answer
        _catch_up(follower, through=answer.seq, at_most=at_most)
    raise Unavailable("the forensics state is being rebuilt; try again when it has caught up")


def _catch_up(follower: Follower, *, through: int | None, at_most: int | None) -> None:
    """Bring the state to event ``through`` (default: the head); ``Unavailable`` when that is
    more than ``at_most`` events away (the background follower is on it)."""
    if at_most is not None:
        behind = follower.behind(through=through)
        if behind > at_most:
            raise Unavailable(
                f"the forensics state is {behind:,} events behind the trail and is being brought "
                "up to date; try again shortly"
            )
    follower.catch_up(through=through)


def _moment(tx: Repositories, state: ForensicsState, query: EntitlementsQuery) -> Moment | Behind:
    """The moment asked for, or the seq the state must hold first."""
    if query.at_seq is not None:
        head = tx.forensics.head()
        if query.at_seq > head:
            raise InvalidInput(f"atSeq: {query.at_seq} is not accepted; accepted: 0 to {head}")
        at_seq = query.at_seq
    elif query.at_ms is not None:
        at_seq = tx.forensics.seq_at(query.at_ms)
    else:
        at_seq = state.cursor_seq
    if at_seq > state.cursor_seq:
        return Behind(at_seq)
    return Moment(
        at_seq=at_seq,
        at_event_ms=tx.forensics.timestamp_of(at_seq) if at_seq else None,
        asked_ms=query.at_ms,
        first_seq=state.first_seq,
    )


def _notes(moment: Moment) -> list[str]:
    if moment.first_seq > 1:
        return [
            f"events 1 to {moment.first_seq - 1} were purged before this state was derived: "
            "the grants they gave are not known"
        ]
    return []


def names_of(tx: Repositories, user_ids: Iterable[str], grants: Iterable[Grant]) -> dict[str, str]:
    """Usernames of these users and names of the projects these grants name: as the trail
    recorded them, else as dstrail knows them now."""
    wanted = set(user_ids)
    names: dict[str, str] = {OPERATOR.id: OPERATOR.username} if OPERATOR.id in wanted else {}
    found = tx.forensics.users_by_ids(sorted(wanted - names.keys()))
    names.update({user_id: record.username for user_id, record in found.items()})
    missing = sorted(wanted - names.keys())
    if missing:
        names.update({user.id: user.username for user in tx.users.by_ids(missing).values()})
    projects: dict[str, str] = {}
    for grant in grants:
        if grant.via is Via.PROJECT:
            projects.setdefault(grant.subject_id, grant.subject_name)
    unnamed = sorted(pid for pid, name in projects.items() if not name)
    if unnamed:
        projects.update(tx.projects.names(unnamed))
    names.update({pid: name for pid, name in projects.items() if name})
    return names


# -- entitlements -----------------------------------------------------------------------------


def entitlements(
    follower: Follower, query: EntitlementsQuery, *, at_most: int | None = None
) -> DataSourceEntitlements | UserEntitlements:
    """The answer to ``query``: a data source's (by id, or by the name it had then) or a
    user's (by id or username). ``NotFound`` for a subject the trail does not know.
    ``at_most``: the most events to catch up on first (None: all); further behind,
    ``Unavailable``."""
    if query.about_user:
        return _answered(follower, lambda tx, state: _of_user(tx, state, query), at_most=at_most)
    return _answered(follower, lambda tx, state: _of_data_source(tx, state, query), at_most=at_most)


def _of_data_source(
    tx: Repositories, state: ForensicsState, query: EntitlementsQuery
) -> DataSourceEntitlements | Behind:
    moment = _moment(tx, state, query)
    if isinstance(moment, Behind):
        return moment
    if query.subject == "data_source_id":
        record = tx.forensics.data_source(query.value)
        if record is None:
            raise NotFound(f"dataSourceId: the trail names no data source {query.value!r}")
    else:
        record = tx.forensics.data_source_named(query.value, at_seq=moment.at_seq)
        if record is None:
            raise NotFound(
                f"dataSourceName: the trail names no data source {query.value!r} by event "
                f"{moment.at_seq}"
            )
    found = tx.forensics.grants_of_data_source(record.data_source_id, at_seq=moment.at_seq)
    grants = by_via(g for g in found if g.via in USE_VIAS)
    projects = by_via(g for g in found if g.via is Via.PROJECT)
    shared = any(g.via is Via.EVERYONE for g in grants)
    everyone = tx.forensics.users_created_by(moment.at_seq) if shared else []
    reach = reach_of(grants, everyone)
    people = {r.user_id for r in reach} | {g.granted.by for g in found}
    notes = _notes(moment)
    if shared:
        notes.append(
            "shared with everyone: every user the trail saw created by then could use it "
            "(users created before the trail recorded UserCreated are not listed)"
        )
    return DataSourceEntitlements(
        moment=moment, data_source=record, status=record.status_at(moment.at_seq),
        grants=grants, projects=projects, reach=reach, names=names_of(tx, people, found),
        notes=notes,
    )  # fmt: skip


def _of_user(
    tx: Repositories, state: ForensicsState, query: EntitlementsQuery
) -> UserEntitlements | Behind:
    moment = _moment(tx, state, query)
    if isinstance(moment, Behind):
        return moment
    user_id, username, role, record = _user_subject(tx, query.subject, query.value)
    existed = record is not None and record.created_seq <= moment.at_seq
    grants = tx.forensics.grants_of_user(user_id, at_seq=moment.at_seq)
    usable = {g.data_source_id for g in grants}
    projects = tx.forensics.project_grants_of(sorted(usable), at_seq=moment.at_seq)
    notes = _notes(moment)
    if record is None:
        notes.append(
            "the trail does not record when this user was created: data sources shared with "
            "everyone are not counted"
        )
    elif not existed:
        notes.append(f"the user did not exist yet: created by event {record.created_seq}")
    people = {user_id} | {g.granted.by for g in grants} | {g.granted.by for g in projects}
    return UserEntitlements(
        moment=moment, user_id=user_id, username=username, role=role, created=record,
        existed=existed, data_sources=group_by_data_source(grants, projects),
        names=names_of(tx, people, projects), notes=notes,
    )  # fmt: skip


def _user_subject(
    tx: Repositories, subject: str, value: str
) -> tuple[str, str, str, UserRecord | None]:
    """(id, username, role, the trail's record) of a user by id or username; ``NotFound``."""
    if subject == "user_id":
        record = tx.forensics.user(value)
        live = tx.users.by_id(value) if record is None else None
        label = "userId"
    else:
        record = tx.forensics.user_named(value)
        live = tx.users.by_username(value) if record is None else None
        label = "username"
    if record is not None:
        return record.user_id, record.username, record.role, record
    if live is not None:
        return live.id, live.username, live.role.value, None
    raise NotFound(f"{label}: no user {value!r}")


# -- timelines --------------------------------------------------------------------------------


def timeline(
    follower: Follower, query: TimelineQuery, *, at_most: int | None = None
) -> TimelinePage:
    """A page of the timeline ``query`` asks for, in seq order. The window ``from``..``to`` is
    the events after the state at the instant before ``from`` up to the state at ``to`` (as
    "at T"); ``after`` continues from the ``next`` of the previous page. ``at_most`` as for
    ``entitlements``."""
    return _answered(follower, lambda tx, state: _timeline(tx, state, query), at_most=at_most)


def _timeline(
    tx: Repositories, state: ForensicsState, query: TimelineQuery
) -> TimelinePage | Behind:
    through = tx.forensics.seq_at(query.to_ms) if query.to_ms is not None else state.cursor_seq
    if through > state.cursor_seq:
        return Behind(through)
    start = tx.forensics.seq_at(query.from_ms - 1) if query.from_ms is not None else 0
    after = max(start, query.after)
    subject = _timeline_subject(tx, query, through)
    forensics, wanted = tx.forensics, query.limit + 1
    events = forensics.events_of(
        subject.kind, subject.id, after=after, through=through, limit=wanted
    )
    if subject.kind is SubjectKind.USER:
        moved = forensics.grant_change_seqs(
            subject.id, vias=_USER_VIAS, after=after, through=through, limit=wanted
        )
        created = forensics.user(subject.id)
        born = [created.created_seq] if created and after < created.created_seq <= through else []
        seqs = first_seqs([(e.seq for e in events), moved, born], count=wanted)
        have = {e.seq for e in events}
        events = [e for e in events if e.seq in seqs]
        events += forensics.events_at([seq for seq in seqs if seq not in have])
        page = sorted(events, key=lambda e: e.seq)[: query.limit]
        grants = forensics.grants_moved_at(
            [e.seq for e in page], subject_id=subject.id, vias=_USER_VIAS
        )
    else:
        page = events[: query.limit]
        grants = (
            forensics.grants_moved_at([e.seq for e in page], data_source_id=subject.id)
            if subject.kind is SubjectKind.DATA_SOURCE
            else []
        )
    more = len(events) > query.limit
    return TimelinePage(
        subject=subject, after=after, through=through, entries=entries_of(page, grants),
        next_after=page[-1].seq if more and page else None,
    )  # fmt: skip


def _timeline_subject(tx: Repositories, query: TimelineQuery, through: int) -> TimelineSubject:
    if query.subject in ("user_id", "username"):
        user_id, username, _role, _record = _user_subject(tx, query.subject, query.value)
        return TimelineSubject(kind=SubjectKind.USER, id=user_id, name=username)
    if query.subject == "run_id":
        if not tx.forensics.run_seen(query.value) and tx.runs.by_id(query.value) is None:
            raise NotFound(f"runId: no run {query.value!r}")
        return TimelineSubject(kind=SubjectKind.RUN, id=query.value)
    if query.subject == "data_source_id":
        record = tx.forensics.data_source(query.value)
        if record is None:
            raise NotFound(f"dataSourceId: the trail names no data source {query.value!r}")
    else:
        record = tx.forensics.data_source_named(query.value, at_seq=through)
        if record is None:
            raise NotFound(f"dataSourceName: the trail names no data source {query.value!r}")
    return TimelineSubject(kind=SubjectKind.DATA_SOURCE, id=record.data_source_id, name=record.name)
