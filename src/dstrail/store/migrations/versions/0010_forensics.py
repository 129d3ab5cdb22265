"""Forensics: who could reach which data source when (grants by seq interval), the users and
data sources the trail names, and the cursor of the follower that derives them from the trail.

The derived tables are rebuilt from the trail alone (``dstrail forensics rebuild``): the
follower replays from event 1, or from the oldest event a retention purge kept. Timelines of a
user, a run or a data source read the trail in sequence order: three indexes lead with the
subject, then ``seq`` (the existing ones lead with the subject, then time). On PostgreSQL they
are made on the partitioned ``audit_events``, which gives them to every partition.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")

_AUDIT_INDEXES = {
    "ix_audit_user_seq": ["performed_by", "seq"],
    "ix_audit_run_seq": ["run_id", "seq"],
    "ix_audit_ds_seq": ["data_source_id", "seq"],
}


def upgrade() -> None:
    op.create_table(
        "forensics_state",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("cursor_seq", sa.BigInteger, nullable=False),
        sa.Column("first_seq", sa.BigInteger, nullable=False),
        sa.Column("replay_through", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.execute(
        "INSERT INTO forensics_state (id, cursor_seq, first_seq, replay_through, updated_at) "
        "VALUES (1, 0, 1, 0, 0)"
    )
    op.create_table(
        "forensic_grants",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("data_source_id", sa.String(24), nullable=False),
        sa.Column("data_source_name", sa.String(128), nullable=False),
        sa.Column("via", sa.String(8), nullable=False),
        sa.Column("subject_id", sa.String(24), nullable=False),
        sa.Column("subject_name", sa.String(256), nullable=False),
        sa.Column("granted_seq", sa.BigInteger, nullable=False),
        sa.Column("granted_ms", sa.BigInteger, nullable=False),
        sa.Column("granted_by", sa.String(24), nullable=False),
        sa.Column("granted_kind", sa.String(64), nullable=False),
        sa.Column("revoked_seq", sa.BigInteger, nullable=True),
        sa.Column("revoked_ms", sa.BigInteger, nullable=True),
        sa.Column("revoked_by", sa.String(24), nullable=True),
        sa.Column("revoked_kind", sa.String(64), nullable=True),
    )
    # A data source's grants (all of them, or of one kind); a user's or project's; every
    # everyone-share (the in-force test read from the index); the open grants the follower
    # closes; grant changes of a user by the seq that revoked them (timelines).
    op.create_index(
        "ix_forensic_grants_ds", "forensic_grants", ["data_source_id", "via", "granted_seq"]
    )
    op.create_index("ix_forensic_grants_subject", "forensic_grants", ["subject_id", "granted_seq"])
    op.create_index(
        "ix_forensic_grants_subject_revoked", "forensic_grants", ["subject_id", "revoked_seq"]
    )
    op.create_index(
        "ix_forensic_grants_via", "forensic_grants", ["via", "granted_seq", "revoked_seq"]
    )
    op.create_index(
        "ix_forensic_grants_open",
        "forensic_grants",
        ["data_source_id"],
        sqlite_where=sa.text("revoked_seq IS NULL"),
        postgresql_where=sa.text("revoked_seq IS NULL"),
    )
    op.create_table(
        "forensic_users",
        sa.Column("user_id", sa.String(24), primary_key=True),
        sa.Column("username", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_seq", sa.BigInteger, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_forensic_users_created", "forensic_users", ["created_seq"])
    op.create_index("ix_forensic_users_username", "forensic_users", ["username"])
    op.create_table(
        "forensic_data_sources",
        sa.Column("data_source_id", sa.String(24), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("data_source_type", sa.String(64), nullable=False),
        sa.Column("first_seq", sa.BigInteger, nullable=False),
        sa.Column("created_seq", sa.BigInteger, nullable=True),
        sa.Column("created_ms", sa.BigInteger, nullable=True),
        sa.Column("deleted_seq", sa.BigInteger, nullable=True),
        sa.Column("deleted_ms", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_forensic_ds_name", "forensic_data_sources", ["name", "first_seq"])
    for name, columns in _AUDIT_INDEXES.items():
        op.create_index(name, "audit_events", columns)


def downgrade() -> None:
    for name in _AUDIT_INDEXES:
        op.drop_index(name, table_name="audit_events")
    op.drop_table("forensic_data_sources")
    op.drop_table("forensic_users")
    op.drop_table("forensic_grants")
    op.drop_table("forensics_state")
