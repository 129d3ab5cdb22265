"""The HTTP face of ``dstrail witness serve``: a C2SP witness (c2sp.org/tlog-witness) for
other logs, in an app of its own (it shares no route, auth or error shape with the audit
API: the protocol has no authentication beyond the checkpoint's signature, and answers
plain text).

- ``POST <prefix>/add-checkpoint``: cosign a checkpoint that extends the one cosigned last
  (``dstrail.audit.witnessing.add_checkpoint`` says which answer is given when);
- ``GET <prefix>/<lowercase hex SHA-256 of the origin>/checkpoint``: the latest checkpoint
  cosigned for that log, with the log's signature and the witness's cosignature (404 when
  none);
- ``GET <prefix>/healthz``: ``ok``.
"""

from __future__ import annotations

import logging
from typing import Final

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from dstrail.audit import witnessing
from dstrail.audit.witnessing import WitnessAnswer, WitnessSigner
from dstrail.context import Dstrail
from dstrail.domain.trail import note

logger = logging.getLogger("dstrail.witness")

MAX_BODY: Final = 1 << 20
"""Bytes of an add-checkpoint body accepted (63 proof lines and many signatures fit)."""


def create_witness_app(dstrail: Dstrail, signer: WitnessSigner, *, prefix: str = "") -> Starlette:
    """The witness app of ``dstrail``'s database, cosigning with ``signer``; its routes start
    with ``prefix`` (``""`` or a path such as ``/witness``)."""
    base = prefix.rstrip("/")

    def add(body: bytes) -> WitnessAnswer:
        with dstrail.store.write() as tx:  # committed before the answer is sent
            return witnessing.add_checkpoint(tx, body, signer=signer, now_ms=dstrail.clock())

    def latest(origin_hex: str) -> str | None:
        with dstrail.store.read() as tx:
            return witnessing.cosigned_checkpoint(tx, origin_hex)

    async def add_checkpoint(request: Request) -> Response:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return PlainTextResponse(f"the body is larger than {MAX_BODY} bytes\n", 413)
        answer = await run_in_threadpool(add, bytes(body))
        # The type as given: text/x.tlog.size is to be exactly that (no charset added).
        return Response(
            answer.body, status_code=answer.status, headers={"Content-Type": answer.media_type}
        )

    async def checkpoint(request: Request) -> Response:
        found = await run_in_threadpool(latest, str(request.path_params["origin_hash"]))
        if found is None:
            return PlainTextResponse("no checkpoint cosigned for this origin\n", 404)
        return Response(
            found, media_type=note.TEXT_MEDIA_TYPE, headers={"Cache-Control": "no-cache"}
        )

    async def healthz(_request: Request) -> Response:
        return PlainTextResponse("ok\n")

    return Starlette(
        routes=[
            Route(f"{base}/add-checkpoint", add_checkpoint, methods=["POST"]),
            Route(f"{base}/{{origin_hash}}/checkpoint", checkpoint, methods=["GET"]),
            Route(f"{base}/healthz", healthz, methods=["GET"]),
        ]
    )
