"""``backup``: a consistent copy of the SQLite database, taken while dstrail serves."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from dstrail.cli.common import Subparsers, add_command, print_json, settings_from
from dstrail.errors import InvalidInput
from dstrail.settings import Settings
from dstrail.store import Store
from dstrail.store.engine import BackupUnsupported

KEY_FILES = (
    ("signing.key", "secret_key", "DSTRAIL_SECRET_KEY"),
    ("credentials.key", "encryption_key", "DSTRAIL_ENCRYPTION_KEY"),
    ("audit-signing.key", "audit_signing_key", "DSTRAIL_AUDIT_SIGNING_KEY"),
)
"""The server's keys (``dstrail.keys``): its file in the data directory, its setting."""


def register(commands: Subparsers) -> None:
    """Add the commands of this family."""
    backup = add_command(
        commands,
        "backup",
        _backup,
        "copy the SQLite database (online, consistent) to a new file created 0600; "
        "on PostgreSQL: says to use pg_dump (exit 2)",
    )
    backup.add_argument("--out", type=Path, required=True, metavar="FILE", help="the copy")
    backup.add_argument("--force", action="store_true", help="replace FILE if it exists")


def _keys_to_keep(settings: Settings) -> tuple[list[str], list[str]]:
    """(the data directory's key files, the settings that hold the keys not in files): a key
    set in the settings wins over its file (``dstrail.keys``)."""
    files, given = [], []
    for name, field, variable in KEY_FILES:
        if getattr(settings, field):
            given.append(variable)
        else:
            files.append(str((settings.data_dir / name).resolve()))
    return files, given


def _keys_sentence(settings: Settings) -> str:
    files, given = _keys_to_keep(settings)
    kept = [*files, *(f"the {variable} setting" for variable in given)]
    return (
        f"keep with the dump {', '.join(kept)} "
        "(without them the trail cannot be verified nor stored credentials read)"
    )


def _backup(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    out: Path = args.out
    store = Store(settings.resolved_database_url())
    try:
        size = store.backup_to(out, overwrite=args.force)
    except BackupUnsupported as error:
        raise InvalidInput(f"{error.message}; {_keys_sentence(settings)}") from None
    except FileExistsError:
        raise InvalidInput(f"--out: {out} exists; pass --force to replace it") from None
    except OSError as error:
        raise InvalidInput(f"--out: cannot write {out}: {error.strerror or error}") from None
    finally:
        store.dispose()
    files, given = _keys_to_keep(settings)
    copy_url = f"sqlite:///{out.resolve()}"
    verify = ["dstrail", "audit", "verify", "--database-url", copy_url]
    verify += ["--data-dir", str(settings.data_dir.resolve())]
    print_json(
        {
            "out": str(out.resolve()),
            "bytes": size,
            "keepWithIt": files,
            "keySettings": given,
            "verify": shlex.join(verify),
        }
    )
    return 0
