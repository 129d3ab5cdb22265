"""``retention`` commands: how long the trail is kept, and purging what is older.

::

    dstrail retention show                        # the policy, oldest hot event, next purge
    dstrail retention set --days N [--lock]       # or --days forever; --lock: compliance mode
    dstrail retention apply [--dry-run] [--force] [--archive URL]

``apply`` archives the events the policy no longer keeps (Parquet a month, with a manifest
of proofs) to ``--archive`` (default ``DSTRAIL_ARCHIVE_URL``, else ``archive/`` under the data
directory), verifies the archive, then removes them; ``dstrail serve`` runs it on a schedule.
Every change, refusal and purge is recorded in the trail, made by ``operator``. A locked
policy refuses to be shortened: exit 1, nothing changed, the attempt recorded.
"""

from __future__ import annotations

import argparse

from dstrail.api.retention import purge_document, view_document
from dstrail.cli.common import Subparsers, add_command, open_from, print_json, subcommands
from dstrail.domain.retention import parse_days
from dstrail.domain.users import OPERATOR
from dstrail.errors import InvalidInput
from dstrail.services import retention as retention_service


def register(commands: Subparsers) -> None:
    """Add the commands of this family."""
    retention = subcommands(commands, "retention", "how long the trail is kept; purges")
    add_command(retention, "show", _show, "the policy, the oldest hot event and the next purge")
    change = add_command(retention, "set", _set, "set the retention policy (recorded)")
    change.add_argument(
        "--days", required=True, help="days kept hot (1-36,500), or 'forever' to keep everything"
    )
    change.add_argument(
        "--lock",
        action="store_true",
        help="compliance mode: the policy can then be lengthened, never shortened or unlocked",
    )
    apply = add_command(retention, "apply", _apply, "archive, verify and purge what is older")
    apply.add_argument(
        "--dry-run", action="store_true", help="say what would be purged; change nothing"
    )
    apply.add_argument(
        "--force",
        action="store_true",
        help="purge past stream destinations that have not delivered the events (recorded)",
    )
    apply.add_argument("--archive", help="a directory or s3://bucket/prefix (default: settings)")


def _show(args: argparse.Namespace) -> int:
    dstrail = open_from(args)
    view = retention_service.show_retention(dstrail.store, actor=OPERATOR, now_ms=dstrail.clock())
    print_json(view_document(view))
    return 0


def _set(args: argparse.Namespace) -> int:
    try:
        days = parse_days(args.days)
    except ValueError as error:
        raise InvalidInput(f"--{error}") from None
    dstrail = open_from(args)
    view = retention_service.set_retention(
        dstrail.store, actor=OPERATOR, days=days, lock=args.lock, now_ms=dstrail.clock()
    )
    print_json(view_document(view))
    return 0


def _apply(args: argparse.Namespace) -> int:
    dstrail = open_from(args)
    result = retention_service.apply_retention(
        dstrail.store,
        dstrail.archive(args.archive),
        actor=OPERATOR,
        public_key=dstrail.signer.public_raw,
        now_ms=dstrail.clock(),
        dry_run=args.dry_run,
        force=args.force,
    )
    print_json(purge_document(result))
    return 0
