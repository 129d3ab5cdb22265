"""What the forensics pages share: reading a GET form (each field as typed, its errors), the
parsers of its fields (times, counts, the subject asked about), the check that the signed-in
user reads the trail (a refusal is recorded) and the page that renders an error with the
navigation kept.

A question a page cannot answer re-renders its form with the field marked (``aria-invalid``)
and a message saying what is accepted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response

from dstrail.context import Dstrail
from dstrail.domain.forensics import Category, Via
from dstrail.domain.forensics.queries import MAX_NAME, parse_instant
from dstrail.domain.ids import is_object_id
from dstrail.domain.text import ACCEPTED_TEXT, text_problem
from dstrail.errors import DstrailError, InvalidInput, NotFound
from dstrail.services.forensics import Follower, follower_for
from dstrail.services.trail_reads import TrailReader
from dstrail.web.audit_views import trail_reader
from dstrail.web.deps import SignedIn
from dstrail.web.pages import page

T = TypeVar("T")

MAX_TEXT: Final = 1000
"""A field longer than this is shown cut (it is refused anyway)."""
MAX_BACK: Final = 200
"""Pages the "newer"/"older" links remember (beyond: back to the first page)."""

ACCEPTED_TIME: Final = (
    "a UTC time such as 2026-06-01 12:00 or 2026-06-01T12:00:00Z, a date alone (2026-06-01), "
    "a time with its offset (2026-06-01T12:00+02:00) or epoch milliseconds"
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")

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


class FieldErrors(Exception):
    """Fields the page cannot take as given, each with what is wrong and what is accepted."""

    def __init__(self, errors: Mapping[str, str], *, status_code: int = 400) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = dict(errors)
        self.status_code = status_code


def wrong(name: str, message: str, *, status_code: int = 400) -> FieldErrors:
    """One field's error (``""``: about the whole form)."""
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


def read_form(request: Request, names: Sequence[str]) -> Form:
    """The fields ``names`` of the request's query, each with its error if its text is not
    accepted (control characters and the like)."""
    params = request.query_params
    values = {name: params.get(name, "").strip()[:MAX_TEXT] for name in names}
    form = Form(values=values)
    for name in names:
        problem = text_problem(params.get(name, ""))
        if problem:
            form.errors[name] = f"{name}: {problem}; accepted: {ACCEPTED_TEXT}"
    return form


# -- who may read ---------------------------------------------------------------------------------


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


def guarded(
    request: Request,
    dstrail: Dstrail,
    signed_in: SignedIn,
    render: Callable[[TrailReader], Response],
) -> Response:
    """``render`` for a reader of the trail; the 403 page for anyone else (recorded), and any
    error ``render`` raises as a page that keeps the navigation."""
    try:
        reader = trail_reader(request, dstrail, signed_in)
        return render(reader)
    except DstrailError as error:  # refused, not found, unavailable: a page with the navigation
        return _error_page(request, dstrail, signed_in, error)


def forensics_follower(dstrail: Dstrail) -> Follower:
    """The follower the answers catch up with first, as the settings pace it."""
    return follower_for(dstrail.store, settings=dstrail.settings, clock=dstrail.clock)


def render_page(
    request: Request,
    dstrail: Dstrail,
    signed_in: SignedIn,
    template: str,
    context: dict[str, Any],
    status_code: int = 200,
) -> Response:
    """A forensics page with the grant and category labels its templates use."""
    return page(
        request, dstrail, template,
        {"via_labels": VIA_LABELS, "category_labels": CATEGORY_LABELS, **context},
        user=signed_in.user, session=signed_in.session, status_code=status_code,
    )  # fmt: skip


# -- parsing what was typed -----------------------------------------------------------------------


def instant(form: Form, name: str, label: str, *, end: bool = False) -> int | None:
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
        raise wrong(name, f"{label}: cannot read {text!r}; accepted: {ACCEPTED_TIME}") from None


def count_field(form: Form, name: str, label: str, *, low: int, high: int, default: int) -> int:
    """A whole number from ``low`` to ``high`` (``default`` when not given)."""
    text = form.get(name)
    if not text:
        return default
    if not text.isdigit() or len(text) > 19 or not low <= int(text) <= high:
        raise wrong(name, f"{label}: {text!r} is not accepted; accepted: {low} to {high}")
    return int(text)


def subject_candidates(form: Form, subjects: Mapping[str, Subject]) -> tuple[Subject, list[str]]:
    """The form's subject and the query subjects to try, by id first when it looks like one."""
    of = form.get("of")
    if of not in subjects:
        accepted = ", ".join(subjects)
        raise wrong("of", f"Of: {of!r} is not accepted; accepted: {accepted}")
    subject = subjects[of]
    value = form.get("subject")
    if not value:
        raise wrong("subject", f"{subject.label}: required; accepted: {subject.accepted}")
    if len(value) > MAX_NAME:
        raise wrong(
            "subject",
            f"{subject.label}: at most {MAX_NAME} characters; accepted: {subject.accepted}",
        )
    if is_object_id(value):
        return subject, [subject.by_id] + ([subject.by_name] if subject.by_name else [])
    if subject.by_name is None:
        raise wrong(
            "subject", f"{subject.label}: {value!r} is not accepted; accepted: {subject.accepted}"
        )
    return subject, [subject.by_name]


def not_found(subject: Subject, error: NotFound) -> FieldErrors:
    """A service's ``NotFound`` (named as the API names its parameter) for the form's field."""
    _label, _sep, what = error.message.partition(": ")
    return wrong(
        "subject",
        f"{subject.label}: {what or error.message}; accepted: {subject.accepted}",
        status_code=404,
    )


def submitted(request: Request) -> bool:
    """Whether the form was sent (its subject field is in the URL, even empty)."""
    return "subject" in request.query_params


def back_list(form: Form, name: str) -> list[str]:
    """The positions of the earlier pages (comma separated, oldest first)."""
    text = form.get(name)
    if not text:
        return []
    parts = text.split(",")
    return parts[-MAX_BACK:]


def collect(errors: dict[str, str], parse: Callable[[], T]) -> T | None:
    """``parse()``, or None with its field errors noted in ``errors``."""
    try:
        return parse()
    except FieldErrors as error:
        errors.update(error.errors)
        return None
