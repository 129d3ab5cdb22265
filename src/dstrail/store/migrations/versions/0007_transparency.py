"""C2SP transparency: checkpoints as signed notes (their origin), witnesses, their
cosignatures, and the logs this instance witnesses for others.

Checkpoints signed before keep a NULL origin: they stay verifiable in their own form.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_checkpoints", sa.Column("origin", sa.String(255), nullable=True))
    op.create_table(
        "audit_witnesses",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("vkey", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("added_at", sa.BigInteger, nullable=False),
        sa.Column("added_by", sa.String(24), nullable=False),
        sa.Column("cosigned_size", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=False, server_default=""),
        sa.Column("last_attempt_at", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "audit_cosignatures",
        sa.Column("tree_size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("witness", sa.String(255), primary_key=True),
        sa.Column("key_id", sa.String(8), primary_key=True),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("signature", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "witnessed_logs",
        sa.Column("origin", sa.String(255), primary_key=True),
        sa.Column("vkey", sa.Text, nullable=False),
        sa.Column("tree_size", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("root_hash", sa.LargeBinary, nullable=True),
        sa.Column("checkpoint", sa.Text, nullable=True),
        sa.Column("updated_at", sa.BigInteger, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("witnessed_logs")
    op.drop_table("audit_cosignatures")
    op.drop_table("audit_witnesses")
    op.drop_column("audit_checkpoints", "origin")
