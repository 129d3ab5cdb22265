"""Merkle subtree hashes move into the row of the event that completes them.

Node (level L >= 1, index i) is completed by event seq (i + 1) * 2^L; that event's
``subtree_hashes`` holds the hashes of levels 1, 2... it completes, concatenated. An append
then writes no row outside the event's own (one B-tree page less for every other event), and
a node is read by the event's primary key. ``audit_merkle_nodes`` is copied over and dropped.

Revision ID: 0003
Revises: 0002
"""

from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BATCH = 10_000


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.add_column("audit_events", sa.Column("subtree_hashes", sa.LargeBinary, nullable=True))
    _copy_nodes(sqlite)
    if sqlite:
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS audit_merkle_nodes_no_{action}")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_merkle_nodes_append_only ON audit_merkle_nodes")
    op.drop_table("audit_merkle_nodes")


def _copy_nodes(sqlite: bool) -> None:
    bind = op.get_bind()
    by_seq: dict[int, dict[int, bytes]] = defaultdict(dict)
    for level, index, value in bind.execute(
        sa.text("SELECT level, idx, hash FROM audit_merkle_nodes")
    ):
        by_seq[(int(index) + 1) << int(level)][int(level)] = bytes(value)
    if not by_seq:
        return
    if sqlite:
        op.execute("DROP TRIGGER audit_events_no_update")
    else:
        op.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
    rows = [
        {"seq": seq, "hashes": _levels_from_one(levels)} for seq, levels in sorted(by_seq.items())
    ]
    update = sa.text("UPDATE audit_events SET subtree_hashes = :hashes WHERE seq = :seq")
    for start in range(0, len(rows), _BATCH):
        bind.execute(update, rows[start : start + _BATCH])
    if sqlite:
        op.execute(
            "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
            "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END"
        )
    else:
        op.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")


def _levels_from_one(levels: dict[int, bytes]) -> bytes:
    """Levels 1, 2... up to the first missing one (a gap would shift every level after it)."""
    hashes, level = b"", 1
    while level in levels:
        hashes, level = hashes + levels[level], level + 1
    return hashes


def downgrade() -> None:
    raise NotImplementedError("the audit trail is append-only; restore from a backup instead")
