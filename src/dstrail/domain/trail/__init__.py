"""The trail event, in one home: pure code, no SQL, no framework.

- ``kinds``: the event kinds (Domino's seven, then extensions);
- ``event``: an event about to be appended (``NewAuditEvent``) and one as the store reads it
  back (``StoredEvent``, its columns and index constants);
- ``document``: the seven-field document of Domino's audit API, both ways;
- ``encoding``: the canonical bytes, the leaf hash and the stored columns of a new event;
- ``merkle``: the RFC 6962 tree math;
- ``checkpoints``: checkpoint values, the signed message and their JSON form.
"""

from dstrail.domain.trail.checkpoints import (
    CheckpointPolicy,
    CheckpointRecord,
    CheckpointSigner,
    checkpoint_document,
    checkpoint_from_document,
)
from dstrail.domain.trail.document import (
    API_FIELDS,
    event_document,
    event_documents,
    row_of_document,
)
from dstrail.domain.trail.encoding import (
    ENCODING_VERSION,
    canonical_event,
    event_leaf,
    stored_columns,
)
from dstrail.domain.trail.event import (
    DATA_SOURCE_ID,
    DATA_SOURCE_NAME,
    DATA_SOURCE_TYPE,
    EVENT_COLUMNS,
    EVENT_KIND,
    LEAF_HASH,
    MAX_SEQ,
    METADATA,
    PERFORMED_BY,
    PERFORMED_BY_USERNAME,
    PROJECT_ID,
    RUN_ID,
    SEALED_COLUMNS,
    SEQ,
    TS_MS,
    EventRow,
    NewAuditEvent,
    SealedRow,
    StoredEvent,
)
from dstrail.domain.trail.kinds import (
    DATA_SOURCE_KINDS,
    DOMINO_KINDS,
    EXTENSION_KINDS,
    FINDING_KINDS,
    PLATFORM_KINDS,
    EventKind,
    parse_event_kind,
)

__all__ = [
    "API_FIELDS",
    "DATA_SOURCE_ID",
    "DATA_SOURCE_KINDS",
    "DATA_SOURCE_NAME",
    "DATA_SOURCE_TYPE",
    "DOMINO_KINDS",
    "ENCODING_VERSION",
    "EVENT_COLUMNS",
    "EVENT_KIND",
    "EXTENSION_KINDS",
    "FINDING_KINDS",
    "LEAF_HASH",
    "MAX_SEQ",
    "METADATA",
    "PERFORMED_BY",
    "PERFORMED_BY_USERNAME",
    "PLATFORM_KINDS",
    "PROJECT_ID",
    "RUN_ID",
    "SEALED_COLUMNS",
    "SEQ",
    "TS_MS",
    "CheckpointPolicy",
    "CheckpointRecord",
    "CheckpointSigner",
    "EventKind",
    "EventRow",
    "NewAuditEvent",
    "SealedRow",
    "StoredEvent",
    "canonical_event",
    "checkpoint_document",
    "checkpoint_from_document",
    "event_document",
    "event_documents",
    "event_leaf",
    "parse_event_kind",
    "row_of_document",
    "stored_columns",
]
