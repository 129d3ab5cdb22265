"""Audit integrity: a Merkle leaf per event, complete subtree hashes, the frontier, checkpoints.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from dstrail.domain.trail import event_leaf
from dstrail.domain.trail.merkle import append_leaf, pack_frontier

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

APPEND_ONLY_TABLES = ("audit_merkle_nodes", "audit_checkpoints")


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.add_column("audit_events", sa.Column("leaf_hash", sa.LargeBinary, nullable=True))
    op.add_column("audit_head", sa.Column("frontier", sa.LargeBinary, nullable=True))
    op.add_column(
        "audit_head",
        sa.Column("checkpoint_size", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.add_column(
        "audit_head",
        sa.Column("checkpoint_ms", sa.BigInteger, nullable=False, server_default="0"),
    )
    # Hashes of complete subtrees, level >= 1 (level 0 is audit_events.leaf_hash).
    op.create_table(
        "audit_merkle_nodes",
        sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("tree_size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("root_hash", sa.LargeBinary, nullable=False),
        sa.Column("timestamp_ms", sa.BigInteger, nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("signature", sa.LargeBinary, nullable=False),
    )
    _backfill(sqlite)
    for table in APPEND_ONLY_TABLES:
        if sqlite:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END"
                )
        else:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
            )


def _backfill(sqlite: bool) -> None:
    """Leaves, nodes and frontier for events written before this revision."""
    bind = op.get_bind()
    # The columns of an event as this revision knows them (frozen: later revisions may add more).
    rows = bind.execute(
        sa.text(
            "SELECT data_source_id, data_source_name, data_source_type, event_kind, metadata, "
            "performed_by, ts_ms, seq FROM audit_events ORDER BY seq"
        )
    ).all()
    if not rows:
        return
    if sqlite:
        op.execute("DROP TRIGGER audit_events_no_update")
    else:
        op.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
    frontier: list[bytes] = []
    for size, row in enumerate(rows):
        leaf = event_leaf(tuple(row))
        bind.execute(
            sa.text("UPDATE audit_events SET leaf_hash = :leaf WHERE seq = :seq"),
            {"leaf": leaf, "seq": row.seq},
        )
        frontier, completed = append_leaf(frontier, size, leaf)
        for level, index, value in completed:
            bind.execute(
                sa.text("INSERT INTO audit_merkle_nodes (level, idx, hash) VALUES (:l, :i, :h)"),
                {"l": level, "i": index, "h": value},
            )
    bind.execute(
        sa.text("UPDATE audit_head SET frontier = :f WHERE id = 1"),
        {"f": pack_frontier(frontier)},
    )
    if sqlite:
        op.execute(
            "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
            "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END"
        )
    else:
        op.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")


def downgrade() -> None:
    raise NotImplementedError("the audit trail is append-only; restore from a backup instead")
