"""What every command shares: the storage options, opening dstrail, output, errors."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import ValidationError

from dstrail.context import Dstrail, open_dstrail
from dstrail.errors import DstrailError, InvalidInput
from dstrail.settings import Settings

Handler = Callable[[argparse.Namespace], int]
if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    Subparsers = argparse._SubParsersAction

STORAGE = argparse.ArgumentParser(add_help=False)
_group = STORAGE.add_argument_group("storage")
_group.add_argument(
    "--database-url",
    default=None,
    help="sqlite:///PATH or postgresql://USER@HOST:PORT/DB (env DSTRAIL_DATABASE_URL; "
    "default: SQLite under the data directory)",
)
_group.add_argument(
    "--data-dir",
    type=Path,
    default=None,
    help="where embedded data and keys live (env DSTRAIL_DATA_DIR; default ./dstrail-data)",
)


def add_command(
    commands: Subparsers, name: str, handler: Handler, help_text: str
) -> argparse.ArgumentParser:
    """A leaf command that takes the storage options."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name, parents=[STORAGE], help=help_text, description=help_text
    )
    parser.set_defaults(handler=handler)
    return parser


def subcommands(commands: Subparsers, name: str, help_text: str) -> Subparsers:
    """The sub-commands of ``name``, created or (when another family made it) reused."""
    parser = commands.choices.get(name)
    if parser is None:
        parser = commands.add_parser(name, help=help_text)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return parser.add_subparsers(dest=f"{name}_command", required=True, metavar="COMMAND")


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from the environment, overridden by the flags given."""
    overrides: dict[str, Any] = {}
    if getattr(args, "database_url", None):
        overrides["database_url"] = args.database_url
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = args.data_dir
    return Settings(**overrides)


def open_from(args: argparse.Namespace) -> Dstrail:
    """Open (and migrate) the database the flags name."""
    return open_dstrail(settings_from(args))


def print_json(value: object) -> None:
    """One JSON object on stdout."""
    sys.stdout.write(orjson.dumps(value).decode() + "\n")


def run_command(args: argparse.Namespace) -> int:
    """Run a parsed command; a known error becomes one line on stderr and exit status 2 when
    the command's input is wrong (as for a usage error), 1 when what it names is not so (an
    unknown user, a taken name, a user outside the project)."""
    handler: Handler = args.handler
    try:
        return handler(args)
    except DstrailError as error:
        sys.stderr.write(f"dstrail: error: {error.message}\n")
        return 2 if isinstance(error, InvalidInput) else 1
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}" for item in error.errors()
        )
        sys.stderr.write(f"dstrail: error: invalid setting: {problems}\n")
        return 2
    except BrokenPipeError:
        return 0
