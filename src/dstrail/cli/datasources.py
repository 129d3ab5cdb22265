"""``datasources overwrites``: whether calls may overwrite a data source's config.

::

    dstrail datasources overwrites NAME allow|forbid

Calls of the data path may send ``configOverwrites`` (the keys Domino accepts for the type: a
bucket, region, subfolder, database...); each one is recorded in its access event. ``forbid``
refuses them from then on (each refusal recorded); ``allow`` is the default, as on Domino.
The change is recorded as ``UpdateDataSource``, made by ``operator``.
"""

from __future__ import annotations

import argparse

from dstrail.cli.common import Subparsers, add_command, open_from, print_json, subcommands
from dstrail.domain.users import OPERATOR
from dstrail.services import datasources as ds_service

_CHOICES = {"allow": True, "forbid": False}


def register(commands: Subparsers) -> None:
    """Add the commands of this family."""
    datasources = subcommands(commands, "datasources", "data sources")
    command = add_command(
        datasources, "overwrites", _set, "allow or forbid per-call config overwrites"
    )
    command.add_argument("name", help="the data source's name")
    command.add_argument("choice", choices=sorted(_CHOICES), help="allow (default) or forbid")


def _set(args: argparse.Namespace) -> int:
    dstrail = open_from(args)
    with dstrail.change() as tx:
        updated = ds_service.allow_config_overwrites_by_name(
            tx, dstrail.vault, name=args.name, allowed=_CHOICES[args.choice], actor=OPERATOR,
            now_ms=dstrail.clock(),
        )  # fmt: skip
    print_json({"name": updated.name, "configOverwritesAllowed": updated.config_overwrites_allowed})
    return 0
