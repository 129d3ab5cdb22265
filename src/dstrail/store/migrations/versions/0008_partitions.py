"""PostgreSQL: the audit trail partitioned by month (SQLite: nothing changes).

``audit_events`` becomes a table partitioned by range of ``ts_ms`` (epoch ms, UTC), one
partition a calendar month (``audit_events_pYYYYMM``) and a default one
(``audit_events_pdefault``) for an event of a month that has none yet: a retention purge
drops whole months, and a read of a window scans only the months it covers. Its primary key
becomes (seq, ts_ms): a partitioned table's unique keys include its partition key (the head
lock still numbers events densely, one seq each). The indexes and the append-only trigger are
made again on the new table, which gives them to every partition, present and future.

The events move over as they are (hashes included) into partitions from the oldest event's
month through two months ahead; ``store/partitions.py`` keeps months ahead from then on.
Row triggers on a partitioned table need PostgreSQL 13 or newer. The downgrade copies the
events back into one table.

Revision ID: 0008
Revises: 0007
"""

import time

import sqlalchemy as sa
from alembic import op

from dstrail.store.partitions import ensure_partitions

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_OLD = "audit_events_unpartitioned"
_PARTITIONED = "audit_events_partitioned"

# The columns and indexes of audit_events as 0001-0007 left them (frozen here).
_COLUMNS = (
    "seq, ts_ms, event_kind, data_source_id, data_source_name, data_source_type, performed_by, "
    "performed_by_username, run_id, project_id, metadata, leaf_hash, subtree_hashes"
)
_INDEXES = {
    "ix_audit_ts": ["ts_ms", "seq"],
    "ix_audit_name_ts": ["data_source_name", "ts_ms", "seq"],
    "ix_audit_kind_ts": ["event_kind", "ts_ms", "seq"],
    "ix_audit_ds_id_ts": ["data_source_id", "ts_ms"],
    "ix_audit_user_ts": ["performed_by", "ts_ms", "seq"],
    "ix_audit_project_ts": ["project_id", "ts_ms", "seq"],
    "ix_audit_run_ts": ["run_id", "ts_ms", "seq"],
}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    version = int(bind.execute(sa.text("SHOW server_version_num")).scalar_one())
    if version < 130000:
        raise RuntimeError(
            "dstrail needs PostgreSQL 13 or newer (row triggers on partitioned tables); "
            f"this server is version {version // 10000}"
        )
    _step_aside(_OLD)
    op.create_table(
        "audit_events",
        *_columns(),
        sa.PrimaryKeyConstraint("seq", "ts_ms", name="audit_events_pkey"),
        postgresql_partition_by="RANGE (ts_ms)",
    )
    oldest = bind.execute(sa.text(f"SELECT min(ts_ms) FROM {_OLD}")).scalar()
    ensure_partitions(bind, now_ms=time.time_ns() // 1_000_000, since_ms=oldest)
    _fill_from(_OLD)


def downgrade() -> None:
    """Back to one table (nothing is lost: the same rows, keyed by seq alone)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    _step_aside(_PARTITIONED)
    op.create_table(
        "audit_events",
        *_columns(),
        sa.PrimaryKeyConstraint("seq", name="audit_events_pkey"),
    )
    _fill_from(_PARTITIONED)


def _columns() -> list[sa.Column[object]]:
    return [
        sa.Column("seq", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("ts_ms", sa.BigInteger, nullable=False),
        sa.Column("event_kind", sa.String(64), nullable=False),
        sa.Column("data_source_id", sa.String(24), nullable=False),
        sa.Column("data_source_name", sa.String(128), nullable=False),
        sa.Column("data_source_type", sa.String(64), nullable=False),
        sa.Column("performed_by", sa.String(24), nullable=False),
        sa.Column("performed_by_username", sa.String(128), nullable=False),
        sa.Column("run_id", sa.String(24), nullable=True),
        sa.Column("project_id", sa.String(24), nullable=True),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary, nullable=True),
        sa.Column("subtree_hashes", sa.LargeBinary, nullable=True),
    ]


def _step_aside(name: str) -> None:
    """Rename ``audit_events`` to ``name``, freeing the names of its key and indexes."""
    op.rename_table("audit_events", name)
    op.execute(f"ALTER TABLE {name} DROP CONSTRAINT audit_events_pkey")
    for index in _INDEXES:
        op.drop_index(index, table_name=name)


def _fill_from(name: str) -> None:
    """Copy the events of ``name`` into the new ``audit_events``, then give it its indexes
    (built once per partition rather than kept up row by row) and its append-only trigger,
    and drop ``name``."""
    op.execute(f"INSERT INTO audit_events ({_COLUMNS}) SELECT {_COLUMNS} FROM {name}")
    for index, columns in _INDEXES.items():
        op.create_index(index, "audit_events", columns)
    op.execute(
        "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
    )
    op.drop_table(name)
    op.execute("ANALYZE audit_events")
