"""``serve`` and ``migrate``."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager, ExitStack
from typing import TYPE_CHECKING, Any

from dstrail.api.access_log import LOG_FORMATS
from dstrail.audit.query import trail_size
from dstrail.cli.common import Subparsers, add_command, open_from, print_json

if TYPE_CHECKING:
    from dstrail.store import Store


def register(commands: Subparsers) -> None:
    """Add the commands of this family."""
    serve = add_command(
        commands,
        "serve",
        _serve,
        "run the HTTP API, proxy and console on one port, Arrow Flight on another",
    )
    add_server_options(serve)
    add_command(commands, "migrate", _migrate, "bring the database schema up to date")


class _LogFormat(argparse.Action):
    """``--log-format``: refused while parsing (before ``demo`` loads anything), in the one
    line every refused command prints."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        if values not in LOG_FORMATS:
            accepted = ", ".join(LOG_FORMATS)
            parser.exit(
                2,
                f"dstrail: error: --log-format: {values!r} is not accepted; accepted: {accepted}\n",
            )
        setattr(namespace, self.dest, values)


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """--host, --port, --flight-port, --log-format."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--flight-port", type=int, default=8001)
    parser.add_argument(
        "--log-format",
        action=_LogFormat,
        default="text",
        help="text (default) or json (one JSON object a line): the server log on stderr, "
        "with one access line per request (logger dstrail.access)",
    )


def configure_logging(log_format: str) -> None:
    """Every log line (uvicorn's too, dstrail.access's) on stderr in ``log_format``."""
    handler = logging.StreamHandler()
    handler.setFormatter(LOG_FORMATS[log_format]())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per delivered batch


def run_server(args: argparse.Namespace) -> int:
    """Serve an opened dstrail (and, unless ``DSTRAIL_STREAM_WORKERS=off``, deliver its
    stream destinations: in a child process by default, submit its checkpoints to its
    witnesses and keep its forensics state up to the head) until SIGTERM or Ctrl-C; then stop
    the Flight server, the stream delivery, the witness submitter, the forensics follower and
    the checkpoint ticker, close every database connection (SQLite folds its WAL into the
    database file) and exit 0."""
    # Imported here: the server's dependencies (web app, Arrow Flight) would add a second to
    # every other command's start.
    import uvicorn

    from dstrail.app import create_app
    from dstrail.audit.checkpoints import start_checkpoint_ticker
    from dstrail.audit.submission import start_witness_submitter
    from dstrail.cli.delivery import DeliveryProcess
    from dstrail.proxy import start_flight_server
    from dstrail.services.forensics import ForensicsFollowerThread, follower_for
    from dstrail.services.retention import RetentionScheduler
    from dstrail.store.partitions import start_partition_keeper
    from dstrail.streaming.worker import StreamWorkers, worker_settings

    configure_logging(args.log_format)
    with ExitStack() as stack:  # undone in reverse: Flight, witnesses, ticker, database, signals
        stop = stack.enter_context(StopOnSignals())
        dstrail = open_from(args)
        stack.callback(_close, dstrail.store)
        app = create_app(dstrail)
        ticker = start_checkpoint_ticker(
            dstrail.store,
            clock=dstrail.clock,
            every_seconds=dstrail.settings.checkpoint_every_seconds,
        )
        stack.callback(_stop_ticker, ticker)
        # PostgreSQL: the audit table's months ahead, created daily (after open_from's).
        stack.callback(start_partition_keeper(dstrail.store, clock=dstrail.clock).set)
        purges = RetentionScheduler(
            dstrail.store, dstrail.archive(), public_key=dstrail.signer.public_raw,
            clock=dstrail.clock, every_seconds=dstrail.settings.retention_check_seconds,
        )  # fmt: skip
        purges.start()
        stack.callback(purges.stop)
        forensics = ForensicsFollowerThread(
            follower_for(dstrail.store, settings=dstrail.settings, clock=dstrail.clock),
            every_seconds=dstrail.settings.forensics_follow_seconds,
        )
        forensics.start()
        stack.callback(forensics.stop)
        submitter = start_witness_submitter(
            dstrail.store,
            clock=dstrail.clock,
            every_seconds=dstrail.settings.witness_submit_seconds,
        )
        stack.callback(submitter.stop)
        if dstrail.settings.stream_workers == "process":
            delivery = DeliveryProcess(dstrail.settings, log_format=args.log_format)
            delivery.start()
            stack.callback(delivery.stop)
        elif dstrail.settings.stream_workers == "thread":
            workers = StreamWorkers(
                dstrail.store, dstrail.vault, clock=dstrail.clock,
                settings=worker_settings(dstrail.settings),
            )  # fmt: skip
            workers.start()
            stack.callback(workers.stop)
        flight_server = start_flight_server(dstrail, host=args.host, port=args.flight_port)
        stack.callback(flight_server.shutdown)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=args.host,
                port=args.port,
                log_level="info",
                log_config=None,  # uvicorn's lines go through our handler, in our format
                access_log=False,  # dstrail.access logs each request instead
            )
        )
        stop.server = server
        if not stop.requested:
            server.run()
    return 0


class StopOnSignals(AbstractContextManager["StopOnSignals"]):
    """SIGTERM and SIGINT ask the server to stop, before uvicorn listens for them (while
    dstrail opens) and after (while it closes).

    uvicorn handles both while it runs, then restores the handlers it found and raises the
    signal again: with the default handlers, SIGTERM would kill the process before the
    database is closed, and SIGINT would end in a ``KeyboardInterrupt``. With these, the
    raised signal only asks again, and the command exits 0."""

    def __init__(self) -> None:
        self.server: Any = None
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, _signal: int, _frame: object) -> None:
        self.requested = True
        if self.server is not None:
            self.server.should_exit = True

    def __enter__(self) -> StopOnSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *_exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _stop_ticker(ticker: threading.Event) -> None:
    ticker.set()
    _join_thread("dstrail-checkpoints", timeout=30)


def _close(store: Store) -> None:
    store.dispose()
    logging.getLogger("dstrail").info("stopped: every database connection is closed")


def _join_thread(name: str, *, timeout: float) -> None:
    """Wait for the running threads named ``name`` (a tick in progress finishes its write)."""
    for thread in threading.enumerate():
        if thread.name == name and thread is not threading.current_thread():
            thread.join(timeout)


def _serve(args: argparse.Namespace) -> int:
    return run_server(args)


def _migrate(args: argparse.Namespace) -> int:
    dstrail = open_from(args)
    with dstrail.store.read() as tx:
        size = trail_size(tx)
    print_json({"migrated": True, "auditEvents": size})
    return 0
