"""What every entry point (HTTP, console, CLI) builds once: settings, store, keys, clock."""

from __future__ import annotations

from dataclasses import dataclass

from dstrail.domain.timestamps import Clock, system_clock
from dstrail.keys import Keys, load_keys
from dstrail.settings import Settings
from dstrail.store import Store


@dataclass(frozen=True, slots=True)
class Dstrail:
    """The running service's parts, passed to routes, views and commands."""

    settings: Settings
    store: Store
    keys: Keys
    clock: Clock


def open_dstrail(
    settings: Settings, *, clock: Clock = system_clock, migrate: bool = True
) -> Dstrail:
    """Connect to the database (migrating it first) and load the keys."""
    store = Store(settings.resolved_database_url())
    if migrate:
        store.migrate()
    return Dstrail(settings=settings, store=store, keys=load_keys(settings), clock=clock)
