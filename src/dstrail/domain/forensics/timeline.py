"""Timelines: what a user, a run or a data source did, and what was done to them, in sequence
order. Pure: the entries are made from events the store read and the grants it found.

A user's timeline holds the events they performed (accesses with what was touched, refused
attempts, the changes they made) and the events that opened or closed a grant naming them
(as owner or listed user), interleaved by seq; a run's, the events recorded from it; a data
source's, every event about it. Each entry says what kind of step it is (``Category``), what
an access touched (object key, prefix, query digest) and which grants the event opened or
closed for the subject.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from dstrail.domain.forensics.entitlements import GRANTING_KINDS, Grant, Via
from dstrail.domain.forensics.events import FINDING_KIND_PREFIX, TrailEvent
from dstrail.domain.trail import PLATFORM_KINDS, EventKind


class Category(StrEnum):
    """What kind of step an entry is."""

    ACCESS = "access"
    REFUSED = "refused"
    GRANT_CHANGE = "grantChange"
    """Creation, deletion, permissions, ownership, projects: the changes that move grants."""
    CHANGE = "change"
    """Another change to a data source: its config or credentials."""
    PLATFORM = "platform"
    """Users, keys, projects, runs, streams, retention, reads of the trail."""
    FINDING = "finding"


class SubjectKind(StrEnum):
    """Whose timeline."""

    USER = "user"
    RUN = "run"
    DATA_SOURCE = "dataSource"


TOUCHED_KEYS: Final = ("operation", "objectKey", "isReadWrite", "prefix", "queryDigest")
"""The metadata that says what an access (or a refused one) reached for."""
_REFUSED_KINDS: Final = frozenset({EventKind.ACCESS_REFUSED.value, EventKind.CHANGE_REFUSED.value})
_PLATFORM: Final = frozenset(kind.value for kind in PLATFORM_KINDS)


def category_of(event_kind: str) -> Category:
    """The category of an event of ``event_kind``."""
    if event_kind == EventKind.ACCESS_DATA_SOURCE:
        return Category.ACCESS
    if event_kind in _REFUSED_KINDS:
        return Category.REFUSED
    if event_kind in GRANTING_KINDS:
        return Category.GRANT_CHANGE
    if event_kind.startswith(FINDING_KIND_PREFIX):
        return Category.FINDING
    if event_kind in _PLATFORM:
        return Category.PLATFORM
    return Category.CHANGE


def touched_of(event: TrailEvent) -> dict[str, str]:
    """What an access or a refused access reached for (``TOUCHED_KEYS`` it has)."""
    if event.event_kind not in (EventKind.ACCESS_DATA_SOURCE, EventKind.ACCESS_REFUSED):
        return {}
    metadata = event.metadata
    return {key: metadata[key] for key in TOUCHED_KEYS if key in metadata}


@dataclass(frozen=True, slots=True)
class GrantNote:
    """A grant an event opened (``granted``) or closed (``revoked``)."""

    change: str
    via: Via
    data_source_id: str
    data_source_name: str
    subject_id: str


def grant_notes(seq: int, grants: Iterable[Grant]) -> tuple[GrantNote, ...]:
    """The grants among ``grants`` that event ``seq`` opened or closed."""
    notes: list[GrantNote] = []
    for grant in grants:
        for change, ref in (("granted", grant.granted), ("revoked", grant.revoked)):
            if ref is not None and ref.seq == seq:
                notes.append(
                    GrantNote(
                        change=change,
                        via=grant.via,
                        data_source_id=grant.data_source_id,
                        data_source_name=grant.data_source_name,
                        subject_id=grant.subject_id,
                    )
                )
    return tuple(sorted(notes, key=lambda n: (n.change, n.via.value, n.subject_id)))


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One step of a timeline."""

    event: TrailEvent
    category: Category
    touched: dict[str, str]
    grants: tuple[GrantNote, ...] = field(default=())
    """The grants this event opened or closed for the subject (a user's own, a data source's)."""

    @property
    def reason(self) -> str:
        """Why a refused attempt was refused ('' for other entries)."""
        if self.category is not Category.REFUSED:
            return ""
        return self.event.metadata.get("reason", "")


def entries_of(events: Iterable[TrailEvent], grants: Sequence[Grant]) -> list[TimelineEntry]:
    """The entries of ``events`` (in seq order), each with the grants of ``grants`` it moved."""
    return [
        TimelineEntry(
            event=event,
            category=category_of(event.event_kind),
            touched=touched_of(event),
            grants=grant_notes(event.seq, grants),
        )
        for event in sorted(events, key=lambda e: e.seq)
    ]


def first_seqs(sources: Iterable[Iterable[int]], *, count: int) -> list[int]:
    """The ``count`` smallest distinct seqs of all ``sources`` together, ascending: when each
    source gave its ``count`` smallest, these are the first ``count`` of their union."""
    return sorted({seq for source in sources for seq in source})[:count]


@dataclass(frozen=True, slots=True)
class TimelineSubject:
    """Whose timeline: a user, a run or a data source, by id, with its name when known."""

    kind: SubjectKind
    id: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class TimelinePage:
    """One page of a timeline: the entries after seq ``after`` up to ``through`` (the window,
    in seqs), at most a page, and the ``after`` of the next page (None: no more)."""

    subject: TimelineSubject
    after: int
    through: int
    entries: list[TimelineEntry]
    next_after: int | None
