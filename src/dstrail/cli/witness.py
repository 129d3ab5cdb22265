"""``witness`` commands: the witnesses that cosign this log's checkpoints, and dstrail as a
witness for other logs (c2sp.org/tlog-witness, c2sp.org/tlog-cosignature).

::

    dstrail witness add NAME --vkey VKEY --url URL    # URL: its submission prefix
    dstrail witness list | remove NAME
    dstrail witness submit                             # the latest checkpoint, now
    dstrail witness public-key [--format json|vkey]    # this instance's cosignature vkey
    dstrail witness logs add ORIGIN --vkey VKEY        # a log this instance witnesses
    dstrail witness logs list
    dstrail witness serve [--host H] [--port P] [--prefix /PATH]

Adding and removing a witness is recorded in the trail, made by ``operator``. ``submit``
exits 1 when a witness did not cosign (each witness's outcome is printed, one JSON line a
witness). The cosigning key of ``witness serve`` is ``witness-signing.key`` in the data
directory (made once, mode 0600), not the audit signing key.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys

from dstrail.api.access_log import LOG_FORMATS
from dstrail.audit import submission, witnessing
from dstrail.audit.witnessing import WitnessSigner
from dstrail.cli.common import (
    Subparsers,
    add_command,
    open_from,
    print_json,
    settings_from,
    subcommands,
)
from dstrail.domain.users import OPERATOR
from dstrail.errors import InvalidInput
from dstrail.keys import load_witness_signing_key
from dstrail.services import witnesses as witness_service
from dstrail.settings import DEFAULT_LOG_ORIGIN, Settings

_PREFIX = re.compile(r"(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*/?")
PUBLIC_KEY_FORMATS = ("json", "vkey")


def register(commands: Subparsers) -> None:
    """Add the commands of this family."""
    witness = subcommands(
        commands, "witness", "C2SP witnesses: who cosigns this log, and witnessing others"
    )
    add = add_command(witness, "add", _add, "ask a witness to cosign this log's checkpoints")
    add.add_argument("name", help="the witness's key name (that of its vkey)")
    add.add_argument(
        "--vkey", required=True, help="its cosignature verifier key (signature type 0x04)"
    )
    add.add_argument(
        "--url", required=True, help="its submission prefix (add-checkpoint is appended)"
    )
    add_command(witness, "list", _list, "the witnesses, their cosigned size and last error")
    remove = add_command(witness, "remove", _remove, "stop asking a witness")
    remove.add_argument("name")
    add_command(witness, "submit", _submit, "submit the latest checkpoint to each witness now")
    public_key = add_command(
        witness, "public-key", _public_key, "this instance's cosignature verifier key"
    )
    public_key.add_argument(
        "--format", default="json", help="json (default) or vkey (the vkey line alone)"
    )
    serve = add_command(witness, "serve", _serve, "witness other logs: the tlog-witness HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8002)
    serve.add_argument(
        "--prefix", default="", help="the path the routes start with (default: none)"
    )
    serve.add_argument(
        "--log-format",
        choices=sorted(LOG_FORMATS),
        default="text",
        help="the log on stderr: text (default) or json (one JSON object a line)",
    )
    logs = subcommands(witness, "logs", "the logs this instance witnesses")
    logs_add = add_command(logs, "add", _logs_add, "witness a log (from size 0)")
    logs_add.add_argument("origin", help="the log's origin, the first line of its checkpoints")
    logs_add.add_argument(
        "--vkey", required=True, help="the log's Ed25519 verifier key (its key name: ORIGIN)"
    )
    add_command(logs, "list", _logs_list, "the logs witnessed and their latest cosigned size")


def witness_signer(settings: Settings) -> WitnessSigner:
    """The witness's cosigning key under its name (the key file is made on first use)."""
    name = witnessing.witness_name(settings)
    return WitnessSigner.from_text(load_witness_signing_key(settings), name=name)


# -- this log's witnesses ----------------------------------------------------------------------


def _add(args: argparse.Namespace) -> int:
    dstrail = open_from(args)
    with dstrail.store.write() as tx:
        added = witness_service.add_witness(
            tx, name=args.name, vkey=args.vkey, url=args.url, actor=OPERATOR,
            now_ms=dstrail.clock(),
        )  # fmt: skip
    print_json(witness_service.witness_document(added))
    if dstrail.signer.origin == DEFAULT_LOG_ORIGIN:
        sys.stderr.write(
            f"dstrail: warning: this log's origin is the default {DEFAULT_LOG_ORIGIN}, which "
            "every installation that sets none shares, and witnesses know a log by its origin: "
            "set DSTRAIL_AUDIT_LOG_ORIGIN (or DSTRAIL_PUBLIC_URL) to a name of this log's own\n"
        )
    return 0


def _list(args: argparse.Namespace) -> int:
    dstrail = open_from(args)
    with dstrail.store.read() as tx:
        found = witness_service.witnesses(tx, actor=OPERATOR)
    for each in found:
        print_json(witness_service.witness_document(each))
    return 0


def _remove(args: argparse.Namespace) -> int:
    dstrail = open_from(args)
    with dstrail.store.write() as tx:
        removed = witness_service.remove_witness(
            tx, name=args.name, actor=OPERATOR, now_ms=dstrail.clock()
        )
    print_json({**witness_service.witness_document(removed), "removed": True})
    return 0


def _submit(args: argparse.Namespace) -> int:
    dstrail = open_from(args)
    with submission.new_client() as client:
        results = submission.submit_to_witnesses(dstrail.store, client, clock=dstrail.clock)
    for result in results:
        print_json(result.document())
    return 1 if any(result.outcome == "failed" for result in results) else 0


# -- dstrail as a witness ----------------------------------------------------------------------


def _public_key(args: argparse.Namespace) -> int:
    if args.format not in PUBLIC_KEY_FORMATS:
        accepted = ", ".join(PUBLIC_KEY_FORMATS)
        raise InvalidInput(f"--format: {args.format!r} is not accepted; accepted: {accepted}")
    signer = witness_signer(settings_from(args))
    if args.format == "vkey":
        sys.stdout.write(signer.vkey() + "\n")
    else:
        print_json(witnessing.public_key_document(signer))
    return 0


def _logs_add(args: argparse.Namespace) -> int:
    witnessing.check_log_vkey(args.origin, args.vkey)  # refused before the database opens
    dstrail = open_from(args)
    with dstrail.store.write() as tx:
        added = witnessing.add_witnessed_log(tx, origin=args.origin, vkey=args.vkey)
    print_json(witnessing.witnessed_document(added))
    return 0


def _logs_list(args: argparse.Namespace) -> int:
    dstrail = open_from(args)
    with dstrail.store.read() as tx:
        found = witnessing.witnessed_logs(tx)
    for each in found:
        print_json(witnessing.witnessed_document(each))
    return 0


def _serve(args: argparse.Namespace) -> int:
    """Serve the witness API until SIGTERM or Ctrl-C, then close the database and exit 0."""
    import uvicorn

    from dstrail.api.witness import create_witness_app
    from dstrail.cli.serve import StopOnSignals, configure_logging

    if not _PREFIX.fullmatch(args.prefix):
        raise InvalidInput(
            f"--prefix: {args.prefix[:200]!r} is not accepted; accepted: empty, or a URL path "
            "such as /witness"
        )
    if not 1 <= args.port <= 65535:
        raise InvalidInput(f"--port: {args.port} is not accepted; accepted: 1 to 65535")
    configure_logging(args.log_format)
    settings = settings_from(args)
    signer = witness_signer(settings)
    with StopOnSignals() as stop:
        dstrail = open_from(args)
        try:
            app = create_witness_app(dstrail, signer, prefix=args.prefix)
            logging.getLogger("dstrail.witness").info(
                "witnessing as %s on http://%s:%d%s", signer.vkey(), args.host, args.port,
                args.prefix.rstrip("/"),
            )  # fmt: skip
            server = uvicorn.Server(
                uvicorn.Config(
                    app, host=args.host, port=args.port, log_level="info", log_config=None
                )
            )
            stop.server = server
            if not stop.requested:
                server.run()
        finally:
            dstrail.store.dispose()
    return 0
