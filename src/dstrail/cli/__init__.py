"""The operator CLI (SPEC section 6). Each command family lives in its own module."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from dstrail import __version__
from dstrail.cli import (
    admin,
    audit,
    backup,
    credentials,
    datasources,
    demo,
    forensics,
    retention,
    serve,
    streams,
    users,
    witness,
)
from dstrail.cli.common import run_command

__all__ = ["build_parser", "main"]

COMMAND_FAMILIES = (
    serve,
    demo,
    users,
    admin,
    audit,
    credentials,
    datasources,
    backup,
    streams,
    witness,
    retention,
    forensics,
)


def build_parser() -> argparse.ArgumentParser:
    """The full command tree."""
    parser = argparse.ArgumentParser(
        prog="dstrail",
        description="A data source service with a complete, verifiable audit trail.",
    )
    parser.add_argument("--version", action="version", version=f"dstrail {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for family in COMMAND_FAMILIES:
        family.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dstrail`` command."""
    args = build_parser().parse_args(argv)
    return run_command(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
