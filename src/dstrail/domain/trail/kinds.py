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
    # Platform changes: who may reach data sources (no data source fields of their own).
    USER_CREATED = "UserCreated"
    USER_ROLE_CHANGED = "UserRoleChanged"
    API_KEY_ISSUED = "ApiKeyIssued"
    API_KEY_REVOKED = "ApiKeyRevoked"
    PROJECT_CREATED = "ProjectCreated"
    COLLABORATOR_ADDED = "ProjectCollaboratorAdded"
    COLLABORATOR_REMOVED = "ProjectCollaboratorRemoved"
    RUN_STARTED = "RunStarted"
    RUN_STOPPED = "RunStopped"
    # Where the trail is streamed to: silencing a SIEM feed is a change worth seeing.
    STREAM_ADDED = "StreamDestinationAdded"
    STREAM_REMOVED = "StreamDestinationRemoved"
    STREAM_PAUSED = "StreamDestinationPaused"
    STREAM_RESUMED = "StreamDestinationResumed"
    STREAM_REPLAYED = "StreamDestinationReplayed"
    STREAM_SECRET_ROTATED = "StreamDestinationSecretRotated"  # noqa: S105 - a kind, no secret
    # Who cosigns the trail's checkpoints (C2SP witnesses): dropping one weakens the proof.
    WITNESS_ADDED = "WitnessAdded"
    WITNESS_REMOVED = "WitnessRemoved"
    # Retention: how long the trail is kept, and each purge of its oldest events.
    RETENTION_SET = "AuditRetentionPolicySet"
    RETENTION_REFUSED = "AuditRetentionChangeRefused"
    TRAIL_PURGED = "AuditTrailPurged"
    # Reads of the trail itself (PCI DSS 10.2.1, NIST AU-9): who read which filter, how many rows.
    TRAIL_READ = "AuditTrailRead"
    # Forensics: a detection rule's finding, and its acknowledgement (who, with what note).
    FINDING_RAISED = "ForensicFindingRaised"
    FINDING_ACKNOWLEDGED = "ForensicFindingAcknowledged"


DOMINO_KINDS: frozenset[EventKind] = frozenset(list(EventKind)[:7])
EXTENSION_KINDS: frozenset[EventKind] = frozenset(EventKind) - DOMINO_KINDS
PLATFORM_KINDS: frozenset[EventKind] = frozenset(
    {
        EventKind.USER_CREATED,
        EventKind.USER_ROLE_CHANGED,
        EventKind.API_KEY_ISSUED,
        EventKind.API_KEY_REVOKED,
        EventKind.PROJECT_CREATED,
        EventKind.COLLABORATOR_ADDED,
        EventKind.COLLABORATOR_REMOVED,
        EventKind.RUN_STARTED,
        EventKind.RUN_STOPPED,
        EventKind.STREAM_ADDED,
        EventKind.STREAM_REMOVED,
        EventKind.STREAM_PAUSED,
        EventKind.STREAM_RESUMED,
        EventKind.STREAM_REPLAYED,
        EventKind.STREAM_SECRET_ROTATED,
        EventKind.WITNESS_ADDED,
        EventKind.WITNESS_REMOVED,
        EventKind.RETENTION_SET,
        EventKind.RETENTION_REFUSED,
        EventKind.TRAIL_PURGED,
        EventKind.TRAIL_READ,
        EventKind.FINDING_RAISED,
        EventKind.FINDING_ACKNOWLEDGED,
    }
)
"""Changes to users, keys, projects, runs, stream destinations, witnesses and retention, reads
of the trail, and forensic findings: their events name no data source (a finding names the
data source it is about in its metadata)."""
FINDING_KINDS: frozenset[EventKind] = frozenset(
    {EventKind.FINDING_RAISED, EventKind.FINDING_ACKNOWLEDGED}
)
"""The events of forensic findings: detection rules never evaluate them."""
DATA_SOURCE_KINDS: frozenset[EventKind] = frozenset(EventKind) - PLATFORM_KINDS
"""Events about one data source: Domino's seven and dstrail's data source extensions."""


def parse_event_kind(value: str) -> EventKind:
    """The kind named ``value``; ``ValueError`` naming the accepted ones otherwise."""
    try:
        return EventKind(value)
    except ValueError:
        accepted = ", ".join(kind.value for kind in EventKind)
        raise ValueError(f"unknown event kind {value!r}; accepted: {accepted}") from None
