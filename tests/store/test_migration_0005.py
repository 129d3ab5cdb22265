"""Migration 0005 fills in the project links of data sources attached before it from the trail:
who added each to the project and when (its latest ``DataSourceAssociatedToProject``) and its
last access from a run of the project (its latest ``AccessDataSource`` there)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from dstrail.context import Dstrail
from dstrail.domain.datasources import Permissions, ProjectLink
from dstrail.services import datasources as ds_service
from dstrail.store.engine import MIGRATIONS_DIR
from tests.services.support import make_project, start_run
from tests.services.test_access import use
from tests.support import Login, SettableClock, create_dataset


def _migrate(dstrail: Dstrail, action: str, revision: str) -> None:
    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with dstrail.store.engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)


def _links(dstrail: Dstrail, data_source_id: str) -> tuple[ProjectLink, ...]:
    with dstrail.store.read() as tx:
        stored = tx.data_sources.by_id(data_source_id)
        locked = tx.data_sources.by_id(data_source_id, for_update=True)  # the other read
    assert stored is not None and locked is not None
    assert stored.project_links == locked.project_links
    return stored.project_links


def test_links_from_before_0005_are_filled_in_from_the_trail(
    dstrail: Dstrail, clock: SettableClock, alice: Login, bob: Login
) -> None:
    ds = create_dataset(
        dstrail, alice, "files", permissions=Permissions(is_everyone=False, user_ids=(bob.id,))
    )
    used, unused = make_project(dstrail, bob, "used"), make_project(dstrail, alice, "unused")
    attached_at = {}
    for login, project in ((bob, used), (alice, unused)):
        clock.advance(1000)
        with dstrail.change() as tx:
            ds_service.attach_to_project(
                tx, data_source_id=ds.id, project_id=project.id, actor=login.user,
                now_ms=clock(),
            )  # fmt: skip
        attached_at[project.id] = clock()
    run = start_run(dstrail, bob, used).run
    for _ in range(2):
        clock.advance(1000)
        use(dstrail, ds, api_key=bob.api_key, run_id=run.id)
    last_use = clock()
    clock.advance(1000)
    use(dstrail, ds, api_key=bob.api_key)  # from no run: no project's access
    expected = [
        ProjectLink(project_id=used.id, added_by=bob.id, added_at_ms=attached_at[used.id],
                    last_accessed_ms=last_use),
        ProjectLink(project_id=unused.id, added_by=alice.id,
                    added_at_ms=attached_at[unused.id], last_accessed_ms=0),
    ]  # fmt: skip
    expected.sort(key=lambda link: link.project_id)
    assert _links(dstrail, ds.id) == tuple(expected)  # kept as they happen

    _migrate(dstrail, "downgrade", "0004")
    with dstrail.store.engine.connect() as connection:
        columns = connection.execute(text("SELECT * FROM data_source_projects")).keys()
    assert list(columns) == ["data_source_id", "project_id"]
    _migrate(dstrail, "upgrade", "head")
    assert _links(dstrail, ds.id) == tuple(expected)  # rebuilt from the trail
    with dstrail.store.read() as tx:
        stored = tx.data_sources.by_id(ds.id)
    assert stored is not None and stored.config_overwrites_allowed is True
