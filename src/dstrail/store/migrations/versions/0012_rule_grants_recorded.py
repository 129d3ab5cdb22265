"""The rules know which data sources the trail holds with their initial grants.

``forensic_rule_sources.grants_recorded``: whether the trail holds the data source's
``CreateDataSource`` with the grants it was created with (``ownerId``, ``userIds``). Only for
those can ``accessWithoutGrant`` say that a user had no grant: a data source created before
the trail recorded initial grants (an upgraded installation) or whose creation was purged has
grants the trail never saw. Rows derived before this revision are filled in from the trail.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "forensic_rule_sources",
        sa.Column("grants_recorded", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.execute(
        "UPDATE forensic_rule_sources SET grants_recorded = EXISTS ("
        "SELECT 1 FROM audit_events e WHERE e.data_source_id = forensic_rule_sources.data_source_id "
        "AND e.event_kind = 'CreateDataSource' AND e.metadata LIKE '%\"ownerId\":%')"
    )


def downgrade() -> None:
    op.drop_column("forensic_rule_sources", "grants_recorded")
