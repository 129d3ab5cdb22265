"""A trail event as forensics reads it: every stored field, the metadata parsed when asked."""

from __future__ import annotations

from typing import Any, Final

import orjson

FINDING_KIND_PREFIX: Final = "ForensicFinding"
"""The kinds the detection rules record (``ForensicFindingRaised``, ...): the follower hands
them to no rule, so a finding never feeds the rules that raised it."""

EVENT_FIELDS: Final = (
    "seq",
    "ts_ms",
    "event_kind",
    "data_source_id",
    "data_source_name",
    "data_source_type",
    "performed_by",
    "performed_by_username",
    "run_id",
    "project_id",
    "metadata",
)
"""The ``audit_events`` columns a ``TrailEvent`` is made of, in the order of its constructor."""


class TrailEvent:
    """One event of the trail, in sequence order: its columns, and ``metadata`` (the string
    map) parsed from its stored JSON the first time it is read."""

    __slots__ = (
        "_metadata",
        "data_source_id",
        "data_source_name",
        "data_source_type",
        "event_kind",
        "metadata_json",
        "performed_by",
        "performed_by_username",
        "project_id",
        "run_id",
        "seq",
        "ts_ms",
    )

    def __init__(
        self,
        seq: int,
        ts_ms: int,
        event_kind: str,
        data_source_id: str,
        data_source_name: str,
        data_source_type: str,
        performed_by: str,
        performed_by_username: str,
        run_id: str | None,
        project_id: str | None,
        metadata: str,
    ) -> None:
        self.seq = int(seq)
        self.ts_ms = int(ts_ms)
        self.event_kind = event_kind
        self.data_source_id = data_source_id
        self.data_source_name = data_source_name
        self.data_source_type = data_source_type
        self.performed_by = performed_by
        self.performed_by_username = performed_by_username
        self.run_id = run_id
        self.project_id = project_id
        self.metadata_json = metadata
        self._metadata: dict[str, str] | None = None

    @classmethod
    def of_row(cls, row: Any) -> TrailEvent:
        """From a row of ``EVENT_FIELDS``, in that order."""
        return cls(*row)

    @property
    def metadata(self) -> dict[str, str]:
        """The metadata string map (``performedByUsername`` first)."""
        if self._metadata is None:
            parsed = orjson.loads(self.metadata_json) if self.metadata_json else {}
            self._metadata = {str(k): str(v) for k, v in parsed.items()}
        return self._metadata

    @property
    def is_finding(self) -> bool:
        """Whether a detection rule recorded it (``ForensicFinding*``)."""
        return self.event_kind.startswith(FINDING_KIND_PREFIX)

    def __repr__(self) -> str:
        return f"TrailEvent(seq={self.seq}, {self.event_kind}, ds={self.data_source_id!r})"


def split_ids(value: str | None) -> tuple[str, ...]:
    """The ids of a comma-separated metadata value, each once, in order ('' or None: none)."""
    if not value:
        return ()
    return tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
