"""Forensics over HTTP (``/api/dstrail/v1/forensics``), SysAdmins and Auditors: who could reach
a data source at a moment and through which grant, what a user could reach, and the timeline of
a user, a run or a data source. Each answer hands out trail contents: it is recorded as a read
of the trail (``AuditTrailRead``, surface ``forensics``); a refused one (403) too."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from dstrail.api.deps import DstrailDep, trail_reader
from dstrail.api.errors import PUBLIC
from dstrail.audit.query import reject_repeated, reject_unknown
from dstrail.domain.forensics import Grant, TimelineEntry, TimelinePage
from dstrail.domain.forensics.queries import (
    ACCEPTED_INSTANT,
    API_LABELS,
    MAX_LIMIT,
    entitlements_query,
    timeline_query,
)
from dstrail.domain.timestamps import format_ms
from dstrail.services.forensic_answers import (
    REQUEST_CATCH_UP,
    DataSourceEntitlements,
    Moment,
    UserEntitlements,
    entitlements,
    timeline,
)
from dstrail.services.forensics import follower_for
from dstrail.services.trail_reads import Surface, TrailReader

router = APIRouter(
    prefix="/api/dstrail/v1/forensics",
    tags=["forensics"],
    responses=PUBLIC.responses(400, 401, 403, 404, 503),
)
"""503: the read could not be recorded (``AuditTrailRead``), so nothing is returned."""

ForensicsReader = Annotated[TrailReader, Depends(trail_reader(Surface.FORENSICS))]
_AT = f"the moment: {ACCEPTED_INSTANT}; the state after the last event recorded at or before it"


# -- shapes ------------------------------------------------------------------------------------


class EventRefRead(BaseModel):
    """The event that gave (or took away) a grant."""

    seq: int
    timestamp: str
    performedBy: str  # noqa: N815
    performedByUsername: str  # noqa: N815
    eventKind: str  # noqa: N815


class GrantRead(BaseModel):
    """A grant in force: through what (owner, user, everyone), to whom, given by which event."""

    via: str
    subjectId: str = Field(description="the user's id; '' for everyone")  # noqa: N815
    subjectName: str  # noqa: N815
    granted: EventRefRead


class AttachmentRead(BaseModel):
    """A project the data source was attached to (attachment grants no use)."""

    projectId: str  # noqa: N815
    projectName: str  # noqa: N815
    granted: EventRefRead


class ReachRead(BaseModel):
    """A user who could use the data source, and through which grants."""

    userId: str  # noqa: N815
    username: str
    via: list[str]


class DataSourceRef(BaseModel):
    """The data source as the trail names it, and its state at the moment asked about."""

    id: str
    name: str
    dataSourceType: str  # noqa: N815
    status: str = Field(description="Active, Deleted or NotYetCreated at that moment")
    createdSeq: int | None  # noqa: N815
    deletedSeq: int | None  # noqa: N815


class _MomentRead(BaseModel):
    at: str | None = Field(description="the time asked for (null: a seq, or now)")
    atSeq: int = Field(description="the answer holds after this event")  # noqa: N815
    atTimestamp: str | None = Field(description="when that event was recorded")  # noqa: N815
    firstSeq: int = Field(  # noqa: N815
        description="the first event the derived state holds (older ones were purged)"
    )
    notes: list[str]


class DataSourceEntitlementsRead(_MomentRead):
    """``GET .../entitlements?dataSourceId=`` or ``dataSourceName=``."""

    subject: Literal["dataSource"]
    dataSource: DataSourceRef  # noqa: N815
    grants: list[GrantRead]
    users: list[ReachRead] = Field(description="every user who could use it then")
    projects: list[AttachmentRead]


class UserRef(BaseModel):
    """The user, and whether the trail saw them created by then."""

    id: str
    username: str
    role: str
    createdSeq: int | None  # noqa: N815
    createdAt: str | None  # noqa: N815
    existed: bool


class UserDataSourceRead(BaseModel):
    """A data source the user could use, with the grants that let them and its projects."""

    dataSourceId: str  # noqa: N815
    dataSourceName: str  # noqa: N815
    grants: list[GrantRead]
    projects: list[AttachmentRead]


class UserEntitlementsRead(_MomentRead):
    """``GET .../entitlements?userId=`` or ``username=``."""

    subject: Literal["user"]
    user: UserRef
    dataSources: list[UserDataSourceRead]  # noqa: N815


class GrantNoteRead(BaseModel):
    """A grant an entry's event opened or closed for the subject."""

    change: str = Field(description="granted or revoked")
    via: str
    dataSourceId: str  # noqa: N815
    dataSourceName: str  # noqa: N815
    subjectId: str  # noqa: N815


class TimelineEntryRead(BaseModel):
    """One step: the event, what kind of step it is, what it touched and the grants it moved."""

    seq: int
    timestamp: str
    eventKind: str  # noqa: N815
    category: str = Field(description="access, refused, grantChange, change, platform or finding")
    dataSourceId: str  # noqa: N815
    dataSourceName: str  # noqa: N815
    performedBy: str  # noqa: N815
    performedByUsername: str  # noqa: N815
    runId: str | None  # noqa: N815
    projectId: str | None  # noqa: N815
    touched: dict[str, str] = Field(
        description="of an access: operation, objectKey, isReadWrite, prefix, queryDigest"
    )
    reason: str | None = Field(description="why a refused attempt was refused")
    grants: list[GrantNoteRead]
    metadata: dict[str, str]


class TimelineSubjectRead(BaseModel):
    """Whose timeline."""

    kind: str = Field(description="user, run or dataSource")
    id: str
    name: str


class TimelineRead(BaseModel):
    """A page of a timeline, in seq order."""

    subject: TimelineSubjectRead
    afterSeq: int = Field(description="the page holds events after this one")  # noqa: N815
    throughSeq: int = Field(description="... up to this one (the window's end)")  # noqa: N815
    entries: list[TimelineEntryRead]
    next: int | None = Field(description="`after` of the next page; null: no more")


# -- rendering (the CLI's --json prints the same) -------------------------------------------------


def _ref(grant: Grant, names: dict[str, str]) -> dict[str, Any]:
    granted = grant.granted
    return {
        "seq": granted.seq,
        "timestamp": format_ms(granted.ts_ms),
        "performedBy": granted.by,
        "performedByUsername": names.get(granted.by, ""),
        "eventKind": granted.kind,
    }


def _grant(grant: Grant, names: dict[str, str]) -> dict[str, Any]:
    return {
        "via": grant.via.value,
        "subjectId": grant.subject_id,
        "subjectName": names.get(grant.subject_id, grant.subject_name),
        "granted": _ref(grant, names),
    }


def _attachment(grant: Grant, names: dict[str, str]) -> dict[str, Any]:
    return {
        "projectId": grant.subject_id,
        "projectName": names.get(grant.subject_id, grant.subject_name),
        "granted": _ref(grant, names),
    }


def _moment(moment: Moment, notes: list[str]) -> dict[str, Any]:
    return {
        "at": format_ms(moment.asked_ms) if moment.asked_ms is not None else None,
        "atSeq": moment.at_seq,
        "atTimestamp": format_ms(moment.at_event_ms) if moment.at_event_ms is not None else None,
        "firstSeq": moment.first_seq,
        "notes": notes,
    }


def entitlements_document(answer: DataSourceEntitlements | UserEntitlements) -> dict[str, Any]:
    """The JSON document of an answer."""
    names = answer.names
    if isinstance(answer, UserEntitlements):
        created = answer.created
        return {
            "subject": "user",
            **_moment(answer.moment, answer.notes),
            "user": {
                "id": answer.user_id,
                "username": answer.username,
                "role": answer.role,
                "createdSeq": created.created_seq if created else None,
                "createdAt": format_ms(created.created_ms) if created else None,
                "existed": answer.existed,
            },
            "dataSources": [
                {
                    "dataSourceId": entry.data_source_id,
                    "dataSourceName": entry.data_source_name,
                    "grants": [_grant(g, names) for g in entry.grants],
                    "projects": [_attachment(g, names) for g in entry.projects],
                }
                for entry in answer.data_sources
            ],
        }
    ds = answer.data_source
    return {
        "subject": "dataSource",
        **_moment(answer.moment, answer.notes),
        "dataSource": {
            "id": ds.data_source_id,
            "name": ds.name,
            "dataSourceType": ds.data_source_type,
            "status": answer.status.value,
            "createdSeq": ds.created_seq,
            "deletedSeq": ds.deleted_seq,
        },
        "grants": [_grant(g, names) for g in answer.grants],
        "users": [
            {
                "userId": reach.user_id,
                "username": names.get(reach.user_id, ""),
                "via": [via.value for via in reach.vias],
            }
            for reach in answer.reach
        ],
        "projects": [_attachment(g, names) for g in answer.projects],
    }


def entries_counted(answer: DataSourceEntitlements | UserEntitlements) -> int:
    """How many granting events an answer cites (its ``rows`` as a read of the trail)."""
    if isinstance(answer, UserEntitlements):
        return sum(len(e.grants) + len(e.projects) for e in answer.data_sources)
    return len(answer.grants) + len(answer.projects)


def _entry(entry: TimelineEntry) -> dict[str, Any]:
    event = entry.event
    return {
        "seq": event.seq,
        "timestamp": format_ms(event.ts_ms),
        "eventKind": event.event_kind,
        "category": entry.category.value,
        "dataSourceId": event.data_source_id,
        "dataSourceName": event.data_source_name,
        "performedBy": event.performed_by,
        "performedByUsername": event.performed_by_username,
        "runId": event.run_id,
        "projectId": event.project_id,
        "touched": entry.touched,
        "reason": entry.reason or None,
        "grants": [
            {
                "change": note.change,
                "via": note.via.value,
                "dataSourceId": note.data_source_id,
                "dataSourceName": note.data_source_name,
                "subjectId": note.subject_id,
            }
            for note in entry.grants
        ],
        "metadata": event.metadata,
    }


def timeline_document(page: TimelinePage) -> dict[str, Any]:
    """The JSON document of a timeline page."""
    return {
        "subject": {
            "kind": page.subject.kind.value,
            "id": page.subject.id,
            "name": page.subject.name,
        },
        "afterSeq": page.after,
        "throughSeq": page.through,
        "entries": [_entry(entry) for entry in page.entries],
        "next": page.next_after,
    }


# -- routes ------------------------------------------------------------------------------------


def _text(alias: str, description: str) -> Any:
    return Query(alias=alias, description=description)


_ENTITLEMENT_PARAMETERS = (
    "data_source_id",
    "data_source_name",
    "user_id",
    "username",
    "at",
    "at_seq",
)
_TIMELINE_PARAMETERS = (
    "user_id", "username", "run_id", "data_source_id", "data_source_name", "from_time",
    "to_time", "limit", "after",
)  # fmt: skip


def _values(request: Request, fields: tuple[str, ...]) -> dict[str, str | None]:
    """The query's values by field, once only known parameters, each at most once, were given."""
    given = [key for key, _ in request.query_params.multi_items()]
    accepted = [API_LABELS[name] for name in fields]
    reject_unknown(given, accepted)
    reject_repeated(given, accepted)
    return {name: request.query_params.get(API_LABELS[name]) for name in fields}


@router.get(
    "/entitlements",
    response_model=DataSourceEntitlementsRead | UserEntitlementsRead,
    summary="Who could use a data source at a moment, or what a user could use",
)
def get_entitlements(
    request: Request,
    dstrail: DstrailDep,
    reader: ForensicsReader,
    dataSourceId: Annotated[str | None, _text("dataSourceId", "a data source, by id")] = None,  # noqa: N803
    dataSourceName: Annotated[  # noqa: N803
        str | None, _text("dataSourceName", "a data source, by the name it had at that moment")
    ] = None,
    userId: Annotated[str | None, _text("userId", "a user, by id")] = None,  # noqa: N803
    username: Annotated[str | None, _text("username", "a user, by username")] = None,
    at: Annotated[str | None, _text("at", _AT)] = None,
    atSeq: Annotated[  # noqa: N803
        str | None, _text("atSeq", "the moment as the seq of an event; neither: now")
    ] = None,
) -> dict[str, Any]:
    """Exactly one of ``dataSourceId``, ``dataSourceName``, ``userId``, ``username``; at most
    one of ``at``, ``atSeq``. Each grant names the event that gave it (seq, time, by whom,
    kind). Recorded as a read of the trail."""
    query = entitlements_query(_values(request, _ENTITLEMENT_PARAMETERS))
    follower = follower_for(dstrail.store, settings=dstrail.settings, clock=dstrail.clock)
    answer = entitlements(follower, query, at_most=REQUEST_CATCH_UP)
    reader.record({**query.asked(), "atSeq": answer.moment.at_seq}, rows=entries_counted(answer))
    return entitlements_document(answer)


@router.get(
    "/timeline",
    response_model=TimelineRead,
    summary="What a user, a run or a data source did, and what was done to them, in seq order",
)
def get_timeline(
    request: Request,
    dstrail: DstrailDep,
    reader: ForensicsReader,
    userId: Annotated[str | None, _text("userId", "a user, by id")] = None,  # noqa: N803
    username: Annotated[str | None, _text("username", "a user, by username")] = None,
    runId: Annotated[str | None, _text("runId", "a run, by id")] = None,  # noqa: N803
    dataSourceId: Annotated[str | None, _text("dataSourceId", "a data source, by id")] = None,  # noqa: N803
    dataSourceName: Annotated[  # noqa: N803
        str | None, _text("dataSourceName", "a data source, by the name it had at `to`")
    ] = None,
    from_: Annotated[str | None, _text("from", f"window start: {ACCEPTED_INSTANT}")] = None,
    to: Annotated[str | None, _text("to", f"window end: {ACCEPTED_INSTANT}; default: now")] = None,
    limit: Annotated[str | None, _text("limit", f"entries a page, 1-{MAX_LIMIT} (100)")] = None,
    after: Annotated[str | None, _text("after", "the `next` of the previous page")] = None,
) -> dict[str, Any]:
    """Exactly one of ``userId``, ``username``, ``runId``, ``dataSourceId``,
    ``dataSourceName``. A user's timeline interleaves what they did with the events that
    granted or revoked their access. Recorded as a read of the trail."""
    query = timeline_query(_values(request, _TIMELINE_PARAMETERS))
    follower = follower_for(dstrail.store, settings=dstrail.settings, clock=dstrail.clock)
    page = timeline(follower, query, at_most=REQUEST_CATCH_UP)
    reader.record(
        {**query.asked(), "afterSeq": page.after, "throughSeq": page.through},
        rows=len(page.entries),
    )
    return timeline_document(page)
