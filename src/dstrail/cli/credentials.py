"""``datasources credentials set``: store a data source's credentials from the operator CLI.

::

    dstrail datasources credentials set NAME [--user USERNAME] --field KEY=VALUE [--field KEY]...

``Individual`` data sources: ``--user`` names whose credentials these are (required).
``Shared`` ones: the one service account; ``--user`` (default: the owner) is recorded as who
set them. ``--field KEY`` without a value reads the value from the terminal without echo (or
one line of stdin), so secrets stay out of the shell history and the process list. Values are
encrypted at rest and never printed; the output names the fields only.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from dstrail.api.schemas import credentials_stored
from dstrail.cli.common import Subparsers, add_command, open_from, print_json, subcommands
from dstrail.errors import InvalidInput
from dstrail.services import credentials as credential_service


def register(commands: Subparsers) -> None:
    """Add the commands of this family."""
    datasources = subcommands(commands, "datasources", "data sources")
    credentials = subcommands(datasources, "credentials", "credentials of data sources")
    set_command = add_command(
        credentials, "set", _set, "store credentials (encrypted; never printed)"
    )
    set_command.add_argument("name", help="the data source's name")
    set_command.add_argument(
        "--user",
        metavar="USERNAME",
        help="Individual: whose credentials; Shared: who sets them (default: the owner)",
    )
    set_command.add_argument(
        "--field",
        action="append",
        default=[],
        required=True,
        metavar="KEY[=VALUE]",
        help="a credential field, e.g. username=svc; KEY alone prompts for the value",
    )


def _read_secret(key: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(f"{key}: ")
    return sys.stdin.readline().rstrip("\n")


def _fields(items: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for item in items:
        key, has_value, value = item.partition("=")
        if not key:
            raise InvalidInput("--field: expected KEY=VALUE or KEY")
        values[key] = value if has_value else _read_secret(key)
    return values


def _set(args: argparse.Namespace) -> int:
    values = _fields(args.field)
    dstrail = open_from(args)
    with dstrail.change() as tx:
        stored = credential_service.set_credentials_by_name(
            tx, dstrail.vault, name=args.name, username=args.user, credentials=values,
            now_ms=dstrail.clock(),
        )  # fmt: skip
    print_json({"name": stored.data_source.name, **credentials_stored(stored)})
    return 0
