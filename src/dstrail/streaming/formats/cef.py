"""``cef``: ArcSight Common Event Format, one line a record (UTF-8, no line end):

``CEF:0|dstrail|dstrail|<version>|<event kind>|<name>|<severity>|<extensions>``

The Signature ID is the event kind; the Name says it in words; the Severity is 3, or 7 for
the refusals (``AccessDataSourceRefused``, ``DataSourceChangeRefused``), or for a forensic
finding (``ForensicFindingRaised``, ``ForensicFindingAcknowledged``) its own: 4 low, 6 medium,
8 high. The extensions, each left out when the event has no value for it:

| key | value |
|---|---|
| ``rt`` | the event's time, epoch milliseconds |
| ``suser``, ``suid`` | who: username and user id |
| ``cs1`` .. ``cs5`` | ``dataSourceName``, ``dataSourceId``, ``dataSourceType``, ``runId``, ``projectId`` (each with its ``csNLabel``) |
| ``cn1`` | the event's ``seq`` (``cn1Label=seq``) |
| ``externalId`` | the stable event id (the leaf hash, hex) |
| ``outcome`` | ``failure`` for a refusal, else ``success`` |
| ``act`` | the metadata's ``operation`` (an access), ``action`` (a refused change) or ``rule`` (a finding) |
| ``cs6`` | a finding's ``findingId`` (``cs6Label=findingId``) |
| ``reason`` | a refusal's ``reason`` |
| ``msg`` | the whole metadata, compact JSON |

Escaping (CEF rules): ``\\`` and ``|`` in header fields (a line break there becomes a space,
the header having no escape for it); ``\\``, ``=`` and line breaks (``\\n``, ``\\r``) in
extension values. The checkpoint is not carried: a receiver proves an event by its
``externalId`` against the audit API's proofs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import orjson

from dstrail import __version__
from dstrail.domain.streams import StreamRecord
from dstrail.domain.trail import (
    DATA_SOURCE_ID,
    DATA_SOURCE_NAME,
    DATA_SOURCE_TYPE,
    EVENT_KIND,
    LEAF_HASH,
    METADATA,
    PERFORMED_BY,
    PERFORMED_BY_USERNAME,
    PROJECT_ID,
    RUN_ID,
    SEQ,
    TS_MS,
    CheckpointRecord,
    EventKind,
    SealedRow,
)
from dstrail.streaming.formats import event_id

VENDOR = "dstrail"
PRODUCT = "dstrail"
SEVERITY_NORMAL = 3
SEVERITY_REFUSAL = 7
REFUSALS = frozenset({EventKind.ACCESS_REFUSED.value, EventKind.CHANGE_REFUSED.value})
FINDINGS = frozenset({EventKind.FINDING_RAISED.value, EventKind.FINDING_ACKNOWLEDGED.value})
FINDING_SEVERITY = {"low": 4, "medium": 6, "high": 8}

NAMES: dict[str, str] = {
    EventKind.CREATE_DATA_SOURCE: "Data source created",
    EventKind.DELETE_DATA_SOURCE: "Data source deleted",
    EventKind.CHANGE_OF_PERMISSIONS: "Data source permissions changed",
    EventKind.CHANGE_OF_OWNERSHIP: "Data source ownership changed",
    EventKind.ACCESS_DATA_SOURCE: "Data source accessed",
    EventKind.ASSOCIATED_TO_PROJECT: "Data source added to a project",
    EventKind.DISSOCIATED_FROM_PROJECT: "Data source removed from a project",
    EventKind.UPDATE_DATA_SOURCE: "Data source updated",
    EventKind.UPDATE_CREDENTIALS: "Data source credentials updated",
    EventKind.ACCESS_REFUSED: "Data source access refused",
    EventKind.CHANGE_REFUSED: "Data source change refused",
    EventKind.USER_CREATED: "User created",
    EventKind.USER_ROLE_CHANGED: "User role changed",
    EventKind.API_KEY_ISSUED: "API key issued",
    EventKind.API_KEY_REVOKED: "API key revoked",
    EventKind.PROJECT_CREATED: "Project created",
    EventKind.COLLABORATOR_ADDED: "Project collaborator added",
    EventKind.COLLABORATOR_REMOVED: "Project collaborator removed",
    EventKind.RUN_STARTED: "Run started",
    EventKind.RUN_STOPPED: "Run stopped",
    EventKind.STREAM_ADDED: "Stream destination added",
    EventKind.STREAM_REMOVED: "Stream destination removed",
    EventKind.STREAM_PAUSED: "Stream destination paused",
    EventKind.STREAM_RESUMED: "Stream destination resumed",
    EventKind.STREAM_REPLAYED: "Stream destination replayed",
    EventKind.STREAM_SECRET_ROTATED: "Stream destination secret rotated",
    EventKind.WITNESS_ADDED: "Witness added",
    EventKind.WITNESS_REMOVED: "Witness removed",
    EventKind.RETENTION_SET: "Audit retention policy set",
    EventKind.RETENTION_REFUSED: "Audit retention change refused",
    EventKind.TRAIL_PURGED: "Audit trail purged",
    EventKind.TRAIL_READ: "Audit trail read",
    EventKind.FINDING_RAISED: "Forensic finding raised",
    EventKind.FINDING_ACKNOWLEDGED: "Forensic finding acknowledged",
}
"""Each kind's Name; a kind not listed (written by a newer dstrail) is named by its words."""

_WORDS = re.compile(r"(?<=[a-z])(?=[A-Z])")


def name_of(kind: str) -> str:
    """The CEF Name of an event kind."""
    return NAMES.get(kind) or _WORDS.sub(" ", kind).capitalize()


def header_value(value: str) -> str:
    """A header field: ``\\`` and ``|`` escaped, line breaks made spaces."""
    escaped = value.replace("\\", "\\\\").replace("|", "\\|")
    return escaped.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def extension_value(value: str) -> str:
    """An extension value: ``\\`` and ``=`` escaped, line breaks as ``\\n`` and ``\\r``."""
    escaped = value.replace("\\", "\\\\").replace("=", "\\=")
    return escaped.replace("\n", "\\n").replace("\r", "\\r")


def line(row: SealedRow) -> str:
    """One event as a CEF line."""
    kind = row[EVENT_KIND]
    metadata: dict[str, str] = orjson.loads(row[METADATA])
    refused = kind in REFUSALS
    finding = kind in FINDINGS
    severity = SEVERITY_REFUSAL if refused else SEVERITY_NORMAL
    if finding:
        severity = FINDING_SEVERITY.get(metadata.get("severity", ""), SEVERITY_NORMAL)
    labelled = (
        ("cs1", "dataSourceName", row[DATA_SOURCE_NAME]),
        ("cs2", "dataSourceId", row[DATA_SOURCE_ID]),
        ("cs3", "dataSourceType", row[DATA_SOURCE_TYPE]),
        ("cs4", "runId", row[RUN_ID]),
        ("cs5", "projectId", row[PROJECT_ID]),
        ("cs6", "findingId", metadata.get("findingId") if finding else None),
        ("cn1", "seq", str(row[SEQ])),
    )
    pairs: list[tuple[str, str | None]] = [
        ("rt", str(row[TS_MS])),
        ("suser", row[PERFORMED_BY_USERNAME]),
        ("suid", row[PERFORMED_BY]),
    ]
    for key, label, value in labelled:
        if value:
            pairs += [(f"{key}Label", label), (key, value)]
    pairs += [
        ("externalId", event_id(row[LEAF_HASH], row[SEQ])),
        ("outcome", "failure" if refused else "success"),
        (
            "act",
            metadata.get("rule")
            if finding
            else metadata.get("operation") or metadata.get("action"),
        ),
        ("reason", metadata.get("reason") if refused else None),
        ("msg", orjson.dumps(metadata).decode()),
    ]
    header = "|".join(
        header_value(field)
        for field in (
            "CEF:0",
            VENDOR,
            PRODUCT,
            __version__,
            kind,
            name_of(kind),
            str(severity),
        )
    )
    extensions = " ".join(f"{key}={extension_value(value)}" for key, value in pairs if value)
    return f"{header}|{extensions}"


def encode(rows: Sequence[SealedRow], checkpoint: CheckpointRecord | None) -> list[StreamRecord]:
    """One CEF record per row (the checkpoint is not carried, see above)."""
    _ = checkpoint
    return [
        StreamRecord(
            seq=row[SEQ],
            event_id=event_id(row[LEAF_HASH], row[SEQ]),
            timestamp_ms=row[TS_MS],
            body=line(row).encode(),
        )
        for row in rows
    ]
