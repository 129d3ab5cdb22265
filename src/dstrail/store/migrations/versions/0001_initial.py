"""The initial schema: users, projects, runs, data sources, the audit trail.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(24), primary_key=True),
        sa.Column("username", sa.String(128), nullable=False, unique=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(24), primary_key=True),
        sa.Column("user_id", sa.String(24), nullable=False, index=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("label", sa.String(128), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "projects",
        sa.Column("id", sa.String(24), primary_key=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("owner_id", sa.String(24), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("owner_id", "name", name="uq_projects_owner_name"),
    )
    op.create_table(
        "project_collaborators",
        sa.Column("project_id", sa.String(24), primary_key=True),
        sa.Column("user_id", sa.String(24), primary_key=True),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(24), primary_key=True),
        sa.Column("run_type", sa.String(16), nullable=False),
        sa.Column("project_id", sa.String(24), nullable=False),
        sa.Column("user_id", sa.String(24), nullable=False),
        sa.Column("data_plane_id", sa.String(24), nullable=False),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("ended_at", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "data_sources",
        sa.Column("id", sa.String(24), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("display_name", sa.String(256), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("data_source_type", sa.String(64), nullable=False),
        sa.Column("auth_type", sa.String(64), nullable=False),
        sa.Column("credential_type", sa.String(16), nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("owner_id", sa.String(24), nullable=False),
        sa.Column("is_everyone", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("added_by", sa.String(24), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("last_updated", sa.BigInteger, nullable=False),
        sa.Column("last_updated_by", sa.String(24), nullable=False),
    )
    op.create_index(
        "uq_data_sources_active_name",
        "data_sources",
        ["name"],
        unique=True,
        sqlite_where=sa.text("status = 'Active'"),
        postgresql_where=sa.text("status = 'Active'"),
    )
    op.create_table(
        "data_source_users",
        sa.Column("data_source_id", sa.String(24), primary_key=True),
        sa.Column("user_id", sa.String(24), primary_key=True),
    )
    op.create_table(
        "data_source_projects",
        sa.Column("data_source_id", sa.String(24), primary_key=True),
        sa.Column("project_id", sa.String(24), primary_key=True),
    )
    op.create_table(
        "data_source_credentials",
        sa.Column("data_source_id", sa.String(24), primary_key=True),
        sa.Column("user_id", sa.String(24), primary_key=True),
        sa.Column("ciphertext", sa.Text, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "audit_events",
        sa.Column("seq", BIG_ID, primary_key=True, autoincrement=False),
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
    )
    # SQLite appends the rowid (seq) to every index; PostgreSQL needs it spelled out.
    op.create_index("ix_audit_ts", "audit_events", ["ts_ms", "seq"])
    op.create_index("ix_audit_name_ts", "audit_events", ["data_source_name", "ts_ms", "seq"])
    op.create_index("ix_audit_kind_ts", "audit_events", ["event_kind", "ts_ms", "seq"])
    op.create_index("ix_audit_ds_id_ts", "audit_events", ["data_source_id", "ts_ms"])
    op.create_index("ix_audit_run", "audit_events", ["run_id"])
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
    )
    op.execute("INSERT INTO audit_head (id, size) VALUES (1, 0)")
    op.create_table(
        "audit_daily_counts",
        sa.Column("day", sa.Integer, primary_key=True),
        sa.Column("event_kind", sa.String(64), primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
    )
    # The trail only grows: refuse UPDATE and DELETE on events inside the database too.
    if op.get_bind().dialect.name == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_events_no_{action.lower()} BEFORE {action} ON audit_events "
                "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END"
            )
    else:
        op.execute(
            "CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'audit events are append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
        )


def downgrade() -> None:
    raise NotImplementedError("the audit trail is append-only; restore from a backup instead")
