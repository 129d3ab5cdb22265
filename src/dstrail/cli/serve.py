"""``serve`` and ``migrate``."""

from __future__ import annotations

import argparse
import logging

from dstrail.audit.query import trail_size
from dstrail.cli.common import Subparsers, add_command, open_from, print_json


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


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """--host, --port, --flight-port."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--flight-port", type=int, default=8001)


def run_server(args: argparse.Namespace) -> int:
    """Serve an opened dstrail until interrupted."""
    # Imported here: the server's dependencies (web app, Arrow Flight) would add a second to
    # every other command's start.
    import uvicorn

    from dstrail.app import create_app
    from dstrail.audit.checkpoints import start_checkpoint_ticker
    from dstrail.proxy import start_flight_server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    dstrail = open_from(args)
    app = create_app(dstrail)
    start_checkpoint_ticker(
        dstrail.store, clock=dstrail.clock, every_seconds=dstrail.settings.checkpoint_every_seconds
    )
    flight_server = start_flight_server(dstrail, host=args.host, port=args.flight_port)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="info", access_log=False)
    finally:
        flight_server.shutdown()
    return 0


def _serve(args: argparse.Namespace) -> int:
    return run_server(args)


def _migrate(args: argparse.Namespace) -> int:
    dstrail = open_from(args)
    with dstrail.store.read() as tx:
        size = trail_size(tx)
    print_json({"migrated": True, "auditEvents": size})
    return 0
