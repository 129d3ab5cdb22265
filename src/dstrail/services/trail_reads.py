"""Reads of the trail, recorded in the trail (PCI DSS 10.2.1, NIST AU-9).

Every read that hands out events' contents is recorded as ``AuditTrailRead``: who read (the
event's ``performedBy``), through which surface (``surface``; the HTTP ``path`` or the CLI
``command``; the file ``format``), what was asked (``filter``: compact JSON, named as the
audit API names its parameters, the window resolved), how many events it returned (``rows``)
and whether it ran to its end (``complete``). A read refused for the caller's role (403) is
recorded too, with ``rows`` 0 and ``refused``. A read that fails validation (400) or finds
nothing to prove (404) read nothing and records nothing.

A read is recorded once its rows are known, in a short write transaction of its own (shared
with concurrent small writes through the store's group commit), never one held open across the
read. It fails closed: a read that cannot be recorded answers ``Unavailable`` (503) and
returns nothing. A streamed read (``StreamedRead``) is recorded when its last event has been
written out, before the closing bytes of its output, so a failure to record it leaves the
output visibly incomplete; one that stops part-way (the client went away, reading or writing
failed) is recorded with the rows written out and ``complete`` false.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import orjson

from dstrail.audit.query import API_LABELS
from dstrail.audit.recorder import record_platform_event
from dstrail.domain.audit_filter import AuditFilter, Cursor
from dstrail.domain.timestamps import Clock, format_ms
from dstrail.domain.trail import EventKind, EventRow
from dstrail.domain.users import OPERATOR, User
from dstrail.errors import Unavailable
from dstrail.store import Repositories, Store

logger = logging.getLogger("dstrail.audit.reads")


class Surface:
    """The ``surface`` of a read: where it came in."""

    API = "api"
    """``GET /api/datasource/v1/audit``."""
    EXPORT = "export"
    """The audit API's CSV and JSON-lines export."""
    DOWNLOAD = "download"
    """Domino's six-month file and the download of runs' events."""
    PROOF = "proof"
    """Proofs that carry their event: inclusion proofs and tlog-proofs."""
    TLOG = "tlog"
    """Entry bundles of the transparency log (hash tiles and checkpoints hold no event)."""
    CONSOLE = "console"
    """The web console's trail pages and files."""
    CLI = "cli"
    """``dstrail audit query``, ``export`` and ``proof``."""
    FORENSICS = "forensics"
    """The forensics routes: entitlements, timelines and findings."""


MAX_FILTER_CHARS: Final = 8_192
"""A longer ``filter`` (hundreds of names) is shortened: the event must stay small enough
for a transparency log entry (65,535 bytes)."""
_SHORT_ITEMS: Final = 10
_SHORT_CHARS: Final = 100


def filter_document(
    audit_filter: AuditFilter, *, limit: int | None = None, cursor: Cursor | None = None
) -> dict[str, object]:
    """What a filtered read asked for, as the audit API names it: the window (resolved), the
    lists that narrow it (no ``eventKinds``: Domino's seven), and ``limit`` and ``cursor``
    when given."""
    asked: dict[str, object] = {
        "startTime": format_ms(audit_filter.start_ms),
        "endTime": format_ms(audit_filter.end_ms),
    }
    lists: dict[str, Sequence[str]] = {
        "data_source_names": audit_filter.data_source_names,
        "data_source_ids": audit_filter.data_source_ids,
        "event_kinds": [kind.value for kind in audit_filter.event_kinds],
        "performed_by": audit_filter.performed_by,
        "project_ids": audit_filter.project_ids,
        "run_ids": audit_filter.run_ids,
    }
    asked.update({API_LABELS[name]: list(values) for name, values in lists.items() if values})
    if audit_filter.object_keys:  # the console's key: word (the audit API has no such list)
        asked["objectKeys"] = list(audit_filter.object_keys)
    if limit is not None:
        asked["limit"] = limit
    if cursor is not None:
        asked["cursor"] = cursor.encode()
    return asked


def filter_text(asked: Mapping[str, object]) -> str:
    """``asked`` as compact JSON. Past ``MAX_FILTER_CHARS`` it keeps the first keys and the
    first values of each list, each value cut short, and says how much it left out
    (``omitted``: values per list, ``omittedKeys``)."""
    text = orjson.dumps(asked).decode()
    if len(text) <= MAX_FILTER_CHARS:
        return text
    shortened: dict[str, object] = {}
    omitted: dict[str, int] = {}
    for key, value in list(asked.items())[:_SHORT_ITEMS]:
        key = key[:_SHORT_CHARS]
        if isinstance(value, list | tuple):
            shortened[key] = [_short(item) for item in value[:_SHORT_ITEMS]]
            if len(value) > _SHORT_ITEMS:
                omitted[key] = len(value) - _SHORT_ITEMS
        else:
            shortened[key] = _short(value)
    shortened["omitted"] = omitted
    if len(asked) > _SHORT_ITEMS:
        shortened["omittedKeys"] = len(asked) - _SHORT_ITEMS
    return orjson.dumps(shortened).decode()


def _short(value: object) -> object:
    return value[:_SHORT_CHARS] if isinstance(value, str) else value


def record_trail_read(
    tx: Repositories,
    *,
    actor: User,
    surface: str,
    origin: Mapping[str, str],
    asked: Mapping[str, object],
    rows: int,
    now_ms: int,
    complete: bool = True,
    detail: Mapping[str, str] | None = None,
) -> None:
    """Record a read (``AuditTrailRead``) in the transaction of ``tx``; ``origin``: the
    ``path`` or ``command`` it came by, ``detail``: more of what was read (``format``)."""
    record_platform_event(
        tx, kind=EventKind.TRAIL_READ, actor=actor, now_ms=now_ms,
        metadata={
            "surface": surface, **origin, "filter": filter_text(asked), "rows": str(rows),
            "complete": "true" if complete else "false", **(detail or {}),
        },
    )  # fmt: skip


def record_refused_read(
    tx: Repositories,
    *,
    actor: User,
    surface: str,
    origin: Mapping[str, str],
    asked: Mapping[str, object],
    now_ms: int,
) -> None:
    """Record a read refused for the actor's role: ``rows`` 0, ``refused`` true."""
    record_platform_event(
        tx, kind=EventKind.TRAIL_READ, actor=actor, now_ms=now_ms,
        metadata={
            "surface": surface, **origin, "filter": filter_text(asked), "rows": "0",
            "refused": "true",
        },
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class TrailReader:
    """Someone reading the trail through one surface: records each read they make, in a
    write transaction of its own."""

    store: Store
    clock: Clock
    actor: User
    surface: str
    origin: Mapping[str, str] = field(default_factory=dict)
    """``{"path": ...}`` for HTTP, ``{"command": ...}`` for the CLI."""

    def record(
        self,
        asked: Mapping[str, object],
        *,
        rows: int,
        complete: bool = True,
        detail: Mapping[str, str] | None = None,
    ) -> None:
        """Record a read of ``rows`` events; ``Unavailable`` (nothing may be returned) when
        it cannot be recorded."""
        self._write(
            lambda tx: record_trail_read(
                tx, actor=self.actor, surface=self.surface, origin=self.origin, asked=asked,
                rows=rows, now_ms=self.clock(), complete=complete, detail=detail,
            )
        )  # fmt: skip

    def refused(self, asked: Mapping[str, object]) -> None:
        """Record a refused read; a failure to record it is only logged (the refusal stands)."""
        with contextlib.suppress(Unavailable):
            self._write(
                lambda tx: record_refused_read(
                    tx, actor=self.actor, surface=self.surface, origin=self.origin,
                    asked=asked, now_ms=self.clock(),
                )
            )  # fmt: skip

    def streamed(
        self, asked: Mapping[str, object], *, detail: Mapping[str, str] | None = None
    ) -> StreamedRead:
        """A read whose events are written out as they are read."""
        return StreamedRead(self, asked, detail or {})

    def _write(self, work: Callable[[Repositories], None]) -> None:
        # Grouped with concurrent small writes (other reads, access decisions): one commit for
        # all, each durable before it returns.
        try:
            self.store.write_grouped(work)
        except Exception as error:
            logger.error(
                "a read of the trail by %s (%s %s) could not be recorded",
                self.actor.username, self.surface, " ".join(self.origin.values()),
                exc_info=True,
            )  # fmt: skip
            raise Unavailable(
                "the read could not be recorded in the audit trail, so nothing is returned; "
                "try again later"
            ) from error


def operator_reader(store: Store, clock: Clock, command: str) -> TrailReader:
    """The operator reading the trail with a CLI ``command`` (``audit query``)."""
    return TrailReader(
        store=store, clock=clock, actor=OPERATOR, surface=Surface.CLI, origin={"command": command}
    )


class StreamedRead:
    """A read whose events are written out chunk by chunk (files, large answers, the CLI):
    counts them and records the read once.

    The serialisers (``dstrail.audit.serialize``) write a chunk out before they ask for the
    next, so when ``rows`` is asked for a chunk the previous one has been written. After the
    last one the read is recorded, complete, before the serialiser writes its closing bytes; a
    failure to record it raises there and cuts the output short. ``cut`` records a read that
    stopped early, with the rows written out."""

    def __init__(
        self, reader: TrailReader, asked: Mapping[str, object], detail: Mapping[str, str]
    ) -> None:
        self._reader = reader
        self._asked = asked
        self._detail = detail
        self._sent = 0
        self._pending = 0
        self._recorded = False

    def rows(self, chunks: Iterable[list[EventRow]]) -> Iterator[list[EventRow]]:
        """``chunks``, counted; the read is recorded once the last one has been written."""
        for chunk in chunks:
            self._sent += self._pending
            self._pending = len(chunk)
            yield chunk
        self._sent += self._pending
        self._pending = 0
        self._record(complete=True)

    @property
    def recorded(self) -> bool:
        """Whether the read has been recorded."""
        return self._recorded

    def cut(self) -> None:
        """Record the read as stopped early, with the rows written out; nothing when it was
        recorded already. A failure to record it is logged: the read is over."""
        if self._recorded:
            return
        with contextlib.suppress(Unavailable):
            self._record(complete=False)

    def _record(self, *, complete: bool) -> None:
        self._reader.record(self._asked, rows=self._sent, complete=complete, detail=self._detail)
        self._recorded = True
