"""``audit`` commands: read the trail with the API's filters and defaults."""

from __future__ import annotations

import argparse
import sys

from dstrail.audit.query import build_filter, iter_chunks
from dstrail.audit.serialize import stream_csv, stream_json_array, stream_text
from dstrail.cli.common import Subparsers, add_command, open_from
from dstrail.errors import InvalidInput

FORMATS = {"json": stream_json_array, "csv": stream_csv, "text": stream_text}


def register(commands: Subparsers) -> None:
    """Add the commands of this family."""
    audit = commands.add_parser("audit", help="read the audit trail").add_subparsers(
        dest="audit_command", required=True, metavar="COMMAND"
    )
    query = add_command(
        audit,
        "query",
        _query,
        "events newest first; no window: the last 24 hours (as GET /api/datasource/v1/audit)",
    )
    query.add_argument("--start-time", help="inclusive, ISO-8601 with Z or an offset")
    query.add_argument("--end-time", help="inclusive, ISO-8601 with Z or an offset")
    query.add_argument("--data-source-name", action="append", default=[], metavar="NAME")
    query.add_argument("--data-source-id", action="append", default=[], metavar="ID")
    query.add_argument("--event-kind", action="append", default=[], metavar="KIND")
    query.add_argument("--performed-by", action="append", default=[], metavar="USER_ID")
    query.add_argument("--project-id", action="append", default=[], metavar="ID")
    query.add_argument("--run-id", action="append", default=[], metavar="ID")
    query.add_argument("--format", default="json", help="json (default), csv or text")


def _query(args: argparse.Namespace) -> int:
    if args.format not in FORMATS:
        raise InvalidInput(f"--format: {args.format!r} is not accepted; accepted: json, csv, text")
    params = {
        "startTime": [args.start_time] if args.start_time else [],
        "endTime": [args.end_time] if args.end_time else [],
        "dataSourceNames": args.data_source_name,
        "dataSourceIds": args.data_source_id,
        "eventKinds": args.event_kind,
        "performedBy": args.performed_by,
        "projectIds": args.project_id,
        "runIds": args.run_id,
    }
    dstrail = open_from(args)
    audit_filter = build_filter(params, now_ms=dstrail.clock())
    output = sys.stdout.buffer
    for piece in FORMATS[args.format](iter_chunks(dstrail.store, audit_filter)):
        output.write(piece)
    if args.format == "json":
        output.write(b"\n")
    output.flush()
    return 0
