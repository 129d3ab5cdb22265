"""Indexes for the audit API's user, project and run filters, each led by the filter, then time.

Without them a six-month read filtered by one user or project scans every event of the window
(5-13 s at 10M events); ``ix_audit_run`` (run id alone) could not bound a window either.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_user_ts", "audit_events", ["performed_by", "ts_ms", "seq"])
    op.create_index("ix_audit_project_ts", "audit_events", ["project_id", "ts_ms", "seq"])
    op.create_index("ix_audit_run_ts", "audit_events", ["run_id", "ts_ms", "seq"])
    op.drop_index("ix_audit_run", "audit_events")


def downgrade() -> None:
    op.create_index("ix_audit_run", "audit_events", ["run_id"])
    op.drop_index("ix_audit_run_ts", "audit_events")
    op.drop_index("ix_audit_project_ts", "audit_events")
    op.drop_index("ix_audit_user_ts", "audit_events")
