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

from dstrail.cli.common import Subparsers, add_command, open_from, print_json
from dstrail.domain.datasources import CredentialType, can_use
from dstrail.errors import Forbidden, InvalidInput, NotFound
from dstrail.services import access
from dstrail.services import users as user_service
from dstrail.services.credentials import CredentialVault


def _subcommands(commands: Subparsers, name: str, help_text: str) -> Subparsers:
    """The sub-commands of ``name``, created or (when another family made it) reused."""
    parser = commands.choices.get(name)
    if parser is None:
        parser = commands.add_parser(name, help=help_text)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return parser.add_subparsers(dest=f"{name}_command", required=True, metavar="COMMAND")


def register(commands: Subparsers) -> None:
    """Add the commands of this family."""
    datasources = _subcommands(commands, "datasources", "data sources")
    credentials = _subcommands(datasources, "credentials", "credentials of data sources")
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
    with dstrail.store.write() as tx:
        ds = tx.data_sources.active_by_name(args.name)
        if ds is None:
            raise NotFound(f"no data source named {args.name!r}")
        if ds.credential_type is CredentialType.INDIVIDUAL:
            if not args.user:
                raise InvalidInput(
                    f"--user: data source {ds.name!r} uses Individual credentials; "
                    "name whose they are"
                )
            holder = user_service.require_user(tx, username=args.user, field="--user")
            if not can_use(ds, holder):
                raise Forbidden(f"user {holder.username!r} may not use data source {ds.name!r}")
            actor = holder
        else:
            holder = None
            if args.user:
                actor = user_service.require_user(tx, username=args.user, field="--user")
            else:
                owner = tx.users.by_id(ds.owner_id)
                if owner is None:
                    raise NotFound(f"the owner of {ds.name!r} no longer exists; pass --user")
                actor = owner
        summary = access.set_credentials(
            tx,
            CredentialVault(dstrail.keys.encryption_key),
            data_source_id=ds.id,
            actor=actor,
            holder_id=holder.id if holder else None,
            credentials=values,
            now_ms=dstrail.clock(),
            via="cli",
        )
    print_json({"name": ds.name, **summary})
    return 0
