"""``stream`` commands: where the trail is streamed to (SIEMs, event buses), and the workers.

::

    dstrail stream add NAME --kind webhook --url https://siem.example.com/hook
    dstrail stream add NAME --kind splunk-hec --url https://splunk:8088 --secret-stdin < token
    dstrail stream add NAME --kind syslog --host siem --port 6514 --tls --format cef
    dstrail stream add NAME --kind nats --url nats://bus:4222 --subject audit.dstrail
    dstrail stream list | pause NAME | resume NAME | remove NAME
    dstrail stream replay NAME (--from-seq N | --from-time ISO)
    dstrail stream rotate-secret NAME [--secret-stdin]
    dstrail stream run

A secret (a Splunk HEC token, a NATS token, a webhook signing key of your own) is read from
stdin, one line, never from the command line: arguments are visible in the process list and
kept in shell history. A webhook given none gets a new signing key, printed this once. Every
change is recorded in the trail, made by ``operator``.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import logging
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING

from dstrail.api.access_log import LOG_FORMATS
from dstrail.cli.common import Subparsers, add_command, open_from, print_json, subcommands
from dstrail.domain.streams import StreamFormat, StreamKind
from dstrail.domain.timestamps import parse_iso
from dstrail.domain.users import OPERATOR
from dstrail.errors import DstrailError, InvalidInput
from dstrail.services import streams as stream_service
from dstrail.services.streams import DestinationSpec
from dstrail.streaming.checks import check_new_destination

if TYPE_CHECKING:
    from dstrail.streaming.worker import StreamWorkers

logger = logging.getLogger("dstrail.streaming")

KINDS = ", ".join(kind.value for kind in StreamKind)
FORMATS = ", ".join(format_.value for format_ in StreamFormat)
_STDIN_HELP = "read the secret from stdin (one line; prompted for, unseen, on a terminal)"


def register(commands: Subparsers) -> None:
    """Add the commands of this family."""
    stream = subcommands(commands, "stream", "stream the trail to SIEMs and event buses")
    add = add_command(stream, "add", _add, "add a destination; prints it as JSON")
    add.add_argument("name", help="1-64 lower-case letters, digits, '-', '_' or '.'")
    add.add_argument("--kind", required=True, help=f"one of {KINDS}")
    add.add_argument("--format", default=StreamFormat.NATIVE.value, help=f"one of {FORMATS}")
    add.add_argument("--url", default=None, help="webhook, splunk-hec (collector), nats")
    add.add_argument("--host", default=None, help="syslog")
    add.add_argument("--port", default=None, help="syslog")
    add.add_argument("--tls", action="store_true", help="syslog over TLS (RFC 5425)")
    add.add_argument("--subject", default=None, help="nats")
    add.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another setting of the kind (e.g. index=, sourcetype=, body=ndjson, caFile=)",
    )
    add.add_argument("--secret-stdin", action="store_true", help=_STDIN_HELP)
    add.add_argument(
        "--check",
        action="store_true",
        help="reach the receiver first (a signed empty batch, Splunk's health, a connection, "
        "the JetStream stream); unreachable: nothing is added",
    )
    add.add_argument(
        "--event-kind", action="append", default=[], help="only events of this kind (repeat)"
    )
    add.add_argument(
        "--data-source", action="append", default=[], help="only events of this data source"
    )
    add.add_argument(
        "--from-seq",
        type=int,
        default=None,
        help="the first event to deliver (1: the whole trail); default: the next one appended",
    )
    add_command(stream, "list", _list, "destinations with their lag and last delivery, JSON lines")
    pause = add_command(stream, "pause", _pause, "stop delivering (the cursor stays)")
    pause.add_argument("name")
    resume = add_command(stream, "resume", _resume, "deliver again from the cursor")
    resume.add_argument("name")
    replay = add_command(stream, "replay", _replay, "deliver again from an event on")
    replay.add_argument("name")
    start = replay.add_mutually_exclusive_group(required=True)
    start.add_argument("--from-seq", type=int, default=None, help="from this event's seq")
    start.add_argument(
        "--from-time", default=None, help="from the first event at or after this ISO 8601 time"
    )
    remove = add_command(stream, "remove", _remove, "remove a destination (its cursor with it)")
    remove.add_argument("name")
    rotate = add_command(
        stream, "rotate-secret", _rotate, "replace the secret (a webhook: a new key, printed once)"
    )
    rotate.add_argument("name")
    rotate.add_argument("--secret-stdin", action="store_true", help=_STDIN_HELP)
    for parser in (add, rotate):  # no `--secret VALUE` taken as an abbreviated --secret-stdin
        parser.allow_abbrev = False
    run = add_command(stream, "run", _run, "deliver in the foreground until SIGTERM or Ctrl-C")
    run.add_argument(
        "--log-format",
        choices=sorted(LOG_FORMATS),
        default="text",
        help="the log on stderr: text (default) or json (one JSON object a line)",
    )
    run.add_argument(  # how `dstrail serve` starts it: it must not outlive the server
        "--exit-with-parent", action="store_true", help=argparse.SUPPRESS
    )


# -- input -------------------------------------------------------------------------------------


def read_secret() -> str:
    """One line from stdin (a prompt that does not echo on a terminal); never empty."""
    if sys.stdin.isatty():
        secret = getpass.getpass("secret: ")
    else:
        secret = sys.stdin.readline().rstrip("\r\n")
    if not secret:
        raise InvalidInput("--secret-stdin: stdin gave no secret (one line expected)")
    return secret


def config_of(args: argparse.Namespace) -> dict[str, str]:
    """The transport settings from ``--url``/``--host``/``--port``/``--tls``/``--subject`` and
    each ``--config KEY=VALUE``; a key given twice is refused."""
    config: dict[str, str] = {}

    def put(key: str, value: str, option: str) -> None:
        if key in config:
            raise InvalidInput(f"{option}: {key!r} is given twice")
        config[key] = value

    for key in ("url", "host", "port", "subject"):
        value = getattr(args, key)
        if value is not None:
            put(key, value, f"--{key}")
    if args.tls:
        put("tls", "true", "--tls")
    for item in args.config:
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise InvalidInput(f"--config: {item!r} is not KEY=VALUE")
        put(key, value, "--config")
    return config


# -- commands ----------------------------------------------------------------------------------


def _add(args: argparse.Namespace) -> int:
    spec = DestinationSpec(
        name=args.name,
        kind=args.kind,
        format=args.format,
        config=config_of(args),
        secret=read_secret() if args.secret_stdin else None,
        event_kinds=tuple(args.event_kind),
        data_source_names=tuple(args.data_source),
        from_seq=args.from_seq,
    )
    dstrail = open_from(args)
    draft = stream_service.draft_destination(spec, actor=OPERATOR, now_ms=dstrail.clock())
    if args.check:
        check_new_destination(draft, field="--check")
    with dstrail.store.write() as tx:
        added = stream_service.add_destination(
            tx, dstrail.vault, spec=spec, actor=OPERATOR, now_ms=dstrail.clock(), draft=draft
        )
    print_json(
        stream_service.changed_document(
            dstrail.store,
            added.destination,
            now_ms=dstrail.clock(),
            generated_secret=added.generated_secret,
        )
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    dstrail = open_from(args)
    with dstrail.store.read() as tx:
        found = stream_service.statuses(tx, actor=OPERATOR, now_ms=dstrail.clock())
    for each in found:
        print_json(stream_service.status_document(each))
    return 0


def _set_paused(args: argparse.Namespace, paused: bool) -> int:
    dstrail = open_from(args)
    with dstrail.store.write() as tx:
        destination = stream_service.set_paused(
            tx, name=args.name, paused=paused, actor=OPERATOR, now_ms=dstrail.clock()
        )
    print_json(stream_service.changed_document(dstrail.store, destination, now_ms=dstrail.clock()))
    return 0


def _pause(args: argparse.Namespace) -> int:
    return _set_paused(args, True)


def _resume(args: argparse.Namespace) -> int:
    return _set_paused(args, False)


def _replay(args: argparse.Namespace) -> int:
    from_time = None if args.from_time is None else parse_iso(args.from_time, field="--from-time")
    dstrail = open_from(args)
    with dstrail.store.write() as tx:
        destination = stream_service.replay(
            tx, name=args.name, from_seq=args.from_seq, from_time_ms=from_time, actor=OPERATOR,
            now_ms=dstrail.clock(),
        )  # fmt: skip
    print_json(stream_service.changed_document(dstrail.store, destination, now_ms=dstrail.clock()))
    return 0


def _remove(args: argparse.Namespace) -> int:
    dstrail = open_from(args)
    with dstrail.store.write() as tx:
        removed = stream_service.remove(tx, name=args.name, actor=OPERATOR, now_ms=dstrail.clock())
    print_json({"name": removed.name, "id": removed.id, "removed": True, "cursor": removed.cursor})
    return 0


def _rotate(args: argparse.Namespace) -> int:
    secret = read_secret() if args.secret_stdin else None
    dstrail = open_from(args)
    with dstrail.store.write() as tx:
        rotated = stream_service.rotate_secret(
            tx, dstrail.vault, name=args.name, secret=secret, actor=OPERATOR,
            now_ms=dstrail.clock(),
        )  # fmt: skip
    print_json(
        stream_service.changed_document(
            dstrail.store,
            rotated.destination,
            now_ms=dstrail.clock(),
            generated_secret=rotated.generated_secret,
        )
    )
    return 0


# -- the workers -------------------------------------------------------------------------------


class _StopRequest:
    """Set by SIGTERM and SIGINT. The handler only flips a flag: it takes no lock (a handler
    runs between any two bytecodes of the main thread, maybe while that thread holds one)."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, _signal: int, _frame: object) -> None:
        self.requested = True


def _run(args: argparse.Namespace) -> int:
    """Deliver until SIGTERM or Ctrl-C, then let each destination finish its batch and give
    its lease up, close the database and exit 0 (1 when the workers failed)."""
    from dstrail.cli.serve import configure_logging
    from dstrail.streaming.worker import StreamWorkers, worker_settings

    configure_logging(args.log_format)
    stop = _StopRequest()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    failed: BaseException | None = None
    try:
        dstrail = open_from(args)
        try:
            workers = StreamWorkers(
                dstrail.store, dstrail.vault, clock=dstrail.clock,
                settings=worker_settings(dstrail.settings),
            )  # fmt: skip
            if not stop.requested:
                parent = os.getppid() if args.exit_with_parent else None
                failed = _deliver_until(stop, workers, parent=parent)
        finally:
            dstrail.store.dispose()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failed is not None:
        raise DstrailError(f"the stream workers stopped: {failed!r}")
    logger.info("stopped: every database connection is closed")
    return 0


def _deliver_until(
    stop: _StopRequest, workers: StreamWorkers, *, parent: int | None = None
) -> BaseException | None:
    """Run ``workers`` in a thread until a stop is requested, they end by themselves or (when
    ``parent`` is given) the process that started this one is gone; then stop them and wait.
    Returns what they failed with, if they did.

    ``StreamWorkers.stop`` asks their loop to finish (and does nothing while the loop is not
    running yet, or once it closed): it is asked again until the thread ends."""
    failure: list[BaseException] = []

    def deliver() -> None:
        try:
            workers.run()
        except BaseException as error:  # reported by the main thread
            failure.append(error)

    thread = threading.Thread(target=deliver, name="dstrail-streams", daemon=True)
    thread.start()
    while not stop.requested and thread.is_alive():
        thread.join(0.2)
        if parent is not None and os.getppid() != parent:
            logger.warning("the server that started this delivery is gone: stopping")
            break
    while thread.is_alive():
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            workers.stop(timeout=0)
        thread.join(0.2)
    return failure[0] if failure else None
