"""``audit`` commands: read the trail with the API's filters and defaults."""

from __future__ import annotations

import argparse
import re
import sys

from dstrail.audit.query import build_filter, iter_chunks
from dstrail.audit.serialize import stream_csv, stream_json_array, stream_text
from dstrail.cli import integrity
from dstrail.cli.common import Subparsers, add_command, open_from
from dstrail.domain.audit_filter import AuditFilter
from dstrail.domain.timestamps import system_clock
from dstrail.errors import InvalidInput

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
    integrity.register(audit, add_filters=add_filter_arguments, filter_params=filter_params)


def add_filter_arguments(parser: argparse.ArgumentParser) -> None:
    """The API's filters as options (``audit query``, ``audit export``)."""
    parser.add_argument("--start-time", help="inclusive, ISO-8601 with Z or an offset")
    parser.add_argument("--end-time", help="inclusive, ISO-8601 with Z or an offset")
    parser.add_argument("--data-source-name", action="append", default=[], metavar="NAME")
    parser.add_argument("--data-source-id", action="append", default=[], metavar="ID")
    parser.add_argument("--event-kind", action="append", default=[], metavar="KIND")
    parser.add_argument("--performed-by", action="append", default=[], metavar="USER_ID")
    parser.add_argument("--project-id", action="append", default=[], metavar="ID")
    parser.add_argument("--run-id", action="append", default=[], metavar="ID")


def filter_params(args: argparse.Namespace) -> dict[str, list[str]]:
    """The filter options as the API's query parameters."""
    return {
        "startTime": [args.start_time] if args.start_time else [],
        "endTime": [args.end_time] if args.end_time else [],
        "dataSourceNames": args.data_source_name,
        "dataSourceIds": args.data_source_id,
        "eventKinds": args.event_kind,
        "performedBy": args.performed_by,
        "projectIds": args.project_id,
        "runIds": args.run_id,
    }


_OPTION_OF = {
    "startTime": "--start-time",
    "endTime": "--end-time",
    "dataSourceNames": "--data-source-name",
    "dataSourceIds": "--data-source-id",
    "eventKinds": "--event-kind",
    "performedBy": "--performed-by",
    "projectIds": "--project-id",
    "runIds": "--run-id",
}
_PARAMETER = re.compile(r"\b(" + "|".join(_OPTION_OF) + r")\b")


def build_cli_filter(args: argparse.Namespace, *, now_ms: int) -> AuditFilter:
    """The filter the options describe; errors name the options, not the API's parameters."""
    try:
        return build_filter(filter_params(args), now_ms=now_ms)
    except InvalidInput as error:
        message = _PARAMETER.sub(lambda match: _OPTION_OF[match.group(1)], error.message)
        raise InvalidInput(message) from None


def _query(args: argparse.Namespace) -> int:
    if args.format not in FORMATS:
        raise InvalidInput(f"--format: {args.format!r} is not accepted; accepted: json, csv, text")
    audit_filter = build_cli_filter(args, now_ms=system_clock())  # checked before opening
    dstrail = open_from(args)
    output = sys.stdout.buffer
    for piece in FORMATS[args.format](iter_chunks(dstrail.store, audit_filter)):
        output.write(piece)
    if args.format == "json":
        output.write(b"\n")
    output.flush()
    return 0
