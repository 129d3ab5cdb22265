"""The forensics pages (SysAdmins and Auditors): who could reach a data source at a moment, or
what a user could reach, with the event behind each grant; the timeline of a user, a run or a
data source; the detection rules' findings, each with its events, and acknowledging one.

Each page that shows trail contents is recorded as a read of the trail (``AuditTrailRead``,
surface ``console``), a refused one too. A question the page cannot answer re-renders the form
with the field marked (``aria-invalid``) and a message saying what is accepted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from dstrail.api.deps import DstrailDep
from dstrail.api.forensics import entries_counted
from dstrail.context import Dstrail
from dstrail.domain.forensics import Category, TimelinePage, Via
from dstrail.domain.forensics.findings import (
    MAX_NOTE,
    FindingCursor,
    FindingFilter,
    FindingView,
    Rule,
    Severity,
)
from dstrail.domain.forensics.queries import (
    MAX_LIMIT,
    MAX_NAME,
    EntitlementsQuery,
    TimelineQuery,
    parse_instant,
)
from dstrail.domain.ids import is_object_id
from dstrail.domain.text import ACCEPTED_TEXT, text_problem
from dstrail.domain.timestamps import format_ms
from dstrail.domain.trail import MAX_SEQ
from dstrail.errors import Conflict, DstrailError, Forbidden, InvalidInput, NotFound
from dstrail.services import finding_answers
from dstrail.services.auth import Caller, require_audit_reader
from dstrail.services.forensic_answers import (
    DataSourceEntitlements,
    UserEntitlements,
    entitlements,
    timeline,
)
from dstrail.services.forensics import Follower, follower_for
from dstrail.services.trail_reads import Surface, TrailReader
from dstrail.web.audit_views import event_view
from dstrail.web.deps import CheckedFormDep, SignedIn, SignedInDep
from dstrail.web.deps import field as form_field
from dstrail.web.pages import page

router = APIRouter(include_in_schema=False)
T = TypeVar("T")

TIMELINE_PAGE: Final = 50
FINDINGS_PAGE: Final = 50
MAX_TEXT: Final = 1000
"""A field longer than this is shown cut (it is refused anyway)."""
MAX_BACK: Final = 200
"""Pages the "newer"/"older" links remember (beyond: back to the first page)."""

ACCEPTED_TIME: Final = (
    "a UTC time such as 2026-06-01 12:00 or 2026-06-01T12:00:00Z, a date alone (2026-06-01), "
    "a time with its offset (2026-06-01T12:00+02:00) or epoch milliseconds"
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_SEQS = re.compile(r"^\d{1,19}(,\d{1,19})*$")

CATEGORY_LABELS: Final = {
    Category.ACCESS: "access",
    Category.REFUSED: "refused",
    Category.GRANT_CHANGE: "grant change",
    Category.CHANGE: "change",
    Category.PLATFORM: "platform",
    Category.FINDING: "finding",
}
VIA_LABELS: Final = {
    Via.OWNER: "owner",
    Via.USER: "listed user",
    Via.EVERYONE: "everyone",
    Via.PROJECT: "project",
}


@dataclass(frozen=True, slots=True)
class Subject:
    """What a form can ask about: its label, the query subject by id and by name."""

    label: str
    by_id: str
    by_name: str | None
    accepted: str


ENTITLEMENT_SUBJECTS: Final = {
    "datasource": Subject(
        "Data source", "data_source_id", "data_source_name",
        "the name it had at that moment (deleted ones too), or its id",
    ),
    "user": Subject("User", "user_id", "username", "a username or a user id"),
}  # fmt: skip
TIMELINE_SUBJECTS: Final = {
    "user": Subject("User", "user_id", "username", "a username or a user id"),
    "run": Subject("Run", "run_id", None, "a run id (24 lowercase hex characters)"),
    "datasource": Subject(
        "Data source", "data_source_id", "data_source_name",
        "the name it had at the window's end, or its id",
    ),
}  # fmt: skip


class FieldErrors(Exception):
    """Fields the page cannot take as given, each with what is wrong and what is accepted."""

    def __init__(self, errors: Mapping[str, str], *, status_code: int = 400) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = dict(errors)
        self.status_code = status_code


def _wrong(name: str, message: str, *, status_code: int = 400) -> FieldErrors:
    return FieldErrors({name: message}, status_code=status_code)


@dataclass(slots=True)
class Form:
    """A GET form as typed (values stripped, cut to ``MAX_TEXT``) and its errors by field
    (``""``: about the whole form)."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str:
        """The value of a field ('' when not given)."""
        return self.values.get(name, "")

    def query(self, **changes: str | None) -> str:
        """The URL query of these values with ``changes`` (None or '': left out)."""
        merged: dict[str, str | None] = {**self.values, **changes}
        return urlencode([(key, value) for key, value in merged.items() if value])

    def take(self, error: FieldErrors) -> int:
        """Note ``error``'s fields; its status code."""
        self.errors.update(error.errors)
        return error.status_code


def _form(request: Request, names: Sequence[str]) -> Form:
    params = request.query_params
    values = {name: params.get(name, "").strip()[:MAX_TEXT] for name in names}
    form = Form(values=values)
    for name in names:
        problem = text_problem(params.get(name, ""))
        if problem:
            form.errors[name] = f"{name}: {problem}; accepted: {ACCEPTED_TEXT}"
    return form


# -- who may read ---------------------------------------------------------------------------------


def _reader(request: Request, dstrail: Dstrail, signed_in: SignedIn) -> TrailReader:
    """The signed-in user as a reader of the trail; ``Forbidden`` for others, recorded."""
    reader = TrailReader(
        store=dstrail.store, clock=dstrail.clock, actor=signed_in.user, surface=Surface.CONSOLE,
        origin={"path": request.url.path},
    )  # fmt: skip
    try:
        require_audit_reader(Caller(user=signed_in.user))
    except Forbidden:
        query = request.query_params
        reader.refused({key: query.getlist(key) for key in query})
        raise
    return reader


def _error_page(
    request: Request, dstrail: Dstrail, signed_in: SignedIn, error: DstrailError
) -> Response:
    """An error as a page that keeps the navigation of the signed-in user."""
    titles = {403: "Not allowed", 404: "Not found", 409: "That collides with the current state"}
    return page(
        request, dstrail, "error.html",
        {
            "status_code": error.status_code,
            "title": titles.get(error.status_code, "That request cannot be answered"),
            "message": error.message,
        },
        user=signed_in.user, session=signed_in.session, status_code=error.status_code,
    )  # fmt: skip


def _guarded(
    request: Request,
    dstrail: Dstrail,
    signed_in: SignedIn,
    render: Callable[[TrailReader], Response],
) -> Response:
    """``render`` for a reader of the trail; the 403 page for anyone else (recorded), and any
    error ``render`` raises as a page that keeps the navigation."""
    try:
        reader = _reader(request, dstrail, signed_in)
        return render(reader)
    except DstrailError as error:  # refused, not found, unavailable: a page with the navigation
        return _error_page(request, dstrail, signed_in, error)


def _follower(dstrail: Dstrail) -> Follower:
    return follower_for(dstrail.store, settings=dstrail.settings, clock=dstrail.clock)


def _render(
    request: Request,
    dstrail: Dstrail,
    signed_in: SignedIn,
    template: str,
    context: dict[str, Any],
    status_code: int = 200,
) -> Response:
    return page(
        request, dstrail, template,
        {"via_labels": VIA_LABELS, "category_labels": CATEGORY_LABELS, **context},
        user=signed_in.user, session=signed_in.session, status_code=status_code,
    )  # fmt: skip


# -- parsing what was typed -----------------------------------------------------------------------


def _instant(form: Form, name: str, label: str, *, end: bool = False) -> int | None:
    """Epoch ms of a time field ('' : None); no offset means UTC, a date alone its midnight
    (``end``: its last millisecond)."""
    text = form.get(name)
    if not text:
        return None
    value = text
    if _DATE.match(value):
        if len(value) > 10 and value[10] in " t":
            value = f"{value[:10]}T{value[11:]}"
        if len(value) == 10:
            value += "T23:59:59.999" if end else "T00:00:00"
        if not (value.endswith(("Z", "z")) or "+" in value[10:] or "-" in value[10:]):
            value += "Z"
    try:
        return parse_instant(value, field=label)
    except InvalidInput:
        raise _wrong(name, f"{label}: cannot read {text!r}; accepted: {ACCEPTED_TIME}") from None


def _count(form: Form, name: str, label: str, *, low: int, high: int, default: int) -> int:
    text = form.get(name)
    if not text:
        return default
    if not text.isdigit() or len(text) > 19 or not low <= int(text) <= high:
        raise _wrong(name, f"{label}: {text!r} is not accepted; accepted: {low} to {high}")
    return int(text)


def _candidates(form: Form, subjects: Mapping[str, Subject]) -> tuple[Subject, list[str]]:
    """The form's subject and the query subjects to try, by id first when it looks like one."""
    of = form.get("of")
    if of not in subjects:
        accepted = ", ".join(subjects)
        raise _wrong("of", f"Of: {of!r} is not accepted; accepted: {accepted}")
    subject = subjects[of]
    value = form.get("subject")
    if not value:
        raise _wrong("subject", f"{subject.label}: required; accepted: {subject.accepted}")
    if len(value) > MAX_NAME:
        raise _wrong(
            "subject",
            f"{subject.label}: at most {MAX_NAME} characters; accepted: {subject.accepted}",
        )
    if is_object_id(value):
        return subject, [subject.by_id] + ([subject.by_name] if subject.by_name else [])
    if subject.by_name is None:
        raise _wrong(
            "subject", f"{subject.label}: {value!r} is not accepted; accepted: {subject.accepted}"
        )
    return subject, [subject.by_name]


def _not_found(subject: Subject, error: NotFound) -> FieldErrors:
    """A service's ``NotFound`` (named as the API names its parameter) for the form's field."""
    _label, _sep, what = error.message.partition(": ")
    return _wrong(
        "subject",
        f"{subject.label}: {what or error.message}; accepted: {subject.accepted}",
        status_code=404,
    )


def _service_input(error: InvalidInput) -> FieldErrors:
    if error.message.startswith("atSeq"):
        return _wrong("at_seq", "At event: " + error.message.partition(": ")[2])
    return _wrong("", error.message)


def _submitted(request: Request) -> bool:
    """Whether the form was sent (its subject field is in the URL, even empty)."""
    return "subject" in request.query_params


# -- entitlements ---------------------------------------------------------------------------------


@router.get("/forensics")
def forensics_home() -> Response:
    """The forensics pages start at entitlements."""
    return RedirectResponse("/forensics/entitlements", status_code=303)


@router.get("/forensics/entitlements")
def entitlements_page(request: Request, dstrail: DstrailDep, signed_in: SignedInDep) -> Response:
    """Who could use a data source at a moment and through which grant, or what a user could
    use; each grant with the event that gave it."""

    def render(reader: TrailReader) -> Response:
        form = _form(request, ("of", "subject", "at", "at_seq"))
        form.values["of"] = form.get("of") or "datasource"
        answer: DataSourceEntitlements | UserEntitlements | None = None
        status = 200
        if form.errors:
            status = 400
        elif _submitted(request):
            try:
                answer = _entitlements(dstrail, form)
            except FieldErrors as error:
                status = form.take(error)
            else:
                reader.record(_entitlements_asked(answer), rows=entries_counted(answer))
        context = {
            "form": form,
            "answer": answer,
            "about_user": isinstance(answer, UserEntitlements),
            "moment_query": _moment_query(answer) if answer else "",
            "accepted_time": ACCEPTED_TIME,
        }
        return _render(request, dstrail, signed_in, "forensics_entitlements.html", context, status)

    return _guarded(request, dstrail, signed_in, render)


def _entitlements(dstrail: Dstrail, form: Form) -> DataSourceEntitlements | UserEntitlements:
    """The answer to the form; ``FieldErrors`` naming each field it cannot take."""
    errors: dict[str, str] = {}
    chosen = _collect(errors, lambda: _candidates(form, ENTITLEMENT_SUBJECTS))
    at_ms = _collect(errors, lambda: _instant(form, "at", "At"))
    at_seq = _collect(
        errors, lambda: _count(form, "at_seq", "At event", low=0, high=MAX_SEQ, default=-1)
    )
    if form.get("at") and form.get("at_seq"):
        errors["at_seq"] = "At event: give a time or an event (its seq), not both"
    if errors or chosen is None:
        raise FieldErrors(errors)
    subject, candidates = chosen
    follower = _follower(dstrail)
    missing: NotFound | None = None
    for name in candidates:
        query = EntitlementsQuery(
            subject=name,
            value=form.get("subject"),
            at_ms=at_ms,
            at_seq=None if at_seq is None or at_seq < 0 else at_seq,
        )
        try:
            return entitlements(follower, query)
        except NotFound as error:
            missing = error
        except InvalidInput as error:
            raise _service_input(error) from None
    assert missing is not None
    raise _not_found(subject, missing)


def _entitlements_asked(answer: DataSourceEntitlements | UserEntitlements) -> dict[str, object]:
    """The question as the API names it, with the subject as it was found."""
    asked: dict[str, object]
    if isinstance(answer, UserEntitlements):
        asked = {"userId": answer.user_id}
    else:
        asked = {"dataSourceId": answer.data_source.data_source_id}
    if answer.moment.asked_ms is not None:
        asked["at"] = format_ms(answer.moment.asked_ms)
    return {**asked, "atSeq": answer.moment.at_seq}


def _moment_query(answer: DataSourceEntitlements | UserEntitlements) -> str:
    """The moment of ``answer`` as a query (``at`` or ``at_seq``), for links that keep it."""
    if answer.moment.asked_ms is not None:
        return urlencode({"at": format_ms(answer.moment.asked_ms)})
    return urlencode({"at_seq": answer.moment.at_seq})


# -- timelines ------------------------------------------------------------------------------------


@router.get("/forensics/timeline")
def timeline_page(request: Request, dstrail: DstrailDep, signed_in: SignedInDep) -> Response:
    """The accesses, refused attempts and grant changes of a user, a run or a data source, in
    order, a page at a time."""

    def render(reader: TrailReader) -> Response:
        form = _form(request, ("of", "subject", "from", "to", "limit", "after", "back"))
        form.values["of"] = form.get("of") or "user"
        result: TimelinePage | None = None
        status = 200
        if form.errors:
            status = 400
        elif _submitted(request):
            try:
                ask = _timeline_ask(form)
                query, result = _timeline(dstrail, ask)
            except FieldErrors as error:
                status = form.take(error)
            else:
                reader.record(
                    {**query.asked(), "afterSeq": result.after, "throughSeq": result.through},
                    rows=len(result.entries),
                )
        context = {
            "form": form,
            "result": result,
            "pages": _timeline_pages(form, result) if result else {},
            "accepted_time": ACCEPTED_TIME,
            "page_options": _page_options(form),
            "default_limit": TIMELINE_PAGE,
        }
        return _render(request, dstrail, signed_in, "forensics_timeline.html", context, status)

    return _guarded(request, dstrail, signed_in, render)


def _page_options(form: Form) -> list[tuple[str, str]]:
    """The page sizes offered, with the one in the URL when it is another valid one."""
    sizes = {25, TIMELINE_PAGE, 100, 200}
    given = form.get("limit")
    if given.isdigit() and 1 <= int(given) <= MAX_LIMIT:
        sizes.add(int(given))
    return [(str(size), str(size)) for size in sorted(sizes)]


def _back_list(form: Form, name: str) -> list[str]:
    """The positions of the earlier pages (comma separated, oldest first)."""
    text = form.get(name)
    if not text:
        return []
    parts = text.split(",")
    return parts[-MAX_BACK:]


def _collect(errors: dict[str, str], parse: Callable[[], T]) -> T | None:
    """``parse()``, or None with its field errors noted in ``errors``."""
    try:
        return parse()
    except FieldErrors as error:
        errors.update(error.errors)
        return None


@dataclass(frozen=True, slots=True)
class TimelineAsk:
    """A timeline as the form asks for it: whose (the query subjects to try), the window, the
    page size, the position and the positions of the earlier pages."""

    subject: Subject
    candidates: list[str]
    value: str
    from_ms: int | None
    to_ms: int | None
    limit: int
    after: int
    back: list[str]

    def query(self, name: str) -> TimelineQuery:
        """The question with the query subject ``name``."""
        return TimelineQuery(
            subject=name, value=self.value, from_ms=self.from_ms, to_ms=self.to_ms,
            limit=self.limit, after=self.after,
        )  # fmt: skip


def _timeline_ask(form: Form) -> TimelineAsk:
    """What the form asks for; ``FieldErrors`` naming each field it cannot take."""
    errors: dict[str, str] = {}
    chosen = _collect(errors, lambda: _candidates(form, TIMELINE_SUBJECTS))
    from_ms = _collect(errors, lambda: _instant(form, "from", "From"))
    to_ms = _collect(errors, lambda: _instant(form, "to", "To", end=True))
    if from_ms is not None and to_ms is not None and from_ms > to_ms:
        errors["to"] = "To: must not be before From; accepted: a time at or after From"
    limit = _collect(
        errors,
        lambda: _count(form, "limit", "Per page", low=1, high=MAX_LIMIT, default=TIMELINE_PAGE),
    )
    after, back = form.get("after"), _back_list(form, "back")
    if (after and not _SEQS.match(after)) or (back and not _SEQS.match(",".join(back))):
        errors[""] = "this page link is not one of the timeline's (after, back): start again"
    if errors or chosen is None or limit is None:
        raise FieldErrors(errors)
    subject, candidates = chosen
    return TimelineAsk(
        subject=subject, candidates=candidates, value=form.get("subject"), from_ms=from_ms,
        to_ms=to_ms, limit=limit, after=min(int(after or 0), MAX_SEQ), back=back,
    )  # fmt: skip


def _timeline(dstrail: Dstrail, ask: TimelineAsk) -> tuple[TimelineQuery, TimelinePage]:
    """The page asked for, and the question as it was answered (its subject resolved)."""
    follower = _follower(dstrail)
    missing: NotFound | None = None
    for name in ask.candidates:
        query = ask.query(name)
        try:
            return query, timeline(follower, query)
        except NotFound as error:
            missing = error
    assert missing is not None
    raise _not_found(ask.subject, missing)


def _timeline_pages(form: Form, result: TimelinePage) -> dict[str, str]:
    """The links to the newer page, the older one and the first one (query strings)."""
    links: dict[str, str] = {}
    back = _back_list(form, "back")
    here = form.get("after") or "0"
    if result.next_after is not None:
        links["newer"] = form.query(after=str(result.next_after), back=",".join([*back, here]))
    if back:
        links["older"] = form.query(
            after=back[-1] if back[-1] != "0" else None, back=",".join(back[:-1])
        )
    if form.get("after"):
        links["first"] = form.query(after=None, back=None)
    return links


# -- findings -------------------------------------------------------------------------------------


@router.get("/forensics/findings")
def findings_page(request: Request, dstrail: DstrailDep, signed_in: SignedInDep) -> Response:
    """The detection rules' findings, newest first, filtered."""

    def render(reader: TrailReader) -> Response:
        form = _form(request, ("rule", "severity", "state", "user", "datasource", "cursor", "back"))
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
            found = finding_answers.findings_page(_follower(dstrail), wanted)
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
        return _render(request, dstrail, signed_in, "forensics_findings.html", context, status)

    return _guarded(request, dstrail, signed_in, render)


def _one_of(form: Form, name: str, label: str, accepted: Sequence[str]) -> str:
    value = form.get(name)
    if value and value not in accepted:
        raise _wrong(name, f"{label}: {value!r} is not accepted; accepted: {', '.join(accepted)}")
    return value


def _id_or_name(form: Form, name: str, label: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(ids, names) of a field taking an id (24 lowercase hex) or a name."""
    value = form.get(name)
    if len(value) > MAX_NAME:
        raise _wrong(name, f"{label}: at most {MAX_NAME} characters; accepted: a name or an id")
    if not value:
        return (), ()
    return ((value,), ()) if is_object_id(value) else ((), (value,))


def _finding_filter(form: Form) -> FindingFilter:
    """The findings the form asks for: a user or a data source by id or by name (the name
    the data source had when the finding's event happened)."""
    errors: dict[str, str] = {}
    rule = _collect(errors, lambda: _one_of(form, "rule", "Rule", [r.value for r in Rule]))
    severity = _collect(
        errors, lambda: _one_of(form, "severity", "Severity", [s.value for s in Severity])
    )
    state = _collect(errors, lambda: _one_of(form, "state", "State", ["open", "acknowledged"]))
    user_ids, usernames = _collect(errors, lambda: _id_or_name(form, "user", "User")) or ((), ())
    source_ids, source_names = _collect(
        errors, lambda: _id_or_name(form, "datasource", "Data source")
    ) or ((), ())
    cursor = None
    try:
        cursor = FindingCursor.decode(form.get("cursor")) if form.get("cursor") else None
        for position in _back_list(form, "back"):
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
    back = _back_list(form, "back")
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

    return _guarded(request, dstrail, signed_in, render)


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
    detail = finding_answers.finding_with_events(_follower(dstrail), finding_id)
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
    return _render(request, dstrail, signed_in, "forensics_finding.html", context, status_code)


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
                _follower(dstrail), finding_id, actor=signed_in.user, note=note,
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

    return _guarded(request, dstrail, signed_in, render)


def _note_message(message: str) -> str:
    _label, _sep, what = message.partition(": ")
    return f"Note: {what or message}"
