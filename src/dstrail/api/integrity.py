"""Integrity of the trail over HTTP: checkpoints, the public key, inclusion and consistency
proofs, and offline proofs of one event (C2SP tlog-proof). Same auth and error shapes as the
audit API (``/api/datasource/v1/audit...``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse, Response

from dstrail.api.deps import AuditReaderDep, DstrailDep, trail_reader
from dstrail.api.errors import AUDIT
from dstrail.audit import proofs, tlog_proof
from dstrail.domain.trail import MAX_SEQ, checkpoint_document, note
from dstrail.domain.trail.tlog_proof import EXTENSION
from dstrail.services.trail_reads import Surface, TrailReader

PREFIX = "/api/datasource/v1/audit/integrity"
router = APIRouter(
    prefix=PREFIX,
    tags=["audit integrity"],
    responses=AUDIT.responses(400, 401, 403, 404),
)
ProofReader = Annotated[TrailReader, Depends(trail_reader(Surface.PROOF))]
"""The caller of a proof that carries its event: a read of the trail, recorded."""


def _asked(seq: int, tree_size: int | None) -> dict[str, object]:
    return {"seq": seq} if tree_size is None else {"seq": seq, "treeSize": tree_size}


@router.get("/public-key", summary="The Ed25519 key that signs checkpoints")
def public_key(dstrail: DstrailDep, _caller: AuditReaderDep) -> dict[str, str]:
    """``{algorithm, keyId, publicKey (base64 of the 32 raw bytes), pem}``."""
    return dstrail.signer.public_key_document()


@router.get("/checkpoint", summary="The latest signed checkpoint, or the one of a given tree size")
def checkpoint(
    dstrail: DstrailDep,
    _caller: AuditReaderDep,
    tree_size: Annotated[
        int | None, Query(alias="treeSize", ge=0, le=MAX_SEQ, description="default: the latest")
    ] = None,
) -> dict[str, Any]:
    """A checkpoint: ``treeSize``, ``rootHash`` (hex), ``timestamp``, ``keyId``, ``signature``
    (base64 Ed25519 over the message in docs/integrity.md)."""
    with dstrail.store.read() as tx:
        record = proofs.find_checkpoint(tx, tree_size=tree_size)
    return checkpoint_document(record)


@router.get(
    "/inclusion",
    summary="Proof that an event (by sequence number) is in the tree of a checkpoint",
    responses=AUDIT.responses(503),
)
def inclusion(
    dstrail: DstrailDep,
    reader: ProofReader,
    seq: Annotated[int, Query(ge=1, le=MAX_SEQ, description="the event's sequence number")],
    tree_size: Annotated[
        int | None,
        Query(
            alias="treeSize",
            ge=1,
            le=MAX_SEQ,
            description="default: the latest checkpoint covering it",
        ),
    ] = None,
) -> dict[str, Any]:
    """The event, its leaf hash and the RFC 6962 audit path to the root of ``treeSize``
    (a read of the event, recorded)."""
    with dstrail.store.read() as tx:
        proof = proofs.prove_inclusion(tx, seq=seq, tree_size=tree_size)
    reader.record(_asked(seq, tree_size), rows=1, detail={"format": "inclusion"})
    return proof.document()


@router.get(
    "/consistency",
    summary="Proof that the tree of `second` events extends the tree of `first` events",
)
def consistency(
    dstrail: DstrailDep,
    _caller: AuditReaderDep,
    first: Annotated[int, Query(ge=0, le=MAX_SEQ, description="the older tree size")],
    second: Annotated[
        int | None,
        Query(ge=0, le=MAX_SEQ, description="the newer tree size; default: latest checkpoint"),
    ] = None,
) -> dict[str, Any]:
    """RFC 6962 consistency proof, with both roots (and checkpoints where they exist)."""
    with dstrail.store.read() as tx:
        proof = proofs.prove_consistency(tx, first=first, second=second)
    return proof.document()


@router.get(
    "/proof",
    summary="An offline proof of one event (C2SP tlog-proof): its encoding, inclusion proof "
    "and cosigned checkpoint",
    # A class without a media type, so that the error models stay documented as JSON (FastAPI
    # files them under the route class's media type); the proof itself is text/plain.
    response_class=Response,
    responses={
        200: {
            "description": "The tlog-proof",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **AUDIT.responses(503),
    },
)
def proof(
    dstrail: DstrailDep,
    reader: ProofReader,
    seq: Annotated[int, Query(ge=1, le=MAX_SEQ, description="the event's sequence number")],
    tree_size: Annotated[
        int | None,
        Query(
            alias="treeSize",
            ge=1,
            le=MAX_SEQ,
            description="the C2SP checkpoint to prove against; default: the smallest covering it",
        ),
    ] = None,
) -> PlainTextResponse:
    """``c2sp.org/tlog-proof@v1``: ``extra`` (the event's canonical encoding, base64),
    ``index`` (seq - 1), the inclusion proof (base64, one hash a line), a blank line, then
    the checkpoint note with its witnesses' cosignatures. Check it with `dstrail audit verify
    --proof FILE --vkey VKEY` (docs/integrity.md). 404 when only a checkpoint of the former
    form (before C2SP) covers the event. A read of the event, recorded."""
    with dstrail.store.read() as tx:
        made = tlog_proof.prove_event(tx, seq=seq, tree_size=tree_size)
    reader.record(_asked(seq, tree_size), rows=1, detail={"format": "tlog-proof"})
    return PlainTextResponse(
        made.encode(),
        media_type=note.TEXT_MEDIA_TYPE,
        headers={
            "Content-Disposition": f'inline; filename="dstrail-event-{seq}{EXTENSION}"',
            "Cache-Control": "no-store",  # it holds the event itself, as the audit API's answers
        },
    )
