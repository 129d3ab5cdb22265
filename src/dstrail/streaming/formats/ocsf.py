"""``ocsf``: each event as an OCSF 1.5.0 event (schema.ocsf.io), one JSON object per record.

Which class an event becomes:

- ``AccessDataSource`` / ``AccessDataSourceRefused``: 6005 Datastore Activity (category 6
  Application Activity), activity by ``operation``: ``getDataSource`` Read, ``objectKey`` Read
  (Write when ``isReadWrite``), ``listObjects`` List, ``query`` Query; the data source is the
  ``databucket`` (object stores) or the ``database``, the caller's client the ``src_endpoint``;
- ``DataSourceChangeOfPermissions`` and ``UserRoleChanged``: 3005 User Access Management,
  Assign or Revoke Privileges (both at once: Other); the data source is in ``resources``;
- ``UserCreated``, ``ApiKeyIssued``, ``ApiKeyRevoked``: 3001 Account Change (a key: Other,
  named by ``activity_name``, its id in ``user.credential_uid``);
- every other change (data sources, projects, runs, stream destinations, witnesses): 3004
  Entity Management, the data source, project, run, destination or witness as the ``entity``;
- ``ForensicFindingRaised`` and ``ForensicFindingAcknowledged``: 2004 Detection Finding
  (category 2 Findings), Create (status New) and Update (status Other, ``Acknowledged``, the
  note as ``comment``); the finding's severity, its id, summary and rule in ``finding_info``
  (the rule as the ``analytic``, its linked events' seqs as ``related_events``), its data source
  in ``resources`` and its user in ``evidences``. The class has no ``actor``: who raised or
  acknowledged it is in ``unmapped``, as for the base event.

Every record has ``time`` (epoch ms), ``actor.user`` (who did it), ``metadata`` (``uid``: the
event's stable id, ``sequence``: its ``seq``, ``event_code``: its kind), status Success, or
Failure for a refusal (severity Medium, ``status_detail`` the reason; a finding's own status
and severity), and in ``unmapped`` the
event's own ``metadata`` object, its ``dataSourceType`` (the datastore's ``type`` is the
schema's caption of its ``type_id``) and, once a signed checkpoint covers the event, the
checkpoint (``treeSize``, ``rootHash`` hex) to prove it against. Only attributes the schema defines for the
class are written, so strict validators accept the records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from dstrail import __version__
from dstrail.domain.datasources import DATA_SOURCE_TYPES
from dstrail.domain.streams import StreamRecord
from dstrail.domain.timestamps import format_ms, parse_iso
from dstrail.domain.trail import CheckpointRecord, EventKind, SealedRow
from dstrail.errors import InvalidInput
from dstrail.streaming.formats import event_id

OCSF_VERSION: Final = "1.5.0"
"""The schema version written (the one ``py-ocsf-models`` 0.10 implements)."""

PRODUCT: Final = {"name": "dstrail", "vendor_name": "dstrail", "version": __version__}

UNKNOWN: Final = 0
OTHER: Final = 99
SUCCESS: Final = 1
FAILURE: Final = 2
INFORMATIONAL: Final = 1
MEDIUM: Final = 3

REFUSALS: Final = frozenset({EventKind.ACCESS_REFUSED, EventKind.CHANGE_REFUSED})


@dataclass(frozen=True, slots=True)
class OcsfClass:
    """An event class of the schema and its ``activity_id`` captions."""

    uid: int
    name: str
    category_uid: int
    category_name: str
    activities: dict[int, str]

    def caption(self, activity_id: int) -> str:
        """The activity's caption (``Unknown`` and ``Other`` for every class)."""
        if activity_id == UNKNOWN:
            return "Unknown"
        return self.activities.get(activity_id, "Other")


DATASTORE_ACTIVITY: Final = OcsfClass(
    6005, "Datastore Activity", 6, "Application Activity",
    {1: "Read", 2: "Update", 3: "Connect", 4: "Query", 5: "Write", 6: "Create", 7: "Delete",
     8: "List", 9: "Encrypt", 10: "Decrypt"},
)  # fmt: skip
ACCOUNT_CHANGE: Final = OcsfClass(
    3001, "Account Change", 3, "Identity & Access Management",
    {1: "Create", 2: "Enable", 3: "Password Change", 4: "Password Reset", 5: "Disable",
     6: "Delete", 7: "Attach Policy", 8: "Detach Policy", 9: "Lock", 10: "MFA Factor Enable",
     11: "MFA Factor Disable", 12: "Unlock"},
)  # fmt: skip
ENTITY_MANAGEMENT: Final = OcsfClass(
    3004, "Entity Management", 3, "Identity & Access Management",
    {1: "Create", 2: "Read", 3: "Update", 4: "Delete", 5: "Move", 6: "Enroll", 7: "Unenroll",
     8: "Enable", 9: "Disable", 10: "Activate", 11: "Deactivate", 12: "Suspend", 13: "Resume"},
)  # fmt: skip
USER_ACCESS: Final = OcsfClass(
    3005,
    "User Access Management",
    3,
    "Identity & Access Management",
    {1: "Assign Privileges", 2: "Revoke Privileges"},
)
DETECTION_FINDING: Final = OcsfClass(
    2004, "Detection Finding", 2, "Findings", {1: "Create", 2: "Update", 3: "Close"}
)
BASE_EVENT: Final = OcsfClass(0, "Base Event", 0, "Uncategorized", {})
"""For a kind this dstrail does not know (a row written by a newer one); the base event has no
``actor``, so who did it goes in ``unmapped``."""

READ, QUERY, WRITE, LIST = 1, 4, 5, 8  # Datastore Activity
CREATE, ENTITY_READ, UPDATE, DELETE, DEACTIVATE, SUSPEND, RESUME = (
    1,
    2,
    3,
    4,
    11,
    12,
    13,
)  # Entity Management
ASSIGN, REVOKE = 1, 2  # User Access Management
ACCOUNT_CREATE = 1  # Account Change
FINDING_CREATE, FINDING_UPDATE = 1, 2  # Detection Finding
FINDING_NEW = (1, "New")
FINDING_ACKNOWLEDGED = (OTHER, "Acknowledged")
"""A finding's ``status_id`` and ``status``: New when raised; acknowledged is no status of the
schema's (In Progress, Suppressed and Resolved say more than an acknowledgement does)."""
FINDING_SEVERITY: Final = {"low": (2, "Low"), "medium": (3, "Medium"), "high": (4, "High")}
RULE_ANALYTIC: Final = 1
"""The analytic's ``type_id``: Rule."""
NO_ACTOR: Final = frozenset({BASE_EVENT.uid, DETECTION_FINDING.uid})
"""Classes without an ``actor``: who did it goes in ``unmapped``."""

USE_PRIVILEGE: Final = "use"
"""What a data source's permissions grant."""

# Data source types as OCSF datastores: object stores are databuckets (``type_id`` S3 1,
# Azure Blob 2, GCP Bucket 3, Other 99); the rest databases (Relational 1, NoSQL 6, Other 99).
BUCKET_TYPES: Final = {
    "S3Config": 1, "GenericS3Config": OTHER, "ADLSConfig": 2, "AzureBlobStorageConfig": 2,
    "GCSConfig": 3, "DatasetConfig": OTHER, "NetAppVolumeConfig": OTHER,
}  # fmt: skip
DATABASE_TYPES: Final = {"MongoDBConfig": 6, "PalantirConfig": OTHER}
RELATIONAL: Final = 1
"""Every other type dstrail knows is queried with SQL; a type it does not know is Unknown."""
BUCKET_CAPTIONS: Final = {UNKNOWN: "Unknown", 1: "S3", 2: "Azure Blob", 3: "GCP Bucket"}
DATABASE_CAPTIONS: Final = {UNKNOWN: "Unknown", RELATIONAL: "Relational", 6: "NoSQL"}
"""The schema's captions of the ``type_id`` values used: ``type`` is the caption, but for
Other (99), where it is dstrail's own type name (the type is also in ``unmapped``)."""

OPERATION_ACTIVITY: Final = {"getDataSource": READ, "listObjects": LIST, "query": QUERY}
REFUSED_ACTION_ACTIVITY: Final = {"deleteDataSource": DELETE}
"""A refused change's activity by its ``action``; every other action is an Update."""


@dataclass(frozen=True, slots=True)
class Event:
    """One trail row, its metadata parsed."""

    kind: str
    data_source_id: str
    data_source_name: str
    data_source_type: str
    metadata: dict[str, Any]
    performed_by: str
    username: str

    def get(self, key: str) -> str:
        """A metadata value as text ("" when absent)."""
        value = self.metadata.get(key, "")
        return value if isinstance(value, str) else str(value)

    def ids(self, key: str) -> list[str]:
        """A comma-separated metadata value."""
        return [part for part in self.get(key).split(",") if part]


@dataclass(frozen=True, slots=True)
class Mapped:
    """What an event kind becomes: its class, activity and the class's own attributes."""

    ocsf_class: OcsfClass
    activity_id: int
    attributes: dict[str, Any]
    target: str
    """Its object in words, for ``message``."""
    activity_name: str | None = None
    """For ``Other``: the source's name of the activity."""
    app_name: str = ""
    """The client that made the call (``actor.app_name``), when known."""


# -- Datastore Activity ------------------------------------------------------------------------


def _datastore(event: Event) -> dict[str, Any]:
    """The data source as the class's ``databucket`` or ``database`` and datastore type."""
    ds_type = event.data_source_type
    store: dict[str, Any] = {"uid": event.data_source_id, "name": event.data_source_name}
    if ds_type in BUCKET_TYPES:
        bucket_type = BUCKET_TYPES[ds_type]
        bucket = {
            **store,
            "type": BUCKET_CAPTIONS.get(bucket_type, ds_type),
            "type_id": bucket_type,
        }
        if event.get("operation") == "objectKey" and event.get("objectKey"):
            key = event.get("objectKey")
            bucket["file"] = {"name": key.rsplit("/", 1)[-1], "path": key, "type_id": 1}
        return {"databucket": bucket, "type": "Databucket", "type_id": 2}
    type_id = DATABASE_TYPES.get(ds_type, RELATIONAL if ds_type in DATA_SOURCE_TYPES else UNKNOWN)
    return {
        "database": {**store, "type": DATABASE_CAPTIONS.get(type_id, ds_type), "type_id": type_id},
        "type": "Database",
        "type_id": 1,
    }


def _access(event: Event) -> Mapped:
    operation = event.get("operation")
    if operation == "objectKey":
        activity = WRITE if event.get("isReadWrite") == "true" else READ
    else:
        activity = OPERATION_ACTIVITY.get(operation, OTHER)
    endpoint = {"name": event.get("clientSource") or "unknown"}
    if event.get("dataPlaneId"):
        endpoint["uid"] = event.get("dataPlaneId")
    return Mapped(
        DATASTORE_ACTIVITY,
        activity,
        {"src_endpoint": endpoint, **_datastore(event)},
        event.data_source_name,
        activity_name=(operation or None) if activity == OTHER else None,
        app_name=event.get("clientSource"),
    )


# -- User Access Management --------------------------------------------------------------------


def _resources(event: Event) -> list[dict[str, Any]]:
    return [
        {
            "uid": event.data_source_id,
            "name": event.data_source_name,
            "type": event.data_source_type,
        }
    ]


def _permissions(event: Event) -> Mapped:
    added, removed = event.ids("addedUserIds"), event.ids("removedUserIds")
    name = None
    if added and removed:
        activity, name = OTHER, "Assign and Revoke Privileges"
    elif added or removed:
        activity = ASSIGN if added else REVOKE
    else:  # only ``isEveryone`` changed: to its new value
        activity = ASSIGN if event.get("isEveryone") == "true" else REVOKE
    targets = added or removed
    user: dict[str, Any] = (
        {"uid": targets[0]}
        if targets
        else {"name": "everyone", "type": "Everyone", "type_id": OTHER}
    )
    return Mapped(
        USER_ACCESS,
        activity,
        {"user": user, "privileges": [USE_PRIVILEGE], "resources": _resources(event)},
        event.data_source_name,
        activity_name=name,
    )


def _role_changed(event: Event) -> Mapped:
    user = {"uid": event.get("userId"), "name": event.get("username")}
    return Mapped(
        USER_ACCESS,
        ASSIGN,
        {"user": user, "privileges": [event.get("role")]},
        event.get("username"),
    )


# -- Account Change ----------------------------------------------------------------------------


def _account(activity: int, name: str | None = None) -> Callable[[Event], Mapped]:
    def mapped(event: Event) -> Mapped:
        user = {"uid": event.get("userId"), "name": event.get("username")}
        if event.get("keyId"):
            user["credential_uid"] = event.get("keyId")
        return Mapped(ACCOUNT_CHANGE, activity, {"user": user}, event.get("username"), name)

    return mapped


# -- Entity Management -------------------------------------------------------------------------


def _entity(activity: int, of: Callable[[Event], dict[str, Any]]) -> Callable[[Event], Mapped]:
    def mapped(event: Event) -> Mapped:
        entity = of(event)
        target = entity.get("name") or entity.get("uid", "")
        return Mapped(ENTITY_MANAGEMENT, activity, {"entity": entity}, target)

    return mapped


def _data_source_entity(event: Event) -> dict[str, Any]:
    return {
        "uid": event.data_source_id,
        "name": event.data_source_name,
        "type": "Data Source",
        "type_id": OTHER,
        "data": {"dataSourceType": event.data_source_type},
    }


def _project_entity(event: Event) -> dict[str, Any]:
    return {
        "uid": event.get("projectId"),
        "name": event.get("projectName"),
        "type": "Project",
        "type_id": OTHER,
    }


def _run_entity(event: Event) -> dict[str, Any]:
    data = {key: event.get(key) for key in ("runType", "projectId", "dataPlaneId", "userId")}
    return {"uid": event.get("runId"), "type": "Run", "type_id": OTHER, "data": data}


def _stream_entity(event: Event) -> dict[str, Any]:
    return {
        "uid": event.get("streamId"),
        "name": event.get("streamName"),
        "type": "Stream Destination",
        "type_id": OTHER,
    }


def _witness_entity(event: Event) -> dict[str, Any]:
    return {
        "uid": event.get("witnessName"),
        "name": event.get("witnessName"),
        "type": "Witness",
        "type_id": OTHER,
        "data": {"vkey": event.get("vkey"), "url": event.get("url")},
    }


def _trail_entity(event: Event) -> dict[str, Any]:
    """The audit trail itself: its retention policy, a purge of its oldest events, a read."""
    keys = (
        "days", "locked", "previousDays", "reason", "firstSeq", "lastSeq", "archive",
        "archiveSha256", "forced", "surface", "filter", "rows", "complete", "refused",
    )  # fmt: skip
    return {
        "uid": "audit-trail",
        "name": "Audit trail",
        "type": "Audit Trail",
        "type_id": OTHER,
        "data": {key: event.get(key) for key in keys if event.get(key) is not None},
    }


# -- Detection Finding -------------------------------------------------------------------------


def _time_of(text: str) -> int | None:
    try:
        return parse_iso(text, field="time") if text else None
    except InvalidInput:
        return None


def _finding(activity: int, status: tuple[int, str]) -> Callable[[Event], Mapped]:
    def mapped(event: Event) -> Mapped:
        rule = event.get("rule") or "unknown"
        info: dict[str, Any] = {
            "uid": event.get("findingId") or "unknown",
            "title": event.get("summary") or rule,
            "types": [rule],
            "analytic": {"name": rule, "uid": rule, "type_id": RULE_ANALYTIC, "type": "Rule"},
        }
        seen = _time_of(event.get("time"))
        if seen is not None:
            info["last_seen_time"] = seen
        seqs = [seq for seq in event.ids("seqs") if seq.isdigit()]
        if seqs:
            info["related_events"] = [{"uid": seq} for seq in seqs]
            info["related_events_count"] = len(seqs)
        severity_id, severity = FINDING_SEVERITY.get(event.get("severity"), (UNKNOWN, "Unknown"))
        attributes: dict[str, Any] = {
            "finding_info": info,
            "severity_id": severity_id,
            "severity": severity,
            "status_id": status[0],
            "status": status[1],
        }
        if activity == FINDING_CREATE:
            attributes["is_alert"] = True
        if event.get("note"):
            attributes["comment"] = event.get("note")
        if event.get("dataSourceId"):
            attributes["resources"] = [{
                "uid": event.get("dataSourceId"), "name": event.get("dataSourceName"),
                "type": "Data Source",
            }]  # fmt: skip
        if event.get("userId"):
            user = {"uid": event.get("userId"), "name": event.get("username") or None}
            attributes["evidences"] = [
                {"name": "user", "user": {k: v for k, v in user.items() if v}}
            ]
        return Mapped(DETECTION_FINDING, activity, attributes, info["title"])

    return mapped


def _change_refused(event: Event) -> Mapped:
    activity = REFUSED_ACTION_ACTIVITY.get(event.get("action"), UPDATE)
    return _entity(activity, _data_source_entity)(event)


MAPPINGS: Final[dict[str, Callable[[Event], Mapped]]] = {
    EventKind.CREATE_DATA_SOURCE: _entity(CREATE, _data_source_entity),
    EventKind.DELETE_DATA_SOURCE: _entity(DELETE, _data_source_entity),
    EventKind.CHANGE_OF_PERMISSIONS: _permissions,
    EventKind.CHANGE_OF_OWNERSHIP: _entity(UPDATE, _data_source_entity),
    EventKind.ACCESS_DATA_SOURCE: _access,
    EventKind.ASSOCIATED_TO_PROJECT: _entity(UPDATE, _data_source_entity),
    EventKind.DISSOCIATED_FROM_PROJECT: _entity(UPDATE, _data_source_entity),
    EventKind.UPDATE_DATA_SOURCE: _entity(UPDATE, _data_source_entity),
    EventKind.UPDATE_CREDENTIALS: _entity(UPDATE, _data_source_entity),
    EventKind.ACCESS_REFUSED: _access,
    EventKind.CHANGE_REFUSED: _change_refused,
    EventKind.USER_CREATED: _account(ACCOUNT_CREATE),
    EventKind.USER_ROLE_CHANGED: _role_changed,
    EventKind.API_KEY_ISSUED: _account(OTHER, "Issue API Key"),
    EventKind.API_KEY_REVOKED: _account(OTHER, "Revoke API Key"),
    EventKind.PROJECT_CREATED: _entity(CREATE, _project_entity),
    EventKind.COLLABORATOR_ADDED: _entity(UPDATE, _project_entity),
    EventKind.COLLABORATOR_REMOVED: _entity(UPDATE, _project_entity),
    EventKind.RUN_STARTED: _entity(CREATE, _run_entity),
    EventKind.RUN_STOPPED: _entity(DEACTIVATE, _run_entity),
    EventKind.STREAM_ADDED: _entity(CREATE, _stream_entity),
    EventKind.STREAM_REMOVED: _entity(DELETE, _stream_entity),
    EventKind.STREAM_PAUSED: _entity(SUSPEND, _stream_entity),
    EventKind.STREAM_RESUMED: _entity(RESUME, _stream_entity),
    EventKind.STREAM_REPLAYED: _entity(UPDATE, _stream_entity),
    EventKind.STREAM_SECRET_ROTATED: _entity(UPDATE, _stream_entity),
    EventKind.WITNESS_ADDED: _entity(CREATE, _witness_entity),
    EventKind.WITNESS_REMOVED: _entity(DELETE, _witness_entity),
    EventKind.RETENTION_SET: _entity(UPDATE, _trail_entity),
    EventKind.RETENTION_REFUSED: _entity(UPDATE, _trail_entity),
    EventKind.TRAIL_PURGED: _entity(DELETE, _trail_entity),
    EventKind.TRAIL_READ: _entity(ENTITY_READ, _trail_entity),
    EventKind.FINDING_RAISED: _finding(FINDING_CREATE, FINDING_NEW),
    EventKind.FINDING_ACKNOWLEDGED: _finding(FINDING_UPDATE, FINDING_ACKNOWLEDGED),
}
"""Every kind's mapping (a test holds it to ``EventKind``)."""


def _unknown(event: Event) -> Mapped:
    return Mapped(BASE_EVENT, OTHER, {}, event.data_source_name, activity_name=event.kind)


# -- the record --------------------------------------------------------------------------------


def _type_caption(ocsf_class: OcsfClass, activity: int, activity_name: str) -> str:
    """The activity's part of ``type_name``: the schema's caption of ``type_uid``, which is
    ``Other`` for an Other activity of a class (its own name is in ``activity_name``); only the
    Base Event, of no class, names its activity there."""
    if activity == OTHER and ocsf_class is not BASE_EVENT:
        return ocsf_class.caption(OTHER)
    return activity_name


def _parsed(metadata: str) -> dict[str, Any] | None:
    try:
        value = orjson.loads(metadata)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def ocsf_event(row: SealedRow, checkpoint: CheckpointRecord | None) -> dict[str, Any]:
    """The OCSF event of one row."""
    (ds_id, ds_name, ds_type, kind, metadata_text, performed_by, ts_ms, seq) = row[:8]
    username, leaf = row[8], row[11]
    metadata = _parsed(metadata_text)
    event = Event(kind, ds_id, ds_name, ds_type, metadata or {}, performed_by, username)
    mapped = MAPPINGS.get(kind, _unknown)(event)
    ocsf_class, activity = mapped.ocsf_class, mapped.activity_id
    activity_name = mapped.activity_name or ocsf_class.caption(activity)
    refused = kind in REFUSALS
    actor: dict[str, Any] = {"user": {"uid": performed_by, "name": username}}
    if mapped.app_name:
        actor["app_name"] = mapped.app_name
    unmapped: dict[str, Any] = {"metadata": metadata if metadata is not None else metadata_text}
    if ds_type:
        unmapped["dataSourceType"] = ds_type
    if checkpoint is not None and checkpoint.tree_size >= seq:
        unmapped["checkpoint"] = {
            "treeSize": checkpoint.tree_size,
            "rootHash": checkpoint.root_hash.hex(),
        }
    document: dict[str, Any] = {
        "activity_id": activity,
        "activity_name": activity_name,
        "category_uid": ocsf_class.category_uid,
        "category_name": ocsf_class.category_name,
        "class_uid": ocsf_class.uid,
        "class_name": ocsf_class.name,
        "type_uid": ocsf_class.uid * 100 + activity,
        "type_name": f"{ocsf_class.name}: {_type_caption(ocsf_class, activity, activity_name)}",
        "time": ts_ms,
        "timezone_offset": 0,
        "severity_id": MEDIUM if refused else INFORMATIONAL,
        "severity": "Medium" if refused else "Informational",
        "status_id": FAILURE if refused else SUCCESS,
        "status": "Failure" if refused else "Success",
        "message": f"{kind}: {mapped.target} by {username}"
        if mapped.target
        else f"{kind} by {username}",
        "actor": actor,
        "metadata": {
            "version": OCSF_VERSION,
            "product": PRODUCT,
            "uid": event_id(leaf, seq),
            "sequence": seq,
            "event_code": kind,
            "original_time": format_ms(ts_ms),
        },
        **mapped.attributes,
        "unmapped": unmapped,
    }
    if ocsf_class.uid in NO_ACTOR:  # no ``actor`` in the base event, nor in a finding
        unmapped["actor"] = document.pop("actor")
    if refused and event.get("reason"):
        document["status_detail"] = event.get("reason")
    return document


def encode(rows: Sequence[SealedRow], checkpoint: CheckpointRecord | None) -> list[StreamRecord]:
    """One OCSF record per row."""
    return [
        StreamRecord(
            seq=row[7],
            event_id=event_id(row[11], row[7]),
            timestamp_ms=row[6],
            body=orjson.dumps(ocsf_event(row, checkpoint)),
        )
        for row in rows
    ]
