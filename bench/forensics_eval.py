"""Precision and recall of the detection rules on a generated trail with planted incidents.

    .venv/bin/python bench/forensics_eval.py [--events N] [--seed S] [--out DIR]
                                             [--database-url URL] [--reuse] [--misses]

Builds the trail of ``bench/forensics_generator.py`` (1,000,000 events by default; ``--reuse``
takes the store already under ``--out``), runs the forensics follower over it with the
detection rules (``dstrail serve``'s follower: the grant tables and the rules, a batch a
transaction), timed, and then prints per rule: incidents planted, findings, true positives
(findings linked to an event of a planted incident of their rule), false positives, precision
(true positives over findings) and recall (incidents with at least one true positive over
incidents planted). ``--misses`` lists the incidents missed and the false positives.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from dstrail.context import open_dstrail
from dstrail.domain.forensics.findings import FindingFilter, Rule
from dstrail.services import findings as findings_service
from dstrail.services.forensics import follower_for
from dstrail.settings import Settings
from forensics_generator import build


def all_findings(dstrail: Any) -> list[Any]:
    """Every finding, newest first."""
    found: list[Any] = []
    wanted = FindingFilter(limit=1000)
    with dstrail.store.read() as tx:
        while True:
            page = findings_service.list_findings(tx, wanted)
            found.extend(view.finding for view in page.findings)
            if page.next is None:
                return found
            wanted = FindingFilter(limit=1000, cursor=page.next)


def score(incidents: list[dict[str, Any]], findings: list[Any]) -> dict[str, dict[str, Any]]:
    """Per rule: planted, found, true and false positives, precision, recall."""
    seqs_of: dict[str, list[set[int]]] = collections.defaultdict(list)
    for incident in incidents:
        seqs_of[incident["rule"]].append(set(incident["seqs"]))
    table: dict[str, dict[str, Any]] = {}
    for rule in Rule:
        planted = seqs_of.get(rule.value, [])
        mine = [f for f in findings if f.rule is rule]
        hit: set[int] = set()
        true = []
        false = []
        for finding in mine:
            linked = set(finding.seqs)
            matches = [index for index, seqs in enumerate(planted) if linked & seqs]
            (true if matches else false).append(finding)
            hit.update(matches)
        table[rule.value] = {
            "planted": len(planted), "found": len(mine), "tp": len(true), "fp": len(false),
            "precision": len(true) / len(mine) if mine else None,
            "recall": len(hit) / len(planted) if planted else None,
            "missed": [incidents_of(incidents, rule.value)[i] for i in range(len(planted)) if i not in hit],
            "false": false,
        }  # fmt: skip
    return table


def incidents_of(incidents: list[dict[str, Any]], rule: str) -> list[dict[str, Any]]:
    return [incident for incident in incidents if incident["rule"] == rule]


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def report(table: dict[str, dict[str, Any]], *, misses: bool) -> None:
    print(f"{'rule':<24}{'planted':>8}{'found':>7}{'TP':>5}{'FP':>5}{'precision':>11}{'recall':>8}")
    for rule, row in table.items():
        print(f"{rule:<24}{row['planted']:>8}{row['found']:>7}{row['tp']:>5}{row['fp']:>5}"
              f"{_figure(row['precision']):>11}{_figure(row['recall']):>8}")  # fmt: skip
    if not misses:
        return
    for rule, row in table.items():
        for incident in row["missed"]:
            print(f"MISSED {rule} ({incident['variation']}): seqs {incident['seqs'][:12]}")
        for finding in row["false"][:15]:
            print(f"FALSE {rule}: {finding.summary} seqs {list(finding.seqs)[:6]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default: SQLite)")
    parser.add_argument("--reuse", action="store_true", help="evaluate the store under --out")
    parser.add_argument("--misses", action="store_true", help="list misses and false positives")
    args = parser.parse_args(argv)
    out = args.out or Path(f"forensics-eval-{args.events}-{args.seed}")
    if args.reuse:
        planted = orjson.loads((out / "incidents.json").read_bytes())
        url, events = planted["url"], planted["events"]
    else:
        built = build(args.events, args.seed, out, database_url=args.database_url)
        print(f"built {built.events:,} events (seed {args.seed}): generated in "
              f"{built.generate_seconds:.1f} s, loaded in {built.load_seconds:.1f} s")  # fmt: skip
        url, events = built.url, built.events
        planted = orjson.loads((out / "incidents.json").read_bytes())
    dstrail = open_dstrail(Settings(data_dir=out / "data", database_url=url))
    follower = follower_for(dstrail.store, settings=dstrail.settings, clock=dstrail.clock)
    started = time.perf_counter()
    taken = follower.catch_up()
    seconds = time.perf_counter() - started
    if taken:
        print(f"follower: {taken:,} events in {seconds:.1f} s, {taken / seconds:,.0f} events/s "
              f"(grants and rules, batches of {follower.batch_events:,})")  # fmt: skip
    found = all_findings(dstrail)
    print(f"seed {args.seed}: {events:,} events, {len(planted['incidents'])} incidents planted, "
          f"{len(found)} findings")  # fmt: skip
    if planted["missed"]:
        print(f"not planted (no fitting target found): {planted['missed']}")
    report(score(planted["incidents"], found), misses=args.misses)
    dstrail.store.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
