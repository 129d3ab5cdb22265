"""The kinds of trail events: Domino's seven, then dstrail's extensions."""

from __future__ import annotations

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
    CHANGE_REFUSED = "DataSourceChangeRefused"


DOMINO_KINDS: frozenset[EventKind] = frozenset(list(EventKind)[:7])
EXTENSION_KINDS: frozenset[EventKind] = frozenset(EventKind) - DOMINO_KINDS


def parse_event_kind(value: str) -> EventKind:
    """The kind named ``value``; ``ValueError`` naming the accepted ones otherwise."""
    try:
        return EventKind(value)
    except ValueError:
        accepted = ", ".join(kind.value for kind in EventKind)
        raise ValueError(f"unknown event kind {value!r}; accepted: {accepted}") from None
