"""A store whose rules' state was derived before the rules knew which data sources the trail
holds with their initial grants: the migration fills that in from the trail, as the follower
would have, and the integrity alarm then holds back for the data sources it cannot judge."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from dstrail.context import Dstrail
from dstrail.domain.forensics.findings import Rule
from dstrail.store.engine import MIGRATIONS_DIR
from tests.forensics.findings_scenes import HOUR, Scene
from tests.support import SettableClock


def _grants_recorded(dstrail: Dstrail) -> dict[str, bool]:
    with dstrail.store.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT data_source_id, grants_recorded FROM forensic_rule_sources")
        )
        return {str(ds_id): bool(recorded) for ds_id, recorded in rows}


def _migrate(dstrail: Dstrail, *, down_to: str) -> None:
    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with dstrail.store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, down_to)
        command.upgrade(config, "head")


def test_the_migration_fills_in_what_the_follower_derives(
    dstrail: Dstrail, clock: SettableClock
) -> None:
    scene = Scene(dstrail, clock)
    alice, bob = scene.user("alice"), scene.user("bob")
    recorded = scene.dataset(alice, "recorded")
    old_format = scene.legacy_dataset(alice, "oldformat")
    public = scene.dataset(alice, "public", everyone=True)
    scene.later(HOUR)
    scene.use(alice, recorded)
    scene.forged_access(alice, old_format)
    assert scene.findings(Rule.ACCESS_WITHOUT_GRANT) == []
    derived = _grants_recorded(dstrail)
    assert derived == {recorded.id: True, old_format.id: False, public.id: True}

    _migrate(dstrail, down_to="0011")  # the column is gone, then filled in from the trail
    assert _grants_recorded(dstrail) == derived

    scene.later(HOUR)
    scene.forged_access(bob, old_format)  # bob may have been listed: unknown
    # The trail holds a creation from before it recorded grants: a user it never saw created
    # may predate UserCreated, so an everyone share may have covered them.
    scene.forged_access(scene.legacy_user("olduser"), public)
    scene.forged_access(bob, recorded)  # the trail shows bob had no grant
    alarms = scene.findings(Rule.ACCESS_WITHOUT_GRANT)
    assert [(f.username, f.data_source_name) for f in alarms] == [("bob", "recorded")]
