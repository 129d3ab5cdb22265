"""The trail as a C2SP transparency log (``tlog-checkpoint``, ``tlog-tiles``), for any
verifier: ``GET /api/dstrail/v1/tlog/checkpoint`` is the latest checkpoint as a signed note,
with the cosignatures of the witnesses that cosigned it. Same auth as the audit API."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from dstrail.api.deps import AuditReaderDep, DstrailDep
from dstrail.api.errors import PUBLIC
from dstrail.audit import tlog

PREFIX = "/api/dstrail/v1/tlog"
NOTE_MEDIA_TYPE = "text/plain; charset=utf-8"
router = APIRouter(
    prefix=PREFIX, tags=["transparency log"], responses=PUBLIC.responses(401, 403, 404)
)


@router.get(
    "/checkpoint",
    summary="The latest checkpoint as a C2SP signed note, with its witnesses' cosignatures",
    response_class=PlainTextResponse,
)
def checkpoint(dstrail: DstrailDep, _caller: AuditReaderDep) -> PlainTextResponse:
    """``<origin>``, ``<tree size>``, ``<base64 root>``, a blank line, then the log's
    signature line and one line a cosignature (c2sp.org/tlog-checkpoint). Verify it with the
    vkey of ``/api/datasource/v1/audit/integrity/public-key``."""
    with dstrail.store.read() as tx:
        note = tlog.checkpoint_note(tx)
    return PlainTextResponse(
        note,
        media_type=NOTE_MEDIA_TYPE,
        headers={"Cache-Control": "no-cache"},
    )
