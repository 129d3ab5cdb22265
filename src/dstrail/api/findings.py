"""Findings of the detection rules over HTTP (``/api/dstrail/v1/forensics/findings``),
SysAdmins and Auditors: list them (filtered, newest first, keyset paged), read one with its
linked events, acknowledge one with a note (with an API key: a run's token may not).

Lists and details hand out trail contents: each is recorded as a read of the trail
(``AuditTrailRead``, surface ``forensics``), a refused one (403) too. An acknowledgement is
recorded as ``ForensicFindingAcknowledged`` in the transaction that notes it; a second one is
a 409.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from dstrail.api.deps import DstrailDep, get_caller, trail_reader
from dstrail.api.errors import PUBLIC
from dstrail.api.schemas import TextBody
from dstrail.audit.query import reject_unknown
from dstrail.domain.forensics.findings import (
    FILTER_LABELS,
    MAX_NOTE,
    MAX_PAGE,
    REPEATABLE,
    FindingView,
    Rule,
    Severity,
    check_finding_id,
    finding_filter,
)
from dstrail.domain.forensics.queries import ACCEPTED_INSTANT
from dstrail.domain.timestamps import format_ms
from dstrail.domain.trail import event_document
from dstrail.errors import Forbidden
from dstrail.services.auth import Caller, require_audit_reader
from dstrail.services.finding_answers import (
    acknowledge_finding,
    finding_with_events,
    findings_page,
)
from dstrail.services.findings import FindingDetail, FindingsPage
from dstrail.services.forensics import follower_for
from dstrail.services.trail_reads import Surface, TrailReader

router = APIRouter(
    prefix="/api/dstrail/v1/forensics/findings",
    tags=["forensics"],
    responses=PUBLIC.responses(400, 401, 403, 503),
)
"""503: a read could not be recorded (``AuditTrailRead``), so nothing is returned."""

FindingsReader = Annotated[TrailReader, Depends(trail_reader(Surface.FORENSICS))]


def get_acknowledger(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
    """A SysAdmin or an Auditor with an API key: code inside a run, holding the run's token,
    may not acknowledge what the rules found. 403 for anyone else, before the body is read."""
    if caller.token_run is not None:
        raise Forbidden("findings are acknowledged with an API key, not with a run's token")
    require_audit_reader(caller)
    return caller


AcknowledgerDep = Annotated[Caller, Depends(get_acknowledger)]


# -- shapes ------------------------------------------------------------------------------------


class AcknowledgementRead(BaseModel):
    """Who acknowledged a finding, when, with which note, as which event of the trail."""

    by: str
    byUsername: str  # noqa: N815
    at: str
    note: str
    seq: int = Field(description="the ForensicFindingAcknowledged event")


class FindingRead(BaseModel):
    """A finding of a detection rule."""

    id: str
    rule: str = Field(description=", ".join(rule.value for rule in Rule))
    severity: str = Field(description=", ".join(severity.value for severity in Severity))
    summary: str
    userId: str = Field(description="the user it is about; '' for none")  # noqa: N815
    username: str
    dataSourceId: str  # noqa: N815
    dataSourceName: str = Field(description="as it was named then")  # noqa: N815
    runId: str = Field(description="the run of the access that fired it; '' for none")  # noqa: N815
    seqs: list[int] = Field(description="the linked events, oldest first")
    firstSeq: int  # noqa: N815
    lastSeq: int = Field(description="the event that fired the rule")  # noqa: N815
    time: str = Field(description="when that event happened")
    details: dict[str, Any] = Field(description="the rule's own figures")
    raisedSeq: int | None = Field(  # noqa: N815
        description="its ForensicFindingRaised event; null when a rebuild found it"
    )
    acknowledgement: AcknowledgementRead | None


class FindingsRead(BaseModel):
    """A page of findings, newest first."""

    findings: list[FindingRead]
    next: str | None = Field(description="the `cursor` of the next page; null: no more")


class LinkedEventRead(BaseModel):
    """A linked event: its seq and its seven fields, as the audit API returns them."""

    seq: int
    dataSourceId: str  # noqa: N815
    dataSourceName: str  # noqa: N815
    dataSourceType: str  # noqa: N815
    eventKind: str  # noqa: N815
    metadata: dict[str, str]
    performedBy: str  # noqa: N815
    timestamp: str


class FindingDetailRead(FindingRead):
    """A finding with its linked events (those the trail still holds)."""

    events: list[LinkedEventRead]


class AcknowledgeBody(TextBody):
    """``POST .../findings/{id}/acknowledge``."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field(
        min_length=1, max_length=MAX_NOTE, description="what was found out or done about it"
    )


# -- rendering (the CLI's --json prints the same) -------------------------------------------------


def finding_document(view: FindingView) -> dict[str, Any]:
    """The JSON document of a finding."""
    finding, ack = view.finding, view.acknowledgement
    return {
        "id": finding.id,
        "rule": finding.rule.value,
        "severity": finding.severity.value,
        "summary": finding.summary,
        "userId": finding.user_id,
        "username": finding.username,
        "dataSourceId": finding.data_source_id,
        "dataSourceName": finding.data_source_name,
        "runId": finding.run_id,
        "seqs": list(finding.seqs),
        "firstSeq": finding.first_seq,
        "lastSeq": finding.last_seq,
        "time": format_ms(finding.ts_ms),
        "details": finding.details,
        "raisedSeq": view.raised_seq,
        "acknowledgement": None
        if ack is None
        else {
            "by": ack.by,
            "byUsername": ack.by_username,
            "at": format_ms(ack.at_ms),
            "note": ack.note,
            "seq": ack.seq,
        },
    }


def findings_document(page: FindingsPage) -> dict[str, Any]:
    """The JSON document of a page of findings."""
    return {
        "findings": [finding_document(view) for view in page.findings],
        "next": page.next.encode() if page.next is not None else None,
    }


def detail_document(detail: FindingDetail) -> dict[str, Any]:
    """The JSON document of a finding with its events."""
    return {
        **finding_document(detail.view),
        "events": [
            {"seq": event.seq, **event_document(event), "metadata": orjson.loads(event.metadata)}
            for event in detail.events
        ],
    }


# -- routes ------------------------------------------------------------------------------------

_LISTS = {FILTER_LABELS[name] for name in REPEATABLE}


def _filter_values(request: Request) -> dict[str, list[str]]:
    """The query's values by filter field, once only known parameters were given."""
    given = [key for key, _ in request.query_params.multi_items()]
    reject_unknown(given, list(FILTER_LABELS.values()))
    return {name: request.query_params.getlist(label) for name, label in FILTER_LABELS.items()}


def _q(alias: str, description: str) -> Any:
    return Query(alias=alias, description=description)


@router.get("", response_model=FindingsRead, summary="The detection rules' findings")
def list_findings(
    request: Request,
    dstrail: DstrailDep,
    reader: FindingsReader,
    rule: Annotated[list[str] | None, _q("rule", "repeatable: " + ", ".join(Rule))] = None,
    severity: Annotated[
        list[str] | None, _q("severity", "repeatable: " + ", ".join(Severity))
    ] = None,
    userId: Annotated[list[str] | None, _q("userId", "repeatable: a user's id")] = None,  # noqa: N803
    username: Annotated[list[str] | None, _q("username", "repeatable: a username")] = None,
    dataSourceId: Annotated[  # noqa: N803
        list[str] | None, _q("dataSourceId", "repeatable: a data source's id")
    ] = None,
    dataSourceName: Annotated[  # noqa: N803
        list[str] | None, _q("dataSourceName", "repeatable: the name it had then")
    ] = None,
    acknowledged: Annotated[str | None, _q("acknowledged", "true or false")] = None,
    from_: Annotated[str | None, _q("from", f"findings from: {ACCEPTED_INSTANT}")] = None,
    to: Annotated[str | None, _q("to", f"findings up to: {ACCEPTED_INSTANT}")] = None,
    limit: Annotated[str | None, _q("limit", f"findings a page, 1-{MAX_PAGE} (100)")] = None,
    cursor: Annotated[str | None, _q("cursor", "the `next` of the previous page")] = None,
) -> dict[str, Any]:
    """Newest first (by the seq of the event that fired each); lists repeat their parameter
    and are OR-ed, different parameters AND-ed. Recorded as a read of the trail."""
    wanted = finding_filter(_filter_values(request))
    follower = follower_for(dstrail.store, settings=dstrail.settings, clock=dstrail.clock)
    page = findings_page(follower, wanted)
    reader.record(wanted.asked(), rows=len(page.findings))
    return findings_document(page)


@router.get(
    "/{finding_id}",
    response_model=FindingDetailRead,
    summary="A finding with its linked events",
    responses=PUBLIC.responses(404),
)
def get_finding(finding_id: str, dstrail: DstrailDep, reader: FindingsReader) -> dict[str, Any]:
    """The finding and the events it links (seq and the audit API's seven fields). Recorded
    as a read of the trail."""
    check_finding_id(finding_id)
    follower = follower_for(dstrail.store, settings=dstrail.settings, clock=dstrail.clock)
    detail = finding_with_events(follower, finding_id)
    reader.record({"findingId": finding_id}, rows=len(detail.events))
    return detail_document(detail)


@router.post(
    "/{finding_id}/acknowledge",
    response_model=FindingRead,
    summary="Acknowledge a finding, with a note (recorded)",
    responses=PUBLIC.responses(404, 409),
)
def acknowledge(
    finding_id: str, body: AcknowledgeBody, dstrail: DstrailDep, caller: AcknowledgerDep
) -> dict[str, Any]:
    """Records ``ForensicFindingAcknowledged`` (who, the note). A finding is acknowledged
    once: a second acknowledgement is a 409 and changes nothing."""
    check_finding_id(finding_id)
    follower = follower_for(dstrail.store, settings=dstrail.settings, clock=dstrail.clock)
    view = acknowledge_finding(
        follower, finding_id, actor=caller.user, note=body.note, now_ms=dstrail.clock()
    )
    return finding_document(view)
