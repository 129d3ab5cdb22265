"""``audit`` commands: read the trail with the API's filters and defaults; each read is
recorded (``AuditTrailRead``, surface ``cli``, by the operator)."""

from __future__ import annotations

import argparse
import sys

from dstrail.audit.query import AuditParameters, iter_chunks
from dstrail.audit.serialize import stream_csv, stream_json_array, stream_text
from dstrail.cli import integrity
from dstrail.cli.common import Subparsers, add_command, open_from
from dstrail.domain.audit_filter import AuditFilter
from dstrail.domain.timestamps import system_clock
from dstrail.errors import InvalidInput
from dstrail.services.trail_reads import filter_document, operator_reader

FORMATS = {"json": stream_json_array, "csv": stream_csv, "text": stream_text}


def register(commands: Subparsers) -> None:
    """Add the commands of this family."""
    audit = commands.add_parser("audit", help="read and verify the audit trail").add_subparsers(
        dest="audit_command", required=True, metavar="COMMAND"
    )
    query = add_command(
        audit,
        "query",
        _query,
        "events newest first; no window: the last 24 hours (as GET /api/datasource/v1/audit)",
    )
    add_filter_arguments(query)
    query.add_argument("--format", default="json", help="json (default), csv or text")
    integrity.register(audit, add_filters=add_filter_arguments, parameters=filter_parameters)


def _option(name: str, many: bool) -> str:
    """``--start-time`` for ``start_time``; a list's option is singular (``--run-id``)."""
    singular = name[:-1] if many and name.endswith("s") else name
    return "--" + singular.replace("_", "-")


_MANY = {name: name in AuditParameters.repeatable() for name in AuditParameters.model_fields}
CLI_LABELS = {name: _option(name, many) for name, many in _MANY.items()}
"""The option of each filter, which errors name."""


def add_filter_arguments(parser: argparse.ArgumentParser) -> None:
    """The API's filters as options (``audit query``, ``audit export``), one per parameter."""
    for name, field in AuditParameters.model_fields.items():
        help_text = f"{field.description} (the API's {field.alias})"
        if _MANY[name]:
            metavar = "KIND" if name == "event_kinds" else name.upper().removesuffix("S")
            parser.add_argument(
                CLI_LABELS[name], dest=name, action="append", default=[], metavar=metavar,
                help=help_text + "; repeat for more",
            )  # fmt: skip
        else:
            parser.add_argument(CLI_LABELS[name], dest=name, help=help_text)


def filter_parameters(args: argparse.Namespace) -> AuditParameters:
    """The filter options as the API's parameters."""
    given = {name: getattr(args, name) for name in AuditParameters.model_fields}
    return AuditParameters(**{name: value for name, value in given.items() if value != ""})


def build_cli_filter(args: argparse.Namespace, *, now_ms: int) -> AuditFilter:
    """The filter the options describe; errors name the options, not the API's parameters."""
    return filter_parameters(args).to_filter(now_ms=now_ms, labels=CLI_LABELS)


def _query(args: argparse.Namespace) -> int:
    if args.format not in FORMATS:
        raise InvalidInput(f"--format: {args.format!r} is not accepted; accepted: json, csv, text")
    audit_filter = build_cli_filter(args, now_ms=system_clock())  # checked before opening
    dstrail = open_from(args)
    read = operator_reader(dstrail.store, dstrail.clock, "audit query").streamed(
        filter_document(audit_filter), detail={"format": args.format}
    )
    output = sys.stdout.buffer
    try:
        for piece in FORMATS[args.format](read.rows(iter_chunks(dstrail.store, audit_filter))):
            output.write(piece)
        if args.format == "json":
            output.write(b"\n")
        output.flush()
    finally:
        read.cut()  # stopped early (a closed pipe): recorded with the rows written
    return 0
