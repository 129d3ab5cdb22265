"""Retention: the policy (keep everything, or N days hot; a locked one only lengthens), how far
the trail has been purged, and the tree hashes of purged events (their bodies are archived).

Only the retention path may remove events, and only up to the boundary it has recorded:
``audit_retention.purge_through`` (set in the transaction that records the purge). The
append-only triggers now let a DELETE through for those rows and refuse every other one.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_REFUSE = "the audit trail is append-only; only a recorded retention purge removes events"


def upgrade() -> None:
    op.create_table(
        "audit_retention",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("days", sa.Integer, nullable=True),  # NULL: keep everything
        sa.Column("locked", sa.Boolean, nullable=False),
        sa.Column("set_at", sa.BigInteger, nullable=False),
        sa.Column("set_by", sa.String(24), nullable=False),
        sa.Column("purge_through", sa.BigInteger, nullable=False),
        sa.Column("purge_cutoff_ms", sa.BigInteger, nullable=False),
        sa.Column("removed_through", sa.BigInteger, nullable=False),
        sa.Column("last_purge_at", sa.BigInteger, nullable=True),
        sa.Column("last_archive", sa.Text, nullable=False),
    )
    op.execute(
        "INSERT INTO audit_retention (id, days, locked, set_at, set_by, purge_through, "
        "purge_cutoff_ms, removed_through, last_archive) VALUES (1, NULL, false, 0, '', 0, 0, 0, '')"
    )
    op.create_table(
        "audit_tree_hashes",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("leaf_hash", sa.LargeBinary, nullable=False),
        sa.Column("subtree_hashes", sa.LargeBinary, nullable=True),
    )
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER audit_events_no_delete")
        op.execute(
            "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
            "WHEN OLD.seq > (SELECT purge_through FROM audit_retention WHERE id = 1) "
            f"BEGIN SELECT RAISE(ABORT, '{_REFUSE}'); END"
        )
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_tree_hashes_no_{action.lower()} BEFORE {action} ON "
                f"audit_tree_hashes BEGIN SELECT RAISE(ABORT, '{_REFUSE}'); END"
            )
    else:
        op.execute(
            "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            "IF TG_OP = 'DELETE' AND OLD.seq <= "
            "(SELECT purge_through FROM audit_retention WHERE id = 1) THEN RETURN OLD; END IF; "
            f"RAISE EXCEPTION '{_REFUSE}'; END $$"
        )
        op.execute(
            "CREATE FUNCTION audit_tree_hashes_append_only() RETURNS trigger LANGUAGE plpgsql "
            f"AS $$ BEGIN RAISE EXCEPTION '{_REFUSE}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_tree_hashes_append_only BEFORE UPDATE OR DELETE ON "
            "audit_tree_hashes FOR EACH ROW EXECUTE FUNCTION audit_tree_hashes_append_only()"
        )


def downgrade() -> None:
    bind = op.get_bind()
    purged = bind.execute(sa.text("SELECT purge_through FROM audit_retention")).scalar()
    if purged:
        raise NotImplementedError(
            f"events 1-{purged} were purged: before this revision they cannot be proven; "
            "restore from a backup instead"
        )
    if bind.dialect.name == "sqlite":
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER audit_tree_hashes_no_{action}")
        op.execute("DROP TRIGGER audit_events_no_delete")
        op.execute(
            "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
            "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END"
        )
    else:
        op.execute("DROP TRIGGER audit_tree_hashes_append_only ON audit_tree_hashes")
        op.execute("DROP FUNCTION audit_tree_hashes_append_only()")
        op.execute(
            "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit events are append-only'; END $$"
        )
    op.drop_table("audit_tree_hashes")
    op.drop_table("audit_retention")
