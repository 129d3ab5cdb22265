"""``forensics findings`` commands: the detection rules' findings.

::

    dstrail forensics findings list [--rule RULE]... [--severity S]... [--user USERNAME]...
                                    [--data-source NAME]... [--unacknowledged] [--from T]
                                    [--to T] [--limit N] [--cursor C] [--json]
    dstrail forensics findings show ID [--json]
    dstrail forensics findings ack ID --note TEXT

``cli.forensics`` calls ``register`` with the sub-commands of ``dstrail forensics``. ``list``
prints one line a finding, newest first (``--json``: the API's document); ``show`` the finding
and its linked events, one line each. Both hand out trail contents and are recorded as reads
of the trail (``AuditTrailRead``, surface ``cli``, by the operator); ``ack`` records
``ForensicFindingAcknowledged`` by the operator, and exits 1 when the finding was
acknowledged already.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Final

import orjson

from dstrail.api.findings import detail_document, finding_document, findings_document
from dstrail.audit.serialize import escape_text
from dstrail.cli.common import Subparsers, add_command, open_from, print_json, subcommands
from dstrail.domain.forensics.findings import (
    DEFAULT_PAGE,
    FILTER_LABELS,
    MAX_PAGE,
    Rule,
    Severity,
    check_finding_id,
    finding_filter,
)
from dstrail.domain.forensics.queries import ACCEPTED_INSTANT
from dstrail.domain.users import OPERATOR
from dstrail.services.finding_answers import (
    acknowledge_finding,
    finding_with_events,
    findings_page,
)
from dstrail.services.forensics import follower_for
from dstrail.services.trail_reads import operator_reader

CLI_LABELS: Final = {
    **FILTER_LABELS,
    "rules": "--rule",
    "severities": "--severity",
    "usernames": "--user",
    "data_source_names": "--data-source",
    "acknowledged": "--unacknowledged",
    "from_time": "--from",
    "to_time": "--to",
    "limit": "--limit",
    "cursor": "--cursor",
}
"""The option of each filter field, which errors name."""


def register(forensics: Subparsers) -> None:
    """Add the findings commands under ``dstrail forensics``."""
    findings = subcommands(forensics, "findings", "what the detection rules found")
    listing = add_command(findings, "list", _list, "the findings, newest first")
    listing.add_argument("--rule", action="append", dest="rules", metavar="RULE",
                         help="repeatable: " + ", ".join(Rule))  # fmt: skip
    listing.add_argument("--severity", action="append", dest="severities", metavar="SEVERITY",
                         help="repeatable: " + ", ".join(Severity))  # fmt: skip
    listing.add_argument("--user", action="append", dest="usernames", metavar="USERNAME",
                         help="repeatable: the user a finding is about")  # fmt: skip
    listing.add_argument("--data-source", action="append", dest="data_source_names",
                         metavar="NAME", help="repeatable: the name it had then")  # fmt: skip
    listing.add_argument("--unacknowledged", action="store_true",
                         help="only those nobody acknowledged yet")  # fmt: skip
    listing.add_argument("--from", dest="from_time", help=f"from: {ACCEPTED_INSTANT}")
    listing.add_argument("--to", dest="to_time", help=f"up to: {ACCEPTED_INSTANT}")
    listing.add_argument("--limit", help=f"findings, 1-{MAX_PAGE} (default {DEFAULT_PAGE})")
    listing.add_argument("--cursor", help="go on after the previous page (its `next`)")
    listing.add_argument("--json", action="store_true", help="the API's JSON document")
    show = add_command(findings, "show", _show, "one finding, with its linked events")
    show.add_argument("id", help="the finding's id")
    show.add_argument("--json", action="store_true", help="the API's JSON document")
    ack = add_command(findings, "ack", _ack, "acknowledge a finding, with a note (recorded)")
    ack.add_argument("id", help="the finding's id")
    ack.add_argument("--note", required=True, help="what was found out or done about it")


def _values(args: argparse.Namespace) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {
        name: list(getattr(args, name) or [])
        for name in ("rules", "severities", "usernames", "data_source_names")
    }
    for name in ("from_time", "to_time", "limit", "cursor"):
        value = getattr(args, name)
        values[name] = [value] if value is not None else []
    values["acknowledged"] = ["false"] if args.unacknowledged else []
    return values


def _list(args: argparse.Namespace) -> int:
    wanted = finding_filter(_values(args), labels=CLI_LABELS)  # checked before opening
    dstrail = open_from(args)
    follower = follower_for(dstrail.store, settings=dstrail.settings, clock=dstrail.clock)
    page = findings_page(follower, wanted)
    operator_reader(dstrail.store, dstrail.clock, "forensics findings list").record(
        wanted.asked(), rows=len(page.findings)
    )
    document = findings_document(page)
    if args.json:
        print_json(document)
        return 0
    lines = [finding_line(finding) for finding in document["findings"]]
    if document["next"]:
        lines.append(f"more: --cursor {document['next']}")
    sys.stdout.write("".join(line + "\n" for line in lines))
    return 0


def _show(args: argparse.Namespace) -> int:
    finding_id = check_finding_id(args.id)
    dstrail = open_from(args)
    follower = follower_for(dstrail.store, settings=dstrail.settings, clock=dstrail.clock)
    detail = finding_with_events(follower, finding_id)
    operator_reader(dstrail.store, dstrail.clock, "forensics findings show").record(
        {"findingId": finding_id}, rows=len(detail.events)
    )
    document = detail_document(detail)
    if args.json:
        print_json(document)
        return 0
    sys.stdout.write("".join(line + "\n" for line in detail_lines(document)))
    return 0


def _ack(args: argparse.Namespace) -> int:
    finding_id = check_finding_id(args.id)
    dstrail = open_from(args)
    follower = follower_for(dstrail.store, settings=dstrail.settings, clock=dstrail.clock)
    view = acknowledge_finding(
        follower, finding_id, actor=OPERATOR, note=args.note, now_ms=dstrail.clock()
    )
    print_json(finding_document(view))
    return 0


# -- output ------------------------------------------------------------------------------------


def _t(value: object) -> str:
    return escape_text(str(value))


def finding_line(finding: dict[str, Any]) -> str:
    """One line of ``findings list``: time, severity, rule, id, summary, acknowledgement."""
    ack = finding["acknowledgement"]
    acknowledged = f" [acknowledged by {_t(ack['byUsername'])}]" if ack else ""
    return (
        f"{finding['time']}  {finding['severity']:<6}  {finding['rule']:<21}  {finding['id']}  "
        f"{_t(finding['summary'])}{acknowledged}"
    )


def detail_lines(document: dict[str, Any]) -> list[str]:
    """The lines of ``findings show``: the finding, its figures, then each linked event."""
    lines = [finding_line(document)]
    if document["userId"]:
        lines.append(f"user: {_t(document['username'])} ({document['userId']})")
    if document["dataSourceId"]:
        lines.append(f"data source: {_t(document['dataSourceName'])} ({document['dataSourceId']})")
    if document["runId"]:
        lines.append(f"run: {document['runId']}")
    lines.append(f"details: {_t(orjson.dumps(document['details']).decode())}")
    if document["raisedSeq"] is not None:
        lines.append(f"recorded as event {document['raisedSeq']} (ForensicFindingRaised)")
    ack = document["acknowledgement"]
    if ack:
        lines.append(
            f"acknowledged by {_t(ack['byUsername'])} at {ack['at']} (event {ack['seq']}): "
            f"{_t(ack['note'])}"
        )
    lines.append(f"events ({len(document['events'])} of {len(document['seqs'])} linked):")
    for event in document["events"]:
        who = event["metadata"].get("performedByUsername") or event["performedBy"]
        lines.append(
            f"  {event['seq']}  {event['timestamp']}  {event['eventKind']}  "
            f"{_t(event['dataSourceName'])}  by {_t(who)}  "
            f"{_t(orjson.dumps(event['metadata']).decode())}"
        )
    return lines
