"""The questions forensics answers, parsed once from what the caller gave (the API's query
parameters or the CLI's options): errors name the parameter as the caller spelled it
(``labels``) and say what is accepted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from dstrail.domain.ids import is_object_id
from dstrail.domain.timestamps import format_ms, parse_iso
from dstrail.domain.trail import MAX_SEQ
from dstrail.errors import InvalidInput

ACCEPTED_INSTANT: Final = (
    "ISO-8601 with Z or an offset (e.g. 2026-06-01T12:00:00Z) or epoch milliseconds"
)
DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000
MAX_NAME: Final = 128

ENTITLEMENT_SUBJECTS: Final = ("data_source_id", "data_source_name", "user_id", "username")
TIMELINE_SUBJECTS: Final = ("user_id", "username", "run_id", "data_source_id", "data_source_name")

API_LABELS: Final = {
    "data_source_id": "dataSourceId",
    "data_source_name": "dataSourceName",
    "user_id": "userId",
    "username": "username",
    "run_id": "runId",
    "at": "at",
    "at_seq": "atSeq",
    "from_time": "from",
    "to_time": "to",
    "limit": "limit",
    "after": "after",
}
"""How the API names each field."""


def parse_instant(value: str, *, field: str) -> int:
    """Epoch milliseconds of an ISO-8601 time or of a whole number of epoch milliseconds."""
    text = value.strip()
    if text.isdigit() and len(text) <= 15:
        return int(text)
    try:
        return parse_iso(text, field=field)
    except InvalidInput:
        raise InvalidInput(
            f"{field}: cannot parse {value!r}; accepted: {ACCEPTED_INSTANT}"
        ) from None


def parse_count(value: str, *, field: str, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high``."""
    text = value.strip()
    if not text.isdigit() or len(text) > 19 or not low <= int(text) <= high:
        raise InvalidInput(f"{field}: {value!r} is not accepted; accepted: {low} to {high}")
    return int(text)


def _id(value: str, *, field: str) -> str:
    if not is_object_id(value):
        raise InvalidInput(f"{field}: {value!r} is not an id (24 lowercase hex characters)")
    return value


def _name(value: str, *, field: str) -> str:
    if not value.strip() or len(value) > MAX_NAME:
        raise InvalidInput(f"{field}: accepted: a name of 1 to {MAX_NAME} characters")
    return value


def _one_subject(
    values: Mapping[str, str | None], names: tuple[str, ...], labels: Mapping[str, str]
) -> tuple[str, str]:
    given = [(name, values[name]) for name in names if values.get(name) is not None]
    if len(given) != 1:
        accepted = ", ".join(labels[name] for name in names)
        raise InvalidInput(f"give exactly one of {accepted}")
    name, value = given[0]
    assert value is not None
    if name in ("data_source_id", "user_id", "run_id"):
        return name, _id(value, field=labels[name])
    return name, _name(value, field=labels[name])


@dataclass(frozen=True, slots=True)
class EntitlementsQuery:
    """Who could reach a data source, or what a user could reach, at a moment (``at_ms`` or
    ``at_seq``; neither: now)."""

    subject: str
    """One of ``ENTITLEMENT_SUBJECTS``."""
    value: str
    at_ms: int | None = None
    at_seq: int | None = None

    @property
    def about_user(self) -> bool:
        """Whether it asks about a user (else a data source)."""
        return self.subject in ("user_id", "username")

    def asked(self) -> dict[str, object]:
        """The question, named as the API names its parameters (for the record of the read)."""
        document: dict[str, object] = {API_LABELS[self.subject]: self.value}
        if self.at_ms is not None:
            document["at"] = format_ms(self.at_ms)
        if self.at_seq is not None:
            document["atSeq"] = self.at_seq
        return document


def entitlements_query(
    values: Mapping[str, str | None], *, labels: Mapping[str, str] = API_LABELS
) -> EntitlementsQuery:
    """The question in ``values`` (field name to the text given, None: not given)."""
    subject, value = _one_subject(values, ENTITLEMENT_SUBJECTS, labels)
    at, at_seq = values.get("at"), values.get("at_seq")
    if at is not None and at_seq is not None:
        raise InvalidInput(f"give {labels['at']} or {labels['at_seq']}, not both")
    return EntitlementsQuery(
        subject=subject,
        value=value,
        at_ms=parse_instant(at, field=labels["at"]) if at is not None else None,
        at_seq=(
            parse_count(at_seq, field=labels["at_seq"], low=0, high=MAX_SEQ)
            if at_seq is not None
            else None
        ),
    )


@dataclass(frozen=True, slots=True)
class TimelineQuery:
    """A page of the timeline of a user, a run or a data source, in a window (``from_ms`` to
    ``to_ms``, None: open), after seq ``after``."""

    subject: str
    """One of ``TIMELINE_SUBJECTS``."""
    value: str
    from_ms: int | None = None
    to_ms: int | None = None
    limit: int = DEFAULT_LIMIT
    after: int = 0

    def asked(self) -> dict[str, object]:
        """The question, named as the API names its parameters (for the record of the read)."""
        document: dict[str, object] = {API_LABELS[self.subject]: self.value}
        if self.from_ms is not None:
            document["from"] = format_ms(self.from_ms)
        if self.to_ms is not None:
            document["to"] = format_ms(self.to_ms)
        document["limit"] = self.limit
        if self.after:
            document["after"] = self.after
        return document


def timeline_query(
    values: Mapping[str, str | None], *, labels: Mapping[str, str] = API_LABELS
) -> TimelineQuery:
    """The question in ``values`` (field name to the text given, None: not given)."""
    subject, value = _one_subject(values, TIMELINE_SUBJECTS, labels)
    start, end = values.get("from_time"), values.get("to_time")
    from_ms = parse_instant(start, field=labels["from_time"]) if start is not None else None
    to_ms = parse_instant(end, field=labels["to_time"]) if end is not None else None
    if from_ms is not None and to_ms is not None and from_ms > to_ms:
        raise InvalidInput(f"{labels['from_time']} must not be after {labels['to_time']}")
    limit, after = values.get("limit"), values.get("after")
    return TimelineQuery(
        subject=subject,
        value=value,
        from_ms=from_ms,
        to_ms=to_ms,
        limit=(
            parse_count(limit, field=labels["limit"], low=1, high=MAX_LIMIT)
            if limit is not None
            else DEFAULT_LIMIT
        ),
        after=(
            parse_count(after, field=labels["after"], low=0, high=MAX_SEQ)
            if after is not None
            else 0
        ),
    )
