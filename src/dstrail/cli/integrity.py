"""``audit checkpoint | public-key | verify | export``: the verifiable trail from the CLI.

Registered into the ``audit`` group by ``dstrail.cli.audit``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from dstrail.audit.bundle import build_bundle
from dstrail.audit.checkpoints import checkpoint_now, public_key_from_text
from dstrail.audit.query import AuditParameters
from dstrail.audit.verify import read_external, verify_bundle, verify_store
from dstrail.cli.common import (
    STORAGE,
    Subparsers,
    add_command,
    open_from,
    print_json,
    settings_from,
)
from dstrail.context import open_dstrail
from dstrail.domain.trail import checkpoint_document
from dstrail.errors import InvalidInput

FilterArguments = Callable[[argparse.ArgumentParser], None]
FilterParameters = Callable[[argparse.Namespace], AuditParameters]


def register(
    audit: Subparsers, *, add_filters: FilterArguments, parameters: FilterParameters
) -> None:
    """Add the integrity commands to the ``audit`` group."""
    checkpoint = add_command(
        audit,
        "checkpoint",
        _checkpoint,
        "sign a checkpoint of the trail now (or show the latest when nothing was appended)",
    )
    checkpoint.add_argument(
        "--out",
        type=Path,
        help="also save it (with the public key) to this file, to keep elsewhere",
    )
    public_key = add_command(
        audit, "public-key", _public_key, "the Ed25519 public key that verifies checkpoints"
    )
    public_key.add_argument("--format", default="json", help="json (default) or pem")

    verify = audit.add_parser(
        "verify",
        parents=[STORAGE],
        help="check the whole database against its signed checkpoints, or a bundle alone",
        description="Exit status 0: verified; 1: something is wrong (the first wrong seq is "
        "named); 2: the command could not run.",
    )
    verify.set_defaults(handler=_verify)
    verify.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="a checkpoint saved earlier (dstrail audit checkpoint --out); reveals a cut tail",
    )
    verify.add_argument(
        "--bundle", type=Path, metavar="FILE", help="check an exported bundle, no database"
    )
    verify.add_argument(
        "--public-key",
        metavar="KEY",
        help="trust only this key: base64, PEM, or a file holding either (default: the key of "
        "--checkpoint, of the bundle, or the data directory's)",
    )
    verify.add_argument("--format", default="text", help="text (default) or json")

    export = add_command(
        audit,
        "export",
        _export,
        "write a verifiable bundle: the events of a window, a covering checkpoint, proofs",
    )
    add_filters(export)
    export.add_argument("--out", type=Path, required=True, help="the bundle file to write")
    export.set_defaults(parameters=parameters)


def _saved(record_document: dict[str, Any], key_document: dict[str, str]) -> bytes:
    return orjson.dumps(
        {"checkpoint": record_document, "publicKey": key_document}, option=orjson.OPT_INDENT_2
    )


def _checkpoint(args: argparse.Namespace) -> int:
    dstrail = open_from(args)
    record = checkpoint_now(dstrail.store, now_ms=dstrail.clock())
    body = _saved(checkpoint_document(record), dstrail.signer.public_key_document())
    if args.out:
        args.out.write_bytes(body + b"\n")
    sys.stdout.write(body.decode() + "\n")
    return 0


def _public_key(args: argparse.Namespace) -> int:
    if args.format not in ("json", "pem"):
        raise InvalidInput(f"--format: {args.format!r} is not accepted; accepted: json, pem")
    dstrail = open_dstrail(settings_from(args), migrate=False)
    document = dstrail.signer.public_key_document()
    if args.format == "pem":
        sys.stdout.write(document["pem"])
    else:
        print_json(document)
    return 0


def _pinned_key(value: str | None) -> bytes | None:
    if not value:
        return None
    path = Path(value)
    if len(value) < 1024 and path.is_file():
        text = path.read_text()
        if text.lstrip().startswith("{"):
            document = orjson.loads(text)
            text = str(document.get("publicKey", {}).get("publicKey", "") or document["publicKey"])
        return public_key_from_text(text)
    return public_key_from_text(value)


def _verify(args: argparse.Namespace) -> int:
    if args.format not in ("json", "text"):
        raise InvalidInput(f"--format: {args.format!r} is not accepted; accepted: json, text")
    pinned = _pinned_key(args.public_key)
    if args.bundle:
        try:
            bundle = orjson.loads(args.bundle.read_bytes())
        except (OSError, orjson.JSONDecodeError) as error:
            raise InvalidInput(f"--bundle: cannot read {args.bundle}: {error}") from None
        if not isinstance(bundle, dict):
            raise InvalidInput("--bundle: not a bundle (expected a JSON object)")
        report = verify_bundle(bundle, public_key=pinned)
    else:
        try:
            texts = [path.read_text() for path in args.checkpoint]
        except OSError as error:
            raise InvalidInput(f"--checkpoint: {error}") from None
        external, external_key = read_external(texts)
        dstrail = open_dstrail(settings_from(args), migrate=False)
        key = pinned or external_key or dstrail.signer.public_raw
        report = verify_store(dstrail.store, public_key=key, external=external)
    if args.format == "json":
        print_json(report.document())
    else:
        sys.stdout.write(report.text() + "\n")
    return 0 if report.ok else 1


def _export(args: argparse.Namespace) -> int:
    dstrail = open_from(args)
    parameters: AuditParameters = args.parameters(args)
    now = dstrail.clock()
    audit_filter = parameters.to_filter(now_ms=now)
    given = parameters.model_dump(by_alias=True, exclude_defaults=True)
    window = {key: [value] if isinstance(value, str) else value for key, value in given.items()}
    bundle = build_bundle(
        dstrail.store,
        audit_filter,
        public_key=dstrail.signer.public_raw,
        now_ms=now,
        window=window,
    )
    args.out.write_bytes(orjson.dumps(bundle) + b"\n")
    print_json(
        {
            "out": str(args.out),
            "events": len(bundle["events"]),
            "checkpoint": bundle["checkpoint"],
        }
    )
    return 0
