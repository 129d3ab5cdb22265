"""The findings pages (SysAdmins and Auditors): the detection rules' findings, newest first and
filtered, one finding with its linked events, and acknowledging it with a note (recorded in the
trail as ``ForensicFindingAcknowledged``). Each page is recorded as a read of the trail.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from dstrail.api.deps import DstrailDep
from dstrail.context import Dstrail
from dstrail.domain.forensics.findings import (
    MAX_NOTE,
    FindingCursor,
    FindingFilter,
    FindingView,
    Rule,
    Severity,
)
from dstrail.domain.forensics.queries import MAX_NAME
from dstrail.domain.ids import is_object_id
from dstrail.errors import Conflict, InvalidInput, NotFound
from dstrail.services import finding_answers
from dstrail.services.trail_reads import TrailReader
from dstrail.web.audit_views import event_view
from dstrail.web.deps import CheckedFormDep, SignedIn, SignedInDep
from dstrail.web.deps import field as form_field
from dstrail.web.forensics_forms import (
    FieldErrors,
    Form,
    back_list,
    collect,
    forensics_follower,
    guarded,
    read_form,
    render_page,
    wrong,
)

router = APIRouter(include_in_schema=False)

FINDINGS_PAGE: Final = 50


@router.get("/forensics/findings")
def findings_page(request: Request, dstrail: DstrailDep, signed_in: SignedInDep) -> Response:
    """The detection rules' findings, newest first, filtered."""

    def render(reader: TrailReader) -> Response:
        form = read_form(
            request, ("rule", "severity", "state", "user", "datasource", "cursor", "back")
        )
        status = 200
        shown: list[FindingView] = []
        pages: dict[str, str] = {}
        try:
            if form.errors:
                raise FieldErrors(form.errors)
            wanted = _finding_filter(form)
        except FieldErrors as error:
            status = form.take(error)
        else:
            found = finding_answers.findings_page(forensics_follower(dstrail), wanted)
            shown = found.findings
            reader.record(wanted.asked(), rows=len(shown))
            pages = _finding_pages(form, found.next)
        context = {
            "form": form,
            "findings": shown,
            "pages": pages,
            "rule_options": [(rule.value, rule.value) for rule in Rule],
            "severity_options": [(severity.value, severity.value) for severity in Severity],
            "filtered": any(
                form.get(n) for n in ("rule", "severity", "state", "user", "datasource")
            ),
        }
        return render_page(request, dstrail, signed_in, "forensics_findings.html", context, status)

    return guarded(request, dstrail, signed_in, render)


def _one_of(form: Form, name: str, label: str, accepted: Sequence[str]) -> str:
    value = form.get(name)
    if value and value not in accepted:
        raise wrong(name, f"{label}: {value!r} is not accepted; accepted: {', '.join(accepted)}")
    return value


def _id_or_name(form: Form, name: str, label: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(ids, names) of a field taking an id (24 lowercase hex) or a name."""
    value = form.get(name)
    if len(value) > MAX_NAME:
        raise wrong(name, f"{label}: at most {MAX_NAME} characters; accepted: a name or an id")
    if not value:
        return (), ()
    return ((value,), ()) if is_object_id(value) else ((), (value,))


def _finding_filter(form: Form) -> FindingFilter:
    """The findings the form asks for: a user or a data source by id or by name (the name
    the data source had when the finding's event happened)."""
    errors: dict[str, str] = {}
    rule = collect(errors, lambda: _one_of(form, "rule", "Rule", [r.value for r in Rule]))
    severity = collect(
        errors, lambda: _one_of(form, "severity", "Severity", [s.value for s in Severity])
    )
    state = collect(errors, lambda: _one_of(form, "state", "State", ["open", "acknowledged"]))
    user_ids, usernames = collect(errors, lambda: _id_or_name(form, "user", "User")) or ((), ())
    source_ids, source_names = collect(
        errors, lambda: _id_or_name(form, "datasource", "Data source")
    ) or ((), ())
    cursor = None
    try:
        cursor = FindingCursor.decode(form.get("cursor")) if form.get("cursor") else None
        for position in back_list(form, "back"):
            if position != "0":
                FindingCursor.decode(position)
    except InvalidInput:
        errors[""] = "this page link is not one of the findings list's (cursor, back): start again"
    if errors:
        raise FieldErrors(errors)
    return FindingFilter(
        rules=(Rule(rule),) if rule else (),
        severities=(Severity(severity),) if severity else (),
        user_ids=user_ids, usernames=usernames,
        data_source_ids=source_ids, data_source_names=source_names,
        acknowledged=None if not state else state == "acknowledged",
        limit=FINDINGS_PAGE, cursor=cursor,
    )  # fmt: skip


def _finding_pages(form: Form, cursor: FindingCursor | None) -> dict[str, str]:
    """The links to the older page, the newer one and the newest one (query strings)."""
    links: dict[str, str] = {}
    back = back_list(form, "back")
    here = form.get("cursor") or "0"
    if cursor is not None:
        links["older"] = form.query(cursor=cursor.encode(), back=",".join([*back, here]))
    if back:
        newer = back[-1] if back[-1] != "0" else None
        links["newer"] = form.query(cursor=newer, back=",".join(back[:-1]))
    if form.get("cursor"):
        links["newest"] = form.query(cursor=None, back=None)
    return links


@router.get("/forensics/findings/{finding_id}")
def finding_page(
    finding_id: str, request: Request, dstrail: DstrailDep, signed_in: SignedInDep
) -> Response:
    """One finding: what the rule found, its linked events, its acknowledgement or the form."""

    def render(reader: TrailReader) -> Response:
        done = request.query_params.get("done") == "acknowledged"
        return _finding(request, dstrail, signed_in, reader, finding_id, done=done)

    return guarded(request, dstrail, signed_in, render)


def _finding(
    request: Request,
    dstrail: Dstrail,
    signed_in: SignedIn,
    reader: TrailReader,
    finding_id: str,
    *,
    done: bool = False,
    note: str = "",
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    if not is_object_id(finding_id):
        raise NotFound(f"no finding with id {finding_id[:100]!r}")
    detail = finding_answers.finding_with_events(forensics_follower(dstrail), finding_id)
    reader.record({"findingId": finding_id}, rows=len(detail.events))
    context = {
        "view": detail.view,
        "finding": detail.view.finding,
        "events": [event_view(event) for event in detail.events],
        "missing": len(detail.view.finding.seqs) - len(detail.events),
        "done": done,
        "note": note,
        "errors": errors or {},
        "max_note": MAX_NOTE,
    }
    return render_page(request, dstrail, signed_in, "forensics_finding.html", context, status_code)


@router.post("/forensics/findings/{finding_id}/acknowledge")
def acknowledge(
    finding_id: str,
    request: Request,
    dstrail: DstrailDep,
    signed_in: SignedInDep,
    form: CheckedFormDep,
) -> Response:
    """Acknowledge a finding with a note (recorded as ``ForensicFindingAcknowledged``)."""

    def render(reader: TrailReader) -> Response:
        note = form_field(form, "note")
        if not is_object_id(finding_id):
            raise NotFound(f"no finding with id {finding_id[:100]!r}")
        try:
            finding_answers.acknowledge_finding(
                forensics_follower(dstrail), finding_id, actor=signed_in.user, note=note,
                now_ms=dstrail.clock(),
            )  # fmt: skip
        except InvalidInput as error:
            return _finding(
                request, dstrail, signed_in, reader, finding_id, note=note,
                errors={"note": _note_message(error.message)}, status_code=400,
            )  # fmt: skip
        except Conflict as error:
            return _finding(
                request, dstrail, signed_in, reader, finding_id, note=note,
                errors={"": error.message}, status_code=409,
            )  # fmt: skip
        return RedirectResponse(
            f"/forensics/findings/{finding_id}?done=acknowledged", status_code=303
        )

    return guarded(request, dstrail, signed_in, render)


def _note_message(message: str) -> str:
    _label, _sep, what = message.partition(": ")
    return f"Note: {what or message}"
