"""A data source's switch for per-call config overwrites, and its place in each project.

``data_sources.config_overwrites_allowed`` (on, as on Domino); ``data_source_projects`` gains
who added the data source to the project and when, and its last granted access from a run of
that project. Existing links are filled in from the trail: the latest
``DataSourceAssociatedToProject`` of the pair, and the latest ``AccessDataSource`` of the pair.

Revision ID: 0005
Revises: 0004
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "data_sources",
        sa.Column(
            "config_overwrites_allowed", sa.Boolean, nullable=False, server_default=sa.true()
        ),
    )
    op.add_column(
        "data_source_projects",
        sa.Column("added_by", sa.String(24), nullable=False, server_default=""),
    )
    for name in ("added_at", "last_accessed"):
        op.add_column(
            "data_source_projects",
            sa.Column(name, sa.BigInteger, nullable=False, server_default="0"),
        )
    _fill_links_from_the_trail()


def _fill_links_from_the_trail() -> None:
    bind = op.get_bind()
    links = {tuple(row) for row in bind.execute(sa.text(
        "SELECT data_source_id, project_id FROM data_source_projects"
    ))}  # fmt: skip
    if not links:
        return
    added: dict[tuple[str, str], tuple[str, int]] = {}
    for ds_id, performed_by, ts_ms, metadata in bind.execute(sa.text(
        "SELECT data_source_id, performed_by, ts_ms, metadata FROM audit_events "
        "WHERE event_kind = 'DataSourceAssociatedToProject' ORDER BY seq"
    )):  # fmt: skip
        project_id = json.loads(metadata).get("projectId", "")
        added[(ds_id, project_id)] = (performed_by, int(ts_ms))
    accessed = {
        (ds_id, project_id): int(ts_ms)
        for ds_id, project_id, ts_ms in bind.execute(sa.text(
            "SELECT data_source_id, project_id, max(ts_ms) FROM audit_events "
            "WHERE event_kind = 'AccessDataSource' AND project_id IS NOT NULL "
            "GROUP BY data_source_id, project_id"
        ))
    }  # fmt: skip
    rows = [
        {
            "ds": ds_id,
            "project": project_id,
            "by": added.get((ds_id, project_id), ("", 0))[0],
            "at": added.get((ds_id, project_id), ("", 0))[1],
            "last": accessed.get((ds_id, project_id), 0),
        }
        for ds_id, project_id in sorted(links)
    ]
    bind.execute(
        sa.text(
            "UPDATE data_source_projects SET added_by = :by, added_at = :at, "
            "last_accessed = :last WHERE data_source_id = :ds AND project_id = :project"
        ),
        rows,
    )


def downgrade() -> None:
    for name in ("last_accessed", "added_at", "added_by"):
        op.drop_column("data_source_projects", name)
    op.drop_column("data_sources", "config_overwrites_allowed")
