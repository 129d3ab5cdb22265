"""The entitlements pages (SysAdmins and Auditors): who could use a data source at a moment
and through which grant, or what a user could use, each grant with the event that gave it.

Each answer is recorded as a read of the trail (``AuditTrailRead``, surface ``console``), a
refused one too.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from dstrail.api.deps import DstrailDep
from dstrail.api.forensics import entries_counted
from dstrail.context import Dstrail
from dstrail.domain.forensics.queries import EntitlementsQuery
from dstrail.domain.timestamps import format_ms
from dstrail.domain.trail import MAX_SEQ
from dstrail.errors import InvalidInput, NotFound
from dstrail.services.forensic_answers import DataSourceEntitlements, UserEntitlements, entitlements
from dstrail.services.trail_reads import TrailReader
from dstrail.web.deps import SignedInDep
from dstrail.web.forensics_forms import (
    ACCEPTED_TIME,
    FieldErrors,
    Form,
    Subject,
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
    wrong,
)

router = APIRouter(include_in_schema=False)

ENTITLEMENT_SUBJECTS: Final = {
    "datasource": Subject(
        "Data source", "data_source_id", "data_source_name",
        "the name it had at that moment (deleted ones too), or its id",
    ),
    "user": Subject("User", "user_id", "username", "a username or a user id"),
}  # fmt: skip


@router.get("/forensics")
def forensics_home() -> Response:
    """The forensics pages start at entitlements."""
    return RedirectResponse("/forensics/entitlements", status_code=303)


@router.get("/forensics/entitlements")
def entitlements_page(request: Request, dstrail: DstrailDep, signed_in: SignedInDep) -> Response:
    """Who could use a data source at a moment and through which grant, or what a user could
    use; each grant with the event that gave it."""

    def render(reader: TrailReader) -> Response:
        form = read_form(request, ("of", "subject", "at", "at_seq"))
        form.values["of"] = form.get("of") or "datasource"
        answer: DataSourceEntitlements | UserEntitlements | None = None
        status = 200
        if form.errors:
            status = 400
        elif submitted(request):
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
        return render_page(
            request, dstrail, signed_in, "forensics_entitlements.html", context, status
        )

    return guarded(request, dstrail, signed_in, render)


def _entitlements(dstrail: Dstrail, form: Form) -> DataSourceEntitlements | UserEntitlements:
    """The answer to the form; ``FieldErrors`` naming each field it cannot take."""
    errors: dict[str, str] = {}
    chosen = collect(errors, lambda: subject_candidates(form, ENTITLEMENT_SUBJECTS))
    at_ms = collect(errors, lambda: instant(form, "at", "At"))
    at_seq = collect(
        errors, lambda: count_field(form, "at_seq", "At event", low=0, high=MAX_SEQ, default=-1)
    )
    if form.get("at") and form.get("at_seq"):
        errors["at_seq"] = "At event: give a time or an event (its seq), not both"
    if errors or chosen is None:
        raise FieldErrors(errors)
    subject, candidates = chosen
    follower = forensics_follower(dstrail)
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
    raise not_found(subject, missing)


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


def _service_input(error: InvalidInput) -> FieldErrors:
    if error.message.startswith("atSeq"):
        return wrong("at_seq", "At event: " + error.message.partition(": ")[2])
    return wrong("", error.message)
