"""Table definitions, used by queries. The migrations under ``migrations/`` create them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    false,
    true,
)

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", String(24), primary_key=True),
    Column("username", String(128), nullable=False, unique=True),
    Column("email", String(320), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(24), primary_key=True),
    Column("user_id", String(24), nullable=False, index=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("label", String(128), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
)

projects = Table(
    "projects",
    metadata,
    Column("id", String(24), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("owner_id", String(24), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

project_collaborators = Table(
    "project_collaborators",
    metadata,
    Column("project_id", String(24), primary_key=True),
    Column("user_id", String(24), primary_key=True),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(24), primary_key=True),
    Column("run_type", String(16), nullable=False),
    Column("project_id", String(24), nullable=False),
    Column("user_id", String(24), nullable=False),
    Column("data_plane_id", String(24), nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger, nullable=True),
)

data_sources = Table(
    "data_sources",
    metadata,
    Column("id", String(24), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("display_name", String(256), nullable=False),
    Column("description", Text, nullable=False),
    Column("data_source_type", String(64), nullable=False),
    Column("auth_type", String(64), nullable=False),
    Column("credential_type", String(16), nullable=False),
    Column("config", Text, nullable=False),
    Column("owner_id", String(24), nullable=False),
    Column("is_everyone", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("added_by", String(24), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("last_updated", BigInteger, nullable=False),
    Column("last_updated_by", String(24), nullable=False),
    Column("config_overwrites_allowed", Boolean, nullable=False, server_default=true()),
)

data_source_users = Table(
    "data_source_users",
    metadata,
    Column("data_source_id", String(24), primary_key=True),
    Column("user_id", String(24), primary_key=True),
)

data_source_projects = Table(
    "data_source_projects",
    metadata,
    Column("data_source_id", String(24), primary_key=True),
    Column("project_id", String(24), primary_key=True),
    Column("added_by", String(24), nullable=False, server_default=""),
    Column("added_at", BigInteger, nullable=False, server_default="0"),
    Column("last_accessed", BigInteger, nullable=False, server_default="0"),
)

SHARED_CREDENTIALS_USER = ""
"""``user_id`` of the one shared service account of a ``Shared`` data source."""

data_source_credentials = Table(
    "data_source_credentials",
    metadata,
    Column("data_source_id", String(24), primary_key=True),
    Column("user_id", String(24), primary_key=True),
    Column("ciphertext", Text, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    ),
    Column("ts_ms", BigInteger, nullable=False),
    Column("event_kind", String(64), nullable=False),
    Column("data_source_id", String(24), nullable=False),
    Column("data_source_name", String(128), nullable=False),
    Column("data_source_type", String(64), nullable=False),
    Column("performed_by", String(24), nullable=False),
    Column("performed_by_username", String(128), nullable=False),
    Column("run_id", String(24), nullable=True),
    Column("project_id", String(24), nullable=True),
    Column("metadata", Text, nullable=False),
    Column("leaf_hash", LargeBinary, nullable=True),
    # The hashes of the Merkle subtrees (level 1, 2...) this event completes, concatenated.
    Column("subtree_hashes", LargeBinary, nullable=True),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("frontier", LargeBinary, nullable=True),
    Column("checkpoint_size", BigInteger, nullable=False),
    Column("checkpoint_ms", BigInteger, nullable=False),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("tree_size", BigInteger, primary_key=True, autoincrement=False),
    Column("root_hash", LargeBinary, nullable=False),
    Column("timestamp_ms", BigInteger, nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("signature", LargeBinary, nullable=False),
    Column("origin", String(255), nullable=True),
)

audit_witnesses = Table(
    "audit_witnesses",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("vkey", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("added_at", BigInteger, nullable=False),
    Column("added_by", String(24), nullable=False),
    Column("cosigned_size", BigInteger, nullable=False, server_default="0"),
    Column("last_error", Text, nullable=False, server_default=""),
    Column("last_attempt_at", BigInteger, nullable=True),
)

audit_cosignatures = Table(
    "audit_cosignatures",
    metadata,
    Column("tree_size", BigInteger, primary_key=True, autoincrement=False),
    Column("witness", String(255), primary_key=True),
    Column("key_id", String(8), primary_key=True),
    Column("timestamp", BigInteger, nullable=False),
    Column("signature", LargeBinary, nullable=False),
)

witnessed_logs = Table(
    "witnessed_logs",
    metadata,
    Column("origin", String(255), primary_key=True),
    Column("vkey", Text, nullable=False),
    Column("tree_size", BigInteger, nullable=False, server_default="0"),
    Column("root_hash", LargeBinary, nullable=True),
    Column("checkpoint", Text, nullable=True),
    Column("updated_at", BigInteger, nullable=True),
)

audit_daily_counts = Table(
    "audit_daily_counts",
    metadata,
    Column("day", Integer, primary_key=True),
    Column("event_kind", String(64), primary_key=True),
    Column("count", BigInteger, nullable=False),
)

stream_destinations = Table(
    "stream_destinations",
    metadata,
    Column("id", String(24), primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("format", String(16), nullable=False),
    Column("config", Text, nullable=False),
    Column("filter_kinds", Text, nullable=False),
    Column("filter_names", Text, nullable=False),
    Column("secret", Text, nullable=True),
    Column("paused", Boolean, nullable=False),
    Column("cursor_seq", BigInteger, nullable=False),
    Column("generation", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(24), nullable=False),
    Column("lease_owner", String(64), nullable=False),
    Column("lease_until", BigInteger, nullable=False),
    Column("last_delivery_at", BigInteger, nullable=True),
    Column("last_error", Text, nullable=False),
    Column("last_error_at", BigInteger, nullable=True),
    Column("delivered", BigInteger, nullable=False),
    Column("errors", BigInteger, nullable=False, server_default="0"),
)

audit_retention = Table(
    "audit_retention",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("days", Integer, nullable=True),
    Column("locked", Boolean, nullable=False),
    Column("set_at", BigInteger, nullable=False),
    Column("set_by", String(24), nullable=False),
    # Events 1..purge_through are purged (recorded, archived); 1..removed_through are gone.
    Column("purge_through", BigInteger, nullable=False),
    Column("purge_cutoff_ms", BigInteger, nullable=False),
    Column("removed_through", BigInteger, nullable=False),
    Column("last_purge_at", BigInteger, nullable=True),
    Column("last_archive", Text, nullable=False),
)

audit_tree_hashes = Table(
    "audit_tree_hashes",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    ),
    Column("leaf_hash", LargeBinary, nullable=False),
    Column("subtree_hashes", LargeBinary, nullable=True),
)
"""The tree hashes of purged events (``leaf_hash``, ``subtree_hashes`` as their rows had):
proofs and tiles keep working after the bodies are archived and removed."""

forensics_state = Table(
    "forensics_state",
    metadata,
    Column("id", Integer, primary_key=True),
    # The derived forensics tables hold what events first_seq..cursor_seq say.
    Column("cursor_seq", BigInteger, nullable=False),
    Column("first_seq", BigInteger, nullable=False),
    # A rebuild replays events up to here without recording anything new in the trail.
    Column("replay_through", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

forensic_grants = Table(
    "forensic_grants",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("data_source_id", String(24), nullable=False),
    Column("data_source_name", String(128), nullable=False),
    Column("via", String(8), nullable=False),
    Column("subject_id", String(24), nullable=False),
    Column("subject_name", String(256), nullable=False),
    Column("granted_seq", BigInteger, nullable=False),
    Column("granted_ms", BigInteger, nullable=False),
    Column("granted_by", String(24), nullable=False),
    Column("granted_kind", String(64), nullable=False),
    Column("revoked_seq", BigInteger, nullable=True),
    Column("revoked_ms", BigInteger, nullable=True),
    Column("revoked_by", String(24), nullable=True),
    Column("revoked_kind", String(64), nullable=True),
)
"""Who could reach which data source from which event to which: one row a grant (``via``
owner, user, everyone or project; ``subject_id`` the user or project, '' for everyone), in
force at seq S when ``granted_seq <= S`` and (``revoked_seq`` is null or ``> S``)."""

forensic_users = Table(
    "forensic_users",
    metadata,
    Column("user_id", String(24), primary_key=True),
    Column("username", String(128), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_seq", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)
"""The users the trail saw created (``UserCreated``): "everyone" at S is those created by S."""

forensic_data_sources = Table(
    "forensic_data_sources",
    metadata,
    Column("data_source_id", String(24), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("data_source_type", String(64), nullable=False),
    Column("first_seq", BigInteger, nullable=False),
    Column("created_seq", BigInteger, nullable=True),
    Column("created_ms", BigInteger, nullable=True),
    Column("deleted_seq", BigInteger, nullable=True),
    Column("deleted_ms", BigInteger, nullable=True),
)
"""Every data source the trail names: its name (names never change; a deleted one's may be
reused by another), the first event naming it, its creation and deletion when recorded."""

forensic_findings = Table(
    "forensic_findings",
    metadata,
    Column("id", String(24), primary_key=True),
    Column("rule", String(32), nullable=False),
    Column("severity", String(8), nullable=False),
    Column("summary", Text, nullable=False),
    Column("user_id", String(24), nullable=False),
    Column("username", String(128), nullable=False),
    Column("data_source_id", String(24), nullable=False),
    Column("data_source_name", String(128), nullable=False),
    Column("run_id", String(24), nullable=False),
    Column("seqs", Text, nullable=False),  # JSON array of the linked events' seqs
    Column("first_seq", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("ts_ms", BigInteger, nullable=False),
    Column("details", Text, nullable=False),  # JSON object
)
"""What the detection rules found, derived from the trail (a rebuild finds them again, with
the same ids)."""

forensic_finding_events = Table(
    "forensic_finding_events",
    metadata,
    Column("finding_id", String(24), primary_key=True),
    Column("raised_seq", BigInteger, nullable=True),
    Column("raised_ms", BigInteger, nullable=True),
    Column("ack_by", String(24), nullable=True),
    Column("ack_username", String(128), nullable=True),
    Column("ack_ms", BigInteger, nullable=True),
    Column("ack_note", Text, nullable=True),
    Column("ack_seq", BigInteger, nullable=True),
)
"""What the trail holds of each finding: its ``ForensicFindingRaised`` event and its
acknowledgement (``ForensicFindingAcknowledged``). Not derived: a rebuild leaves it alone."""

forensic_rule_pairs = Table(
    "forensic_rule_pairs",
    metadata,
    Column("pair", String(48), primary_key=True),  # user id, then data source id
    Column("last_ms", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("hour", BigInteger, nullable=False),
    Column("hour_count", Integer, nullable=False),
    Column("hour_first_seq", BigInteger, nullable=False),
    Column("hour_fired", Boolean, nullable=False),
    Column("peak", Integer, nullable=False),
    Column("peak_hour", BigInteger, nullable=False),
    Column("hours", Integer, nullable=False),
    Column("alarm_hour", BigInteger, nullable=False),
    Column("lost_seq", BigInteger, nullable=False),
)
"""The rules' state of each (user, data source): ``rules.PairState``."""

forensic_rule_users = Table(
    "forensic_rule_users",
    metadata,
    Column("user_id", String(24), primary_key=True),
    Column("hours", Text, nullable=False),  # 24 counts, comma separated
    Column("slots", Integer, nullable=False),
    Column("days", Integer, nullable=False),
    Column("last_slot", BigInteger, nullable=False),
    Column("unusual_ms", BigInteger, nullable=False),
    Column("refusals", Text, nullable=False),  # JSON [[ts, seq, data source id], ...]
    Column("burst_until", BigInteger, nullable=False),
)
"""The rules' state of each user: ``rules.UserState``."""

forensic_rule_sources = Table(
    "forensic_rule_sources",
    metadata,
    Column("data_source_id", String(24), primary_key=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("credential_type", String(16), nullable=False),
    Column("is_everyone", Boolean, nullable=False),
    Column("accesses", BigInteger, nullable=False),
    Column("run_types", Text, nullable=False),  # JSON array ("": outside any run)
    Column("transfer_seq", BigInteger, nullable=False),
    Column("transfer_ms", BigInteger, nullable=False),
    Column("transfer_from", String(24), nullable=False),
    Column("transfer_to", String(24), nullable=False),
    Column("refusals", Text, nullable=False),  # JSON [[ts, seq, user id], ...]
    Column("burst_until", BigInteger, nullable=False),
    Column("grants_recorded", Boolean, nullable=False, server_default=false()),
)
"""The rules' state of each data source: ``rules.SourceState``."""
