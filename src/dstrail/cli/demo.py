"""``demo``: load demo data (once) and serve, as ``make run`` does."""

from __future__ import annotations

import argparse

from dstrail.cli.common import Subparsers, add_command, open_from
from dstrail.cli.serve import add_server_options, run_server
from dstrail.demo import load_demo


def register(commands: Subparsers) -> None:
    """Add the commands of this family."""
    demo = add_command(
        commands,
        "demo",
        _demo,
        "load demo data (the first time), print an admin API key, then serve",
    )
    add_server_options(demo)
    demo.add_argument("--no-serve", action="store_true", help="load and print, do not serve")


def _demo(args: argparse.Namespace) -> int:
    dstrail = open_from(args)
    login = load_demo(dstrail)
    base = f"http://{args.host}:{args.port}"
    print("demo data " + ("loaded" if login.created else "already present"), flush=True)
    print(f"admin user:    {login.admin_username}")
    print(f"admin API key: {login.admin_api_key}   (shown once; stored only as a hash)")
    print(f"console:       {base}/")
    print("try the audit API:")
    print(
        f"  curl -s -H 'X-Domino-Api-Key: {login.admin_api_key}' '{base}/api/datasource/v1/audit'"
    )
    print(flush=True)
    dstrail.store.dispose()
    if args.no_serve:
        return 0
    return run_server(args)
