"""The timeline page (SysAdmins and Auditors): the accesses, refused attempts and grant
changes of a user, a run or a data source, in order, a page at a time (recorded as a read of
the trail, surface ``console``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import Response

from dstrail.api.deps import DstrailDep
from dstrail.context import Dstrail
from dstrail.domain.forensics import TimelinePage
from dstrail.domain.forensics.queries import MAX_LIMIT, TimelineQuery
from dstrail.domain.trail import MAX_SEQ
from dstrail.errors import NotFound
from dstrail.services.forensic_answers import timeline
from dstrail.services.trail_reads import TrailReader
from dstrail.web.deps import SignedInDep
from dstrail.web.forensics_forms import (
    ACCEPTED_TIME,
    FieldErrors,
    Form,
    Subject,
    back_list,
    collect,
    count_field,
    forensics_follower,
    guarded,
    instant,
    not_found,
    read_form,
    render_page,
    subject_candidates,
    submitted,
)

router = APIRouter(include_in_schema=False)

TIMELINE_PAGE: Final = 50
_SEQS = re.compile(r"^\d{1,19}(,\d{1,19})*$")

TIMELINE_SUBJECTS: Final = {
    "user": Subject("User", "user_id", "username", "a username or a user id"),
    "run": Subject("Run", "run_id", None, "a run id (24 lowercase hex characters)"),
    "datasource": Subject(
        "Data source", "data_source_id", "data_source_name",
        "the name it had at the window's end, or its id",
    ),
}  # fmt: skip


@router.get("/forensics/timeline")
def timeline_page(request: Request, dstrail: DstrailDep, signed_in: SignedInDep) -> Response:
    """The accesses, refused attempts and grant changes of a user, a run or a data source, in
    order, a page at a time."""

    def render(reader: TrailReader) -> Response:
        form = read_form(request, ("of", "subject", "from", "to", "limit", "after", "back"))
        form.values["of"] = form.get("of") or "user"
        result: TimelinePage | None = None
        status = 200
        if form.errors:
            status = 400
        elif submitted(request):
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
        return render_page(request, dstrail, signed_in, "forensics_timeline.html", context, status)

    return guarded(request, dstrail, signed_in, render)


def _page_options(form: Form) -> list[tuple[str, str]]:
    """The page sizes offered, with the one in the URL when it is another valid one."""
    sizes = {25, TIMELINE_PAGE, 100, 200}
    given = form.get("limit")
    if given.isdigit() and 1 <= int(given) <= MAX_LIMIT:
        sizes.add(int(given))
    return [(str(size), str(size)) for size in sorted(sizes)]


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
    chosen = collect(errors, lambda: subject_candidates(form, TIMELINE_SUBJECTS))
    from_ms = collect(errors, lambda: instant(form, "from", "From"))
    to_ms = collect(errors, lambda: instant(form, "to", "To", end=True))
    if from_ms is not None and to_ms is not None and from_ms > to_ms:
        errors["to"] = "To: must not be before From; accepted: a time at or after From"
    limit = collect(
        errors,
        lambda: count_field(
            form, "limit", "Per page", low=1, high=MAX_LIMIT, default=TIMELINE_PAGE
        ),
    )
    after, back = form.get("after"), back_list(form, "back")
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
    follower = forensics_follower(dstrail)
    missing: NotFound | None = None
    for name in ask.candidates:
        query = ask.query(name)
        try:
            return query, timeline(follower, query)
        except NotFound as error:
            missing = error
    assert missing is not None
    raise not_found(ask.subject, missing)


def _timeline_pages(form: Form, result: TimelinePage) -> dict[str, str]:
    """The links to the newer page, the older one and the first one (query strings)."""
    links: dict[str, str] = {}
    back = back_list(form, "back")
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
