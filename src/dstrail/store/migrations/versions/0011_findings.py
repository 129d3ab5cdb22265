"""Findings of the detection rules, and the state each rule keeps between events.

``forensic_findings`` and the ``forensic_rule_*`` tables are derived from the trail by the
forensics follower, in the transaction that moves its cursor; a rebuild empties and refills
them. ``forensic_finding_events`` holds what the trail records of each finding (the seq of
its ``ForensicFindingRaised`` event, its acknowledgement): a rebuild leaves it alone, and the
findings it finds again (same ids) keep it.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "forensic_findings",
        sa.Column("id", sa.String(24), primary_key=True),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("user_id", sa.String(24), nullable=False),
        sa.Column("username", sa.String(128), nullable=False),
        sa.Column("data_source_id", sa.String(24), nullable=False),
        sa.Column("data_source_name", sa.String(128), nullable=False),
        sa.Column("run_id", sa.String(24), nullable=False),
        sa.Column("seqs", sa.Text, nullable=False),
        sa.Column("first_seq", sa.BigInteger, nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("ts_ms", sa.BigInteger, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
    )
    # Newest first (keyset: the seq of the event that fired each, then id), narrowed by time,
    # rule, user or data source.
    op.create_index("ix_forensic_findings_seq", "forensic_findings", ["last_seq", "id"])
    op.create_index("ix_forensic_findings_ts", "forensic_findings", ["ts_ms"])
    op.create_index("ix_forensic_findings_rule", "forensic_findings", ["rule", "ts_ms"])
    op.create_index("ix_forensic_findings_user", "forensic_findings", ["user_id", "ts_ms"])
    op.create_index("ix_forensic_findings_ds", "forensic_findings", ["data_source_id", "ts_ms"])
    op.create_table(
        "forensic_finding_events",
        sa.Column("finding_id", sa.String(24), primary_key=True),
        sa.Column("raised_seq", sa.BigInteger, nullable=True),
        sa.Column("raised_ms", sa.BigInteger, nullable=True),
        sa.Column("ack_by", sa.String(24), nullable=True),
        sa.Column("ack_username", sa.String(128), nullable=True),
        sa.Column("ack_ms", sa.BigInteger, nullable=True),
        sa.Column("ack_note", sa.Text, nullable=True),
        sa.Column("ack_seq", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "forensic_rule_pairs",
        sa.Column("pair", sa.String(48), primary_key=True),
        sa.Column("last_ms", sa.BigInteger, nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("hour", sa.BigInteger, nullable=False),
        sa.Column("hour_count", sa.Integer, nullable=False),
        sa.Column("hour_first_seq", sa.BigInteger, nullable=False),
        sa.Column("hour_fired", sa.Boolean, nullable=False),
        sa.Column("peak", sa.Integer, nullable=False),
        sa.Column("peak_hour", sa.BigInteger, nullable=False),
        sa.Column("hours", sa.Integer, nullable=False),
        sa.Column("alarm_hour", sa.BigInteger, nullable=False),
        sa.Column("lost_seq", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "forensic_rule_users",
        sa.Column("user_id", sa.String(24), primary_key=True),
        sa.Column("hours", sa.Text, nullable=False),
        sa.Column("slots", sa.Integer, nullable=False),
        sa.Column("days", sa.Integer, nullable=False),
        sa.Column("last_slot", sa.BigInteger, nullable=False),
        sa.Column("unusual_ms", sa.BigInteger, nullable=False),
        sa.Column("refusals", sa.Text, nullable=False),
        sa.Column("burst_until", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "forensic_rule_sources",
        sa.Column("data_source_id", sa.String(24), primary_key=True),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("credential_type", sa.String(16), nullable=False),
        sa.Column("is_everyone", sa.Boolean, nullable=False),
        sa.Column("accesses", sa.BigInteger, nullable=False),
        sa.Column("run_types", sa.Text, nullable=False),
        sa.Column("transfer_seq", sa.BigInteger, nullable=False),
        sa.Column("transfer_ms", sa.BigInteger, nullable=False),
        sa.Column("transfer_from", sa.String(24), nullable=False),
        sa.Column("transfer_to", sa.String(24), nullable=False),
        sa.Column("refusals", sa.Text, nullable=False),
        sa.Column("burst_until", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "forensic_rule_sources",
        "forensic_rule_users",
        "forensic_rule_pairs",
        "forensic_finding_events",
        "forensic_findings",
    ):
        op.drop_table(table)
