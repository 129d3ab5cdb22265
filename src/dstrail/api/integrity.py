"""Integrity of the trail over HTTP: checkpoints, the public key, inclusion and consistency
proofs. Same auth and error shapes as the audit API (``/api/datasource/v1/audit...``)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query

from dstrail.api.deps import AuditReaderDep, DstrailDep
from dstrail.api.errors import error_responses
from dstrail.audit.checkpoints import checkpoint_document
from dstrail.audit.encoding import ENCODING_VERSION
from dstrail.audit.serialize import event_document
from dstrail.errors import InvalidInput, NotFound

PREFIX = "/api/datasource/v1/audit/integrity"
router = APIRouter(prefix=PREFIX, tags=["audit integrity"])
_ERRORS = error_responses(400, 401, 403, 404, family="audit")


@router.get("/public-key", responses=_ERRORS, summary="The Ed25519 key that signs checkpoints")
def public_key(dstrail: DstrailDep, _caller: AuditReaderDep) -> dict[str, str]:
    """``{algorithm, keyId, publicKey (base64 of the 32 raw bytes), pem}``."""
    return dstrail.signer.public_key_document()


@router.get(
    "/checkpoint",
    responses=_ERRORS,
    summary="The latest signed checkpoint, or the one of a given tree size",
)
def checkpoint(
    dstrail: DstrailDep,
    _caller: AuditReaderDep,
    tree_size: Annotated[
        int | None, Query(alias="treeSize", ge=0, description="default: the latest")
    ] = None,
) -> dict[str, Any]:
    """A checkpoint: ``treeSize``, ``rootHash`` (hex), ``timestamp``, ``keyId``, ``signature``
    (base64 Ed25519 over the message in docs/integrity.md)."""
    with dstrail.store.read() as tx:
        if tree_size is None:
            record = tx.integrity.latest_checkpoint()
        else:
            record = tx.integrity.checkpoint_at(tree_size)
    if record is None:
        raise NotFound(
            "no checkpoint yet" if tree_size is None else f"no checkpoint of tree size {tree_size}"
        )
    return checkpoint_document(record)


@router.get(
    "/inclusion",
    responses=_ERRORS,
    summary="Proof that an event (by sequence number) is in the tree of a checkpoint",
)
def inclusion(
    dstrail: DstrailDep,
    _caller: AuditReaderDep,
    seq: Annotated[int, Query(ge=1, description="the event's sequence number")],
    tree_size: Annotated[
        int | None,
        Query(alias="treeSize", ge=1, description="default: the latest checkpoint covering it"),
    ] = None,
) -> dict[str, Any]:
    """The event, its leaf hash and the RFC 6962 audit path to the root of ``treeSize``."""
    with dstrail.store.read() as tx:
        row = tx.audit.by_sequence(seq)
        if row is None:
            raise NotFound(f"no event with seq {seq}")
        if tree_size is None:
            record = tx.integrity.latest_checkpoint()
            if record is None or record.tree_size < seq:
                raise NotFound(f"no checkpoint covers seq {seq} yet; give treeSize")
            size = record.tree_size
        else:
            record = tx.integrity.checkpoint_at(tree_size)
            size = tree_size
        if seq > size:
            raise InvalidInput(f"seq: {seq} is not in a tree of {size} events")
        path = tx.integrity.inclusion_proof(seq, size)
        leaf = tx.integrity.leaf_hashes([seq]).get(seq)
        root = record.root_hash if record is not None else tx.integrity.root(size)
    return {
        "seq": seq,
        "leafIndex": seq - 1,
        "treeSize": size,
        "encoding": ENCODING_VERSION,
        "event": {**event_document(row), "metadata": orjson.loads(row[4])},
        "leafHash": leaf.hex() if leaf else None,
        "auditPath": [node.hex() for node in path],
        "rootHash": root.hex(),
        "checkpoint": checkpoint_document(record) if record is not None else None,
    }


@router.get(
    "/consistency",
    responses=_ERRORS,
    summary="Proof that the tree of `second` events extends the tree of `first` events",
)
def consistency(
    dstrail: DstrailDep,
    _caller: AuditReaderDep,
    first: Annotated[int, Query(ge=0, description="the older tree size")],
    second: Annotated[
        int | None, Query(ge=0, description="the newer tree size; default: latest checkpoint")
    ] = None,
) -> dict[str, Any]:
    """RFC 6962 consistency proof, with both roots (and checkpoints where they exist)."""
    with dstrail.store.read() as tx:
        if second is None:
            latest = tx.integrity.latest_checkpoint()
            if latest is None:
                raise NotFound("no checkpoint yet; give second")
            second = latest.tree_size
        if first > second:
            raise InvalidInput(f"first: {first} is larger than second ({second})")
        proof = tx.integrity.consistency_proof(first, second)
        first_root = tx.integrity.root(first)
        second_root = tx.integrity.root(second)
        first_checkpoint = tx.integrity.checkpoint_at(first)
        second_checkpoint = tx.integrity.checkpoint_at(second)
    return {
        "first": first,
        "second": second,
        "firstRootHash": first_root.hex(),
        "secondRootHash": second_root.hex(),
        "proof": [node.hex() for node in proof],
        "firstCheckpoint": checkpoint_document(first_checkpoint) if first_checkpoint else None,
        "secondCheckpoint": checkpoint_document(second_checkpoint) if second_checkpoint else None,
    }
