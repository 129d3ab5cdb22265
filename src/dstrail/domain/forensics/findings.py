"""Findings of the detection rules: what a rule found, its stable id, and how they are listed.

A finding is derived from the trail alone: the same trail and thresholds give the same
findings, with the same ids (``finding_id``: a hash of the rule, what it is about and the seq
of the event that made it fire), so a rebuild finds them again and their acknowledgements,
kept apart (``Acknowledgement``), still apply.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from dstrail.domain.forensics.queries import parse_count, parse_instant
from dstrail.domain.ids import is_object_id
from dstrail.domain.text import check_text
from dstrail.domain.timestamps import format_ms
from dstrail.errors import InvalidInput


class Rule(StrEnum):
    """The detection rules (``docs/forensics.md``, "Detection rules")."""

    FIRST_ACCESS = "firstAccess"
    ACCESS_AFTER_REVOCATION = "accessAfterRevocation"
    ACCESS_WITHOUT_GRANT = "accessWithoutGrant"
    VOLUME_SPIKE = "volumeSpike"
    REFUSED_BURST = "refusedBurst"
    EVERYONE_SHARE = "everyoneShare"
    TRANSFER_THEN_DELETE = "transferThenDelete"
    UNUSUAL_HOUR = "unusualHour"
    NEW_RUN_TYPE = "newRunType"


class Severity(StrEnum):
    """How urgent a finding is."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


SEVERITY_OF: Final[Mapping[Rule, Severity]] = {
    Rule.FIRST_ACCESS: Severity.LOW,
    Rule.ACCESS_AFTER_REVOCATION: Severity.MEDIUM,
    Rule.ACCESS_WITHOUT_GRANT: Severity.HIGH,
    Rule.VOLUME_SPIKE: Severity.MEDIUM,
    Rule.REFUSED_BURST: Severity.MEDIUM,
    Rule.EVERYONE_SHARE: Severity.MEDIUM,
    Rule.TRANSFER_THEN_DELETE: Severity.HIGH,
    Rule.UNUSUAL_HOUR: Severity.LOW,
    Rule.NEW_RUN_TYPE: Severity.LOW,
}
"""Each rule's severity."""

MAX_LINKED: Final = 50
"""At most this many event seqs are linked to one finding (the first ones and the last)."""


def finding_id(rule: Rule, scope: str, seq: int) -> str:
    """The stable id of a finding (24 hex): the rule, what it is about (``scope``: "" or,
    for a rule that watches several things, which) and the seq of the event that fired it."""
    return hashlib.sha256(f"{rule.value}|{scope}|{seq}".encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class Finding:
    """What a rule found, linked to the events it found it in."""

    id: str
    rule: Rule
    severity: Severity
    summary: str
    """One line in words."""
    user_id: str
    """The user it is about ("" when none)."""
    username: str
    data_source_id: str
    data_source_name: str
    run_id: str
    seqs: tuple[int, ...]
    """The linked events, oldest first (at most ``MAX_LINKED``)."""
    ts_ms: int
    """When it happened: the time of the event that fired the rule."""
    details: dict[str, object] = field(default_factory=dict)
    """The rule's own figures (JSON values)."""

    @property
    def first_seq(self) -> int:
        """The first linked event."""
        return self.seqs[0]

    @property
    def last_seq(self) -> int:
        """The event that fired the rule."""
        return self.seqs[-1]


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """Who acknowledged a finding, when, with which note, recorded as event ``seq``."""

    by: str
    by_username: str
    at_ms: int
    note: str
    seq: int


@dataclass(frozen=True, slots=True)
class FindingView:
    """A finding with what the trail holds of it: the seq of its ``ForensicFindingRaised``
    event (None when it was found by a rebuild, which records nothing) and its
    acknowledgement."""

    finding: Finding
    raised_seq: int | None
    acknowledgement: Acknowledgement | None


@dataclass(frozen=True, slots=True)
class FindingCursor:
    """A keyset position in the newest-first list (by the seq of the event that fired each,
    then id): findings strictly before (seq, id)."""

    seq: int
    id: str

    def encode(self) -> str:
        """The ``cursor`` of the next page."""
        return f"{self.seq}.{self.id}"

    @classmethod
    def decode(cls, text: str, *, field: str = "cursor") -> FindingCursor:
        """A cursor from ``encode``; ``InvalidInput`` for anything else."""
        seq, _, id_ = text.partition(".")
        if not seq.isdigit() or len(seq) > 19 or not is_object_id(id_):
            raise InvalidInput(
                f"{field}: {text[:100]!r} is not the cursor of a findings page (the `next` of one)"
            )
        return cls(seq=int(seq), id=id_)


MAX_PAGE: Final = 1000
DEFAULT_PAGE: Final = 100


@dataclass(frozen=True, slots=True)
class FindingFilter:
    """Which findings to list. Lists are OR-ed inside, fields AND-ed together."""

    rules: tuple[Rule, ...] = ()
    severities: tuple[Severity, ...] = ()
    user_ids: tuple[str, ...] = ()
    usernames: tuple[str, ...] = ()
    data_source_ids: tuple[str, ...] = ()
    data_source_names: tuple[str, ...] = ()
    """The name the data source had when the finding's event happened."""
    acknowledged: bool | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    limit: int = DEFAULT_PAGE
    cursor: FindingCursor | None = None

    def asked(self) -> dict[str, object]:
        """The filter as the API names its parameters (for the record of the read)."""
        asked: dict[str, object] = {}
        lists = {
            "rule": [r.value for r in self.rules],
            "severity": [s.value for s in self.severities],
            "userId": list(self.user_ids),
            "username": list(self.usernames),
            "dataSourceId": list(self.data_source_ids),
            "dataSourceName": list(self.data_source_names),
        }
        asked.update({key: values for key, values in lists.items() if values})
        if self.acknowledged is not None:
            asked["acknowledged"] = self.acknowledged
        if self.start_ms is not None:
            asked["from"] = format_ms(self.start_ms)
        if self.end_ms is not None:
            asked["to"] = format_ms(self.end_ms)
        asked["limit"] = self.limit
        if self.cursor is not None:
            asked["cursor"] = self.cursor.encode()
        return asked


def parse_rule(value: str, *, field: str = "rule") -> Rule:
    """The rule named ``value``; ``InvalidInput`` naming the accepted ones otherwise."""
    try:
        return Rule(value)
    except ValueError:
        accepted = ", ".join(rule.value for rule in Rule)
        raise InvalidInput(f"{field}: unknown rule {value[:100]!r}; accepted: {accepted}") from None


def parse_severity(value: str, *, field: str = "severity") -> Severity:
    """The severity named ``value``; ``InvalidInput`` naming the accepted ones otherwise."""
    try:
        return Severity(value)
    except ValueError:
        accepted = ", ".join(severity.value for severity in Severity)
        raise InvalidInput(
            f"{field}: unknown severity {value[:100]!r}; accepted: {accepted}"
        ) from None


MAX_NOTE: Final = 2000
"""Characters of an acknowledgement's note."""


def check_note(note: str) -> str:
    """An acknowledgement's note, stripped; ``InvalidInput`` when empty or too long."""
    check_text(note, field="note")
    text = note.strip()
    if not text:
        raise InvalidInput("note: required, a few words on what was done about the finding")
    if len(text) > MAX_NOTE:
        raise InvalidInput(f"note: at most {MAX_NOTE} characters, not {len(text)}")
    return text


FILTER_LABELS: Final = {
    "rules": "rule",
    "severities": "severity",
    "user_ids": "userId",
    "usernames": "username",
    "data_source_ids": "dataSourceId",
    "data_source_names": "dataSourceName",
    "acknowledged": "acknowledged",
    "from_time": "from",
    "to_time": "to",
    "limit": "limit",
    "cursor": "cursor",
}
"""How the API names each field of a ``FindingFilter``."""
REPEATABLE: Final = (
    "rules", "severities", "user_ids", "usernames", "data_source_ids", "data_source_names"
)  # fmt: skip
"""Fields given as lists (the API repeats the parameter)."""
MAX_NAME: Final = 128


def _one(values: Mapping[str, Sequence[str]], name: str, label: str) -> str | None:
    given = values.get(name) or ()
    if len(given) > 1:
        raise InvalidInput(f"{label}: give it once, not {len(given)} times")
    return given[0] if given else None


def _ids(given: Sequence[str], label: str) -> tuple[str, ...]:
    for value in given:
        if not is_object_id(value):
            raise InvalidInput(
                f"{label}: {value[:100]!r} is not an id (24 lowercase hex characters)"
            )
    return tuple(given)


def _names(given: Sequence[str], label: str) -> tuple[str, ...]:
    for value in given:
        if not value.strip() or len(value) > MAX_NAME:
            raise InvalidInput(f"{label}: accepted: a name of 1 to {MAX_NAME} characters")
    return tuple(given)


def finding_filter(
    values: Mapping[str, Sequence[str]], *, labels: Mapping[str, str] = FILTER_LABELS
) -> FindingFilter:
    """The filter in ``values`` (field name to the texts given); errors name the parameter as
    ``labels`` spell it and say what is accepted."""
    acknowledged = _one(values, "acknowledged", labels["acknowledged"])
    if acknowledged is not None and acknowledged not in ("true", "false"):
        raise InvalidInput(
            f"{labels['acknowledged']}: {acknowledged[:100]!r}; accepted: true, false"
        )
    start, end = (_one(values, name, labels[name]) for name in ("from_time", "to_time"))
    start_ms = parse_instant(start, field=labels["from_time"]) if start is not None else None
    end_ms = parse_instant(end, field=labels["to_time"]) if end is not None else None
    if start_ms is not None and end_ms is not None and start_ms > end_ms:
        raise InvalidInput(f"{labels['from_time']} must not be after {labels['to_time']}")
    limit = _one(values, "limit", labels["limit"])
    cursor = _one(values, "cursor", labels["cursor"])
    return FindingFilter(
        rules=tuple(parse_rule(v, field=labels["rules"]) for v in values.get("rules") or ()),
        severities=tuple(
            parse_severity(v, field=labels["severities"]) for v in values.get("severities") or ()
        ),
        user_ids=_ids(values.get("user_ids") or (), labels["user_ids"]),
        usernames=_names(values.get("usernames") or (), labels["usernames"]),
        data_source_ids=_ids(values.get("data_source_ids") or (), labels["data_source_ids"]),
        data_source_names=_names(values.get("data_source_names") or (), labels["data_source_names"]),
        acknowledged=None if acknowledged is None else acknowledged == "true",
        start_ms=start_ms,
        end_ms=end_ms,
        limit=(
            DEFAULT_PAGE if limit is None
            else parse_count(limit, field=labels["limit"], low=1, high=MAX_PAGE)
        ),
        cursor=FindingCursor.decode(cursor, field=labels["cursor"]) if cursor is not None else None,
    )  # fmt: skip


def check_finding_id(value: str) -> str:
    """A finding's id (24 lowercase hex); ``NotFound``-worthy values are still ids, anything
    else is ``InvalidInput``."""
    if not is_object_id(value):
        raise InvalidInput(f"id: {value[:100]!r} is not a finding id (24 lowercase hex characters)")
    return value
