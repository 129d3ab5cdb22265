"""``audit checkpoint | public-key | proof | verify | export``: the verifiable trail from the
CLI, and offline proofs (C2SP tlog-proof) checked against the log's vkey and witnesses.

Registered into the ``audit`` group by ``dstrail.cli.audit``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from dstrail.audit.archive import verify_archives
from dstrail.audit.archive_targets import ArchiveTarget, open_target
from dstrail.audit.bundle import build_bundle, build_tlog_bundle
from dstrail.audit.checkpoints import checkpoint_now, key_id_of, public_key_from_text
from dstrail.audit.query import AuditParameters
from dstrail.audit.report import VerifyReport
from dstrail.audit.tlog_proof import (
    TLOG_BUNDLE_FORMAT,
    prove_event,
    tlog_bundle_vkey,
    verify_tlog_bundle,
    verify_tlog_proof,
)
from dstrail.audit.verify import WitnessedNote, read_external, verify_bundle, verify_store
from dstrail.cli.common import (
    STORAGE,
    Subparsers,
    add_command,
    open_from,
    print_json,
    settings_from,
)
from dstrail.context import open_dstrail
from dstrail.domain.trail import MAX_SEQ, checkpoint_document, note
from dstrail.domain.trail.trust import TrustPolicy
from dstrail.errors import InvalidInput, Unavailable
from dstrail.services.trail_reads import filter_document, operator_reader

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

    proof = add_command(
        audit,
        "proof",
        _proof,
        "an offline proof of one event (C2SP tlog-proof): its encoding, inclusion proof and "
        "cosigned checkpoint",
    )
    proof.add_argument("seq", type=int, help="the event's sequence number")
    proof.add_argument(
        "--tree-size",
        type=int,
        help="the C2SP checkpoint to prove against (default: the smallest covering the event)",
    )
    proof.add_argument(
        "--out", type=Path, help="write it to this file (suggested: .tlog-proof) not stdout"
    )

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
        "--proof",
        type=Path,
        metavar="FILE",
        help="check one tlog-proof (dstrail audit proof), no database; needs --vkey",
    )
    verify.add_argument(
        "--vkey",
        metavar="VKEY",
        help="the log's verifier key (<origin>+<key id>+<key>, or a file holding it or the "
        "public-key JSON): trust only it",
    )
    verify.add_argument(
        "--witness",
        action="append",
        default=[],
        metavar="VKEY",
        help="a witness's cosignature vkey (type 0x04), or a file holding it; repeat for more",
    )
    verify.add_argument(
        "--min-witnesses",
        type=int,
        metavar="K",
        help="how many of the --witness keys must have cosigned (default: all of them)",
    )
    verify.add_argument(
        "--witnessed",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="a cosigned checkpoint note as a witness serves it: reveals a rollback or a split "
        "view of the database's trail; repeat for more",
    )
    verify.add_argument(
        "--public-key",
        metavar="KEY",
        help="trust only this key: base64, PEM, or a file holding either (default: the key of "
        "--checkpoint, of the bundle, or the data directory's)",
    )
    verify.add_argument(
        "--archive",
        metavar="URL",
        help="also check the archives of purged events there (a directory or "
        "s3://bucket/prefix), and that they hold every purged event",
    )
    verify.add_argument(
        "--archive-only",
        action="store_true",
        help="check the --archive alone, with no database (needs --vkey or --public-key)",
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
    export.add_argument(
        "--format",
        default="json",
        help="json (default: dstrail's bundle) or tlog-proof (one C2SP tlog-proof an event, "
        "with the log's vkey)",
    )
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
        write_out(args.out, body + b"\n")
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


def _proof(args: argparse.Namespace) -> int:
    if not 1 <= args.seq <= MAX_SEQ:
        raise InvalidInput(f"seq: {args.seq} is not accepted; accepted: 1 to {MAX_SEQ}")
    if args.tree_size is not None and not 1 <= args.tree_size <= MAX_SEQ:
        raise InvalidInput(
            f"--tree-size: {args.tree_size} is not accepted; accepted: 1 to {MAX_SEQ}"
        )
    dstrail = open_from(args)
    with dstrail.store.read() as tx:
        made = prove_event(tx, seq=args.seq, tree_size=args.tree_size)
    asked = {"seq": args.seq} | ({} if args.tree_size is None else {"treeSize": args.tree_size})
    record = partial(
        operator_reader(dstrail.store, dstrail.clock, "audit proof").record,
        asked, rows=1, detail={"format": "tlog-proof"},
    )  # fmt: skip
    text = made.encode()
    if args.out:
        write_recorded(args.out, text.encode(), record)
        print_json({"out": str(args.out), "seq": args.seq, "index": made.index})
    else:
        record()  # before it is shown
        sys.stdout.write(text)
    return 0


def _key_text(value: str, *, option: str) -> str:
    """A vkey given as text, or as a file holding it or a public-key JSON document."""
    path = Path(value)
    if len(value) < 1024 and path.is_file():
        try:
            text = path.read_text().strip()
        except (OSError, UnicodeDecodeError) as error:
            raise InvalidInput(f"{option}: cannot read {value}: {error}") from None
        if text.startswith("{"):
            try:
                document = orjson.loads(text)
                keys = document.get("publicKey", document)
                return str(keys["vkey"] if isinstance(keys, dict) else document["vkey"])
            except (orjson.JSONDecodeError, AttributeError, KeyError):
                raise InvalidInput(f"{option}: {value} holds JSON without a vkey") from None
        return text
    return value


def _log_vkey(value: str | None) -> note.Verifier | None:
    if not value:
        return None
    return note.parse_vkey(_key_text(value, option="--vkey"), field="--vkey")


def _witness_vkeys(values: list[str]) -> list[note.Verifier]:
    return [
        note.parse_vkey(_key_text(value, option="--witness"), field="--witness") for value in values
    ]


def _read_text(path: Path, *, option: str) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput(f"{option}: cannot read {path}: {error}") from None


def _verify(args: argparse.Namespace) -> int:
    if args.format not in ("json", "text"):
        raise InvalidInput(f"--format: {args.format!r} is not accepted; accepted: json, text")
    if args.proof and args.bundle:
        raise InvalidInput("--proof, --bundle: give one of them")
    pinned = _pinned_key(args.public_key)
    log = _log_vkey(args.vkey)
    witnesses = _witness_vkeys(args.witness)
    if pinned is not None and log is not None and pinned != log.public_key:
        raise InvalidInput("--public-key, --vkey: they name different keys")
    if args.proof:
        if args.witnessed:
            raise InvalidInput("--witnessed: checks a database's trail, not a --proof")
        return _verify_proof(args, log, witnesses)
    if args.archive_only:
        report = _verify_archive_only(args, pinned or (log.public_key if log else None))
    elif args.bundle:
        if args.witnessed:
            raise InvalidInput("--witnessed: checks a database's trail, not a --bundle")
        report = _verify_bundle_file(args, pinned, log, witnesses)
    else:
        report = _verify_database(args, pinned, log, witnesses)
    _print_report(args, report.document(), report.text())
    return 0 if report.ok else 1


def _print_report(args: argparse.Namespace, document: dict[str, Any], text: str) -> None:
    if args.format == "json":
        print_json(document)
    else:
        sys.stdout.write(text + "\n")


def _verify_proof(
    args: argparse.Namespace, log: note.Verifier | None, witnesses: list[note.Verifier]
) -> int:
    if log is None:
        raise InvalidInput("--proof: give the log's --vkey (a tlog-proof carries no key)")
    trust = TrustPolicy.of(log, witnesses, args.min_witnesses)
    text = _read_text(args.proof, option="--proof")
    verdict = verify_tlog_proof(text, trust, source=f"tlog-proof {args.proof}")
    lines = verdict.report.text()
    if verdict.event is not None:
        lines += "\nevent: " + orjson.dumps(verdict.event).decode()
    _print_report(args, verdict.document(), lines)
    return 0 if verdict.report.ok else 1


def _verify_bundle_file(
    args: argparse.Namespace,
    pinned: bytes | None,
    log: note.Verifier | None,
    witnesses: list[note.Verifier],
) -> VerifyReport:
    try:
        bundle = orjson.loads(args.bundle.read_bytes())
    except (OSError, orjson.JSONDecodeError) as error:
        raise InvalidInput(f"--bundle: cannot read {args.bundle}: {error}") from None
    if not isinstance(bundle, dict):
        raise InvalidInput("--bundle: not a bundle (expected a JSON object)")
    if bundle.get("format") == TLOG_BUNDLE_FORMAT:
        if pinned is not None and log is None:
            raise InvalidInput("--public-key: a tlog-proof bundle is checked with --vkey")
        trust = TrustPolicy.of(log or tlog_bundle_vkey(bundle), witnesses, args.min_witnesses)
        return verify_tlog_bundle(bundle, trust)
    if witnesses or args.min_witnesses:
        raise InvalidInput(
            "--witness, --min-witnesses: a JSON bundle carries no cosignatures; export "
            "--format tlog-proof for one that does"
        )
    return verify_bundle(bundle, public_key=pinned or (log.public_key if log else None))


def _verify_database(
    args: argparse.Namespace,
    pinned: bytes | None,
    log: note.Verifier | None,
    witnesses: list[note.Verifier],
) -> VerifyReport:
    texts = [_read_text(path, option="--checkpoint") for path in args.checkpoint]
    witnessed = [
        WitnessedNote(str(path), _read_text(path, option="--witnessed")) for path in args.witnessed
    ]
    external, external_key = read_external(texts)
    dstrail = open_dstrail(settings_from(args), migrate=False)
    key = pinned or (log.public_key if log else None) or external_key or dstrail.signer.public_raw
    trust = None
    if log or witnesses or witnessed or args.min_witnesses is not None:
        trust = TrustPolicy.of(
            log or note.verifier_of(dstrail.signer.origin, key), witnesses, args.min_witnesses
        )
    report = verify_store(
        dstrail.store, public_key=key, external=external, trust=trust, witnessed=witnessed
    )
    if args.archive:
        _add_archives(report, dstrail.archive(args.archive), key, report.purged_through)
    return report


def _verify_archive_only(args: argparse.Namespace, key: bytes | None) -> VerifyReport:
    if not args.archive:
        raise InvalidInput("--archive-only: give the --archive to check")
    if key is None:
        raise InvalidInput("--archive-only: give the log's --vkey or --public-key")
    report = VerifyReport(source=args.archive, key_id=key_id_of(key))
    report.verdict = "every archive matches a checkpoint the log's key signed"
    endpoint = settings_from(args).archive_s3_endpoint
    _add_archives(report, open_target(args.archive, s3_endpoint=endpoint), key, None)
    return report


def _add_archives(
    report: VerifyReport, target: ArchiveTarget, key: bytes, purged_through: int | None
) -> None:
    """Check the archives on ``target`` into ``report``."""
    started = time.perf_counter()
    checked, findings = verify_archives(target, public_key=key, purged_through=purged_through)
    report.archives = [
        f"{a.location}: events {a.first_seq}-{a.last_seq}, SHA-256 {a.manifest_sha256}"
        for a in checked
    ]
    report.findings.extend(findings)
    if purged_through is None:
        report.events = sum(a.events for a in checked)
    report.seconds += time.perf_counter() - started


def _export(args: argparse.Namespace) -> int:
    if args.format not in ("json", "tlog-proof"):
        raise InvalidInput(f"--format: {args.format!r} is not accepted; accepted: json, tlog-proof")
    dstrail = open_from(args)
    parameters: AuditParameters = args.parameters(args)
    now = dstrail.clock()
    audit_filter = parameters.to_filter(now_ms=now)
    given = parameters.model_dump(by_alias=True, exclude_defaults=True)
    window = {key: [value] if isinstance(value, str) else value for key, value in given.items()}
    if args.format == "tlog-proof":
        bundle = build_tlog_bundle(
            dstrail.store,
            audit_filter,
            vkey=dstrail.signer.verifier.vkey(),
            now_ms=now,
            window=window,
        )
        summary = {"treeSize": bundle["treeSize"], "vkey": bundle["vkey"]}
        count = len(bundle["proofs"])
    else:
        bundle = build_bundle(
            dstrail.store,
            audit_filter,
            public_key=dstrail.signer.public_raw,
            now_ms=now,
            window=window,
        )
        summary = {"checkpoint": bundle["checkpoint"]}
        count = len(bundle["events"])
    record = partial(
        operator_reader(dstrail.store, dstrail.clock, "audit export").record,
        filter_document(audit_filter), rows=count, detail={"format": args.format},
    )  # fmt: skip
    write_recorded(args.out, orjson.dumps(bundle) + b"\n", record)
    print_json({"out": str(args.out), "events": count, **summary})
    return 0


def write_recorded(path: Path, data: bytes, record: Callable[[], None]) -> None:
    """Write ``--out``, a read of the trail, then ``record`` the read; a read that cannot be
    recorded leaves no file (``Unavailable``)."""
    write_out(path, data)
    try:
        record()
    except Unavailable:
        path.unlink(missing_ok=True)
        raise


def write_out(path: Path, data: bytes) -> None:
    """Write ``--out``; ``InvalidInput`` naming it when it cannot be written."""
    try:
        path.write_bytes(data)
    except OSError as error:
        raise InvalidInput(
            f"--out: cannot write {str(path)!r}: {error.strerror or error}"
        ) from None
