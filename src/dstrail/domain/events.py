"""Audit event kinds and the event record itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class EventKind(StrEnum):
    """Domino's seven kinds, then dstrail's extensions (returned only when asked for)."""

    CREATE_DATA_SOURCE = "CreateDataSource"
    DELETE_DATA_SOURCE = "DeleteDataSource"
    CHANGE_OF_PERMISSIONS = "DataSourceChangeOfPermissions"
    CHANGE_OF_OWNERSHIP = "DataSourceChangeOfOwnership"
    ACCESS_DATA_SOURCE = "AccessDataSource"
    ASSOCIATED_TO_PROJECT = "DataSourceAssociatedToProject"
    DISSOCIATED_FROM_PROJECT = "DataSourceDissociatedFromProject"
    # Extensions: never returned by the audit API unless ``eventKinds`` names them.
    UPDATE_DATA_SOURCE = "UpdateDataSource"
    UPDATE_CREDENTIALS = "DataSourceCredentialsUpdated"
    ACCESS_REFUSED = "AccessDataSourceRefused"


DOMINO_KINDS: frozenset[EventKind] = frozenset(list(EventKind)[:7])
EXTENSION_KINDS: frozenset[EventKind] = frozenset(EventKind) - DOMINO_KINDS


def parse_event_kind(value: str) -> EventKind:
    """The kind named ``value``; ``ValueError`` naming the accepted ones otherwise."""
    try:
        return EventKind(value)
    except ValueError:
        accepted = ", ".join(kind.value for kind in EventKind)
        raise ValueError(f"unknown event kind {value!r}; accepted: {accepted}") from None


@dataclass(frozen=True, slots=True)
class NewAuditEvent:
    """An event about to be appended; the store gives it its sequence number."""

    event_kind: EventKind
    data_source_id: str
    data_source_name: str
    data_source_type: str
    performed_by: str
    performed_by_username: str
    timestamp_ms: int
    metadata: dict[str, str] = field(default_factory=dict)
    run_id: str | None = None
    project_id: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """An event as stored: the seven API fields plus the sequence number."""

    sequence: int
    event_kind: str
    data_source_id: str
    data_source_name: str
    data_source_type: str
    performed_by: str
    timestamp_ms: int
    metadata_json: str
