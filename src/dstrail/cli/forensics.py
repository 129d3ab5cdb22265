"""``forensics`` commands: entitlements and timelines from the trail alone, and rebuilding the
state they are answered from.

::

    dstrail forensics entitlements --data-source NAME | --data-source-id ID | --user USERNAME
                                   | --user-id ID [--at T | --at-seq S] [--json]
    dstrail forensics timeline --user USERNAME | --user-id ID | --run ID | --data-source NAME
                               | --data-source-id ID [--from T] [--to T] [--limit N]
                               [--after SEQ] [--json]
    dstrail forensics rebuild [--check]

``T`` is ISO-8601 with an offset or epoch milliseconds. Entitlements and timelines hand out
trail contents: each is recorded as a read of the trail (``AuditTrailRead``, surface ``cli``,
by the operator). ``rebuild`` replays the trail into the derived state and prints its digest;
``--check`` replays into a scratch database, leaves the state alone, and exits 1 when the two
differ. The detection rules' commands (``dstrail forensics findings ...``) come from
``cli.findings.register``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import Any, Final

from dstrail.api.forensics import entitlements_document, entries_counted, timeline_document
from dstrail.audit.serialize import escape_text
from dstrail.cli import findings
from dstrail.cli.common import Subparsers, add_command, open_from, print_json, subcommands
from dstrail.domain.forensics.queries import (
    ACCEPTED_INSTANT,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    entitlements_query,
    timeline_query,
)
from dstrail.services.forensic_answers import entitlements, timeline
from dstrail.services.forensics import RebuildReport, Rebuilt, follower_for, rebuild
from dstrail.services.trail_reads import operator_reader

CLI_LABELS: Final = {
    "data_source_id": "--data-source-id",
    "data_source_name": "--data-source",
    "user_id": "--user-id",
    "username": "--user",
    "run_id": "--run",
    "at": "--at",
    "at_seq": "--at-seq",
    "from_time": "--from",
    "to_time": "--to",
    "limit": "--limit",
    "after": "--after",
}
"""The option of each field, which errors name."""


def register(commands: Subparsers) -> None:
    """Add the commands of this family."""
    forensics = subcommands(commands, "forensics", "who could reach what when, timelines, findings")
    ask = add_command(
        forensics, "entitlements", _entitlements,
        "who could use a data source at a moment (and through what), or what a user could use",
    )  # fmt: skip
    _subject_options(ask, timeline=False)
    ask.add_argument("--at", help=f"the moment: {ACCEPTED_INSTANT}; default: now")
    ask.add_argument("--at-seq", dest="at_seq", help="the moment as an event's seq")
    ask.add_argument("--json", action="store_true", help="the API's JSON document")
    line = add_command(
        forensics, "timeline", _timeline,
        "what a user, a run or a data source did, and what was done to them, in seq order",
    )  # fmt: skip
    _subject_options(line, timeline=True)
    line.add_argument("--from", dest="from_time", help=f"window start: {ACCEPTED_INSTANT}")
    line.add_argument("--to", dest="to_time", help=f"window end: {ACCEPTED_INSTANT}")
    line.add_argument("--limit", help=f"entries, 1-{MAX_LIMIT} (default {DEFAULT_LIMIT})")
    line.add_argument("--after", help="go on after this seq (a page's `next`)")
    line.add_argument("--json", action="store_true", help="the API's JSON document")
    again = add_command(
        forensics, "rebuild", _rebuild,
        "replay the trail into the forensics state and print its digest",
    )  # fmt: skip
    again.add_argument(
        "--check",
        action="store_true",
        help="replay into a scratch database instead, compare with the state, exit 1 if they "
        "differ",
    )
    findings.register(forensics)


def _subject_options(parser: argparse.ArgumentParser, *, timeline: bool) -> None:
    parser.add_argument("--data-source", dest="data_source_name", metavar="NAME",
                        help="a data source, by the name it had at that moment")  # fmt: skip
    parser.add_argument("--data-source-id", dest="data_source_id", metavar="ID")
    parser.add_argument("--user", dest="username", metavar="USERNAME")
    parser.add_argument("--user-id", dest="user_id", metavar="ID")
    if timeline:
        parser.add_argument("--run", dest="run_id", metavar="ID", help="a run, by id")


def _given(args: argparse.Namespace, names: tuple[str, ...]) -> dict[str, str | None]:
    return {name: getattr(args, name, None) for name in names}


def _entitlements(args: argparse.Namespace) -> int:
    query = entitlements_query(
        _given(args, ("data_source_id", "data_source_name", "user_id", "username", "at", "at_seq")),
        labels=CLI_LABELS,
    )  # checked before opening
    dstrail = open_from(args)
    follower = follower_for(dstrail.store, settings=dstrail.settings, clock=dstrail.clock)
    answer = entitlements(follower, query)
    document = entitlements_document(answer)
    operator_reader(dstrail.store, dstrail.clock, "forensics entitlements").record(
        {**query.asked(), "atSeq": answer.moment.at_seq}, rows=entries_counted(answer)
    )
    if args.json:
        print_json(document)
    else:
        sys.stdout.write("".join(line + "\n" for line in entitlement_lines(document)))
    return 0


def _timeline(args: argparse.Namespace) -> int:
    names = ("user_id", "username", "run_id", "data_source_id", "data_source_name", "from_time",
             "to_time", "limit", "after")  # fmt: skip
    query = timeline_query(_given(args, names), labels=CLI_LABELS)
    dstrail = open_from(args)
    follower = follower_for(dstrail.store, settings=dstrail.settings, clock=dstrail.clock)
    page = timeline(follower, query)
    document = timeline_document(page)
    operator_reader(dstrail.store, dstrail.clock, "forensics timeline").record(
        {**query.asked(), "afterSeq": page.after, "throughSeq": page.through},
        rows=len(page.entries),
    )
    if args.json:
        print_json(document)
    else:
        sys.stdout.write("".join(line + "\n" for line in timeline_lines(document)))
    return 0


def _rebuild(args: argparse.Namespace) -> int:
    dstrail = open_from(args)
    report = rebuild(
        dstrail.store, settings=dstrail.settings, clock=dstrail.clock, check=args.check,
        batch_events=dstrail.settings.forensics_batch_events,
    )  # fmt: skip
    print_json(rebuild_document(report))
    return 1 if report.equal is False else 0


# -- output -----------------------------------------------------------------------------------


def _state(rebuilt: Rebuilt) -> dict[str, Any]:
    digest = rebuilt.digest
    return {
        "firstSeq": rebuilt.first_seq,
        "throughSeq": rebuilt.through_seq,
        "grants": digest.grants,
        "users": digest.users,
        "dataSources": digest.data_sources,
        "sha256": digest.sha256,
        "derived": rebuilt.derived,
    }


def rebuild_document(report: RebuildReport) -> dict[str, Any]:
    """What ``dstrail forensics rebuild`` prints."""
    document: dict[str, Any] = {
        "check": report.check,
        "events": report.events,
        "seconds": round(report.seconds, 3),
        "purgedThrough": report.purged_through,
        "rebuilt": _state(report.rebuilt),
    }
    if report.purged_through:
        document["note"] = (
            f"events 1 to {report.purged_through} were purged (retention): the rebuild starts "
            f"at event {report.purged_through + 1} and knows nothing they granted"
        )
    if report.incremental is not None:
        document["incremental"] = _state(report.incremental)
        document["equal"] = report.equal
    return document


def _t(value: object) -> str:
    return escape_text(str(value))


def _by(ref: dict[str, Any]) -> str:
    who = ref["performedByUsername"] or ref["performedBy"]
    return f"event {ref['seq']} at {ref['timestamp']} by {_t(who)} ({ref['eventKind']})"


def _moment(document: dict[str, Any]) -> str:
    at = f"after event {document['atSeq']}"
    if document["atTimestamp"]:
        at += f" ({document['atTimestamp']})"
    return at


def entitlement_lines(document: dict[str, Any]) -> Iterator[str]:
    """An entitlements answer as readable lines (control characters escaped)."""
    if document["subject"] == "user":
        user = document["user"]
        yield f"user {_t(user['username'])} ({user['id']}, {user['role']}) {_moment(document)}:"
        if not document["dataSources"]:
            yield "  could use no data source"
        for entry in document["dataSources"]:
            yield f"  {_t(entry['dataSourceName'])} ({entry['dataSourceId']})"
            for grant in entry["grants"]:
                yield f"    {grant['via']:<9} granted by {_by(grant['granted'])}"
            for project in entry["projects"]:
                yield (
                    f"    attached to project {_t(project['projectName'])} "
                    f"({project['projectId']}) by {_by(project['granted'])}"
                )
    else:
        ds = document["dataSource"]
        yield (
            f"data source {_t(ds['name'])} ({ds['id']}, {ds['dataSourceType']}) "
            f"{ds['status']} {_moment(document)}:"
        )
        for grant in document["grants"]:
            subject = _t(grant["subjectName"] or grant["subjectId"]) or "all users"
            yield f"  {grant['via']:<9} {subject} granted by {_by(grant['granted'])}"
        if not document["grants"]:
            yield "  no grant in force"
        users = document["users"]
        yield f"could use it: {len(users)} user(s)"
        for reach in users:
            yield f"  {_t(reach['username'] or reach['userId'])} ({', '.join(reach['via'])})"
        for project in document["projects"]:
            yield (
                f"attached to project {_t(project['projectName'])} ({project['projectId']}) "
                f"by {_by(project['granted'])}"
            )
    for note in document["notes"]:
        yield f"note: {_t(note)}"


def timeline_lines(document: dict[str, Any]) -> Iterator[str]:
    """A timeline page as readable lines, one an entry (control characters escaped)."""
    subject = document["subject"]
    name = f" {_t(subject['name'])}" if subject["name"] else ""
    yield (
        f"{subject['kind']}{name} ({subject['id']}): events after {document['afterSeq']} "
        f"through {document['throughSeq']}"
    )
    for entry in document["entries"]:
        parts = [
            f"{entry['seq']:>8}",
            entry["timestamp"],
            f"{entry['category']:<11}",
            entry["eventKind"],
            _t(entry["dataSourceName"]),
            f"by {_t(entry['performedByUsername'] or entry['performedBy'])}",
        ]
        parts += [f"{key}={_t(value)}" for key, value in entry["touched"].items()]
        if entry["reason"]:
            parts.append(f"reason={_t(entry['reason'])}")
        if entry["runId"]:
            parts.append(f"run={entry['runId']}")
        for note in entry["grants"]:
            whom = note["dataSourceName"] if subject["kind"] == "user" else note["subjectId"]
            parts.append(f"{note['change']}:{note['via']}:{_t(whom) or 'everyone'}")
        yield " ".join(part for part in parts if part)
    if document["next"] is not None:
        yield f"more: --after {document['next']}"
