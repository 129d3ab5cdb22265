"""The findings list's filters read their index in the list's order.

A page of findings is newest first (``last_seq``, then ``id``). The indexes of 0011 by rule,
user and data source were in time order: a filter matching many findings had all of them read
and sorted for one page. Each filter (rule, user id, username, data source id, data source
name) now has an index in the list's order, so a page reads its rows and stops.

Revision ID: 0013
Revises: 0012
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_OLD = {
    "ix_forensic_findings_rule": "rule",
    "ix_forensic_findings_user": "user_id",
    "ix_forensic_findings_ds": "data_source_id",
}
_NEW = {
    "ix_forensic_findings_rule_seq": "rule",
    "ix_forensic_findings_user_seq": "user_id",
    "ix_forensic_findings_username_seq": "username",
    "ix_forensic_findings_ds_seq": "data_source_id",
    "ix_forensic_findings_ds_name_seq": "data_source_name",
}


def upgrade() -> None:
    for name in _OLD:
        op.drop_index(name, table_name="forensic_findings")
    for name, column in _NEW.items():
        op.create_index(name, "forensic_findings", [column, "last_seq", "id"])


def downgrade() -> None:
    for name in _NEW:
        op.drop_index(name, table_name="forensic_findings")
    for name, column in _OLD.items():
        op.create_index(name, "forensic_findings", [column, "ts_ms"])
