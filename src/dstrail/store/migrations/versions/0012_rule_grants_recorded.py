"""The rules know which data sources the trail holds with their initial grants.

``forensic_rule_sources.grants_recorded``: whether the data source's ``CreateDataSource`` in
the trail carries the grants it was created with (``ownerId``, ``userIds``). For one created
before the trail recorded them, ``accessWithoutGrant`` cannot say that a user had no grant;
and once the trail holds such a creation, users may predate ``UserCreated`` too
(``ix_forensic_rule_sources_before_grants`` finds one at once).

Rows derived before this revision are filled in from the creations the trail still holds
(read by ``ix_audit_kind_ts``); a data source whose creation has been purged is taken as
created without them. Findings raised before stay: ``dstrail forensics rebuild`` derives
them again under the rule as it now stands.

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
        "UPDATE forensic_rule_sources SET grants_recorded = data_source_id IN ("
        "SELECT data_source_id FROM audit_events WHERE event_kind = 'CreateDataSource' "
        "AND metadata LIKE '%\"ownerId\":%')"
    )
    op.create_index(
        "ix_forensic_rule_sources_before_grants",
        "forensic_rule_sources",
        ["data_source_id"],
        sqlite_where=sa.text("created_ms >= 0 AND NOT grants_recorded"),
        postgresql_where=sa.text("created_ms >= 0 AND NOT grants_recorded"),
    )


def downgrade() -> None:
    op.drop_index("ix_forensic_rule_sources_before_grants", table_name="forensic_rule_sources")
    op.drop_column("forensic_rule_sources", "grants_recorded")
