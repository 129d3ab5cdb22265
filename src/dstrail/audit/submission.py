"""Submitting this log's latest C2SP checkpoint to its witnesses (c2sp.org/tlog-witness
``add-checkpoint``) and keeping the cosignatures they return: ``dstrail witness submit`` on
demand, and ``dstrail serve`` in a background thread (``WitnessSubmitter``).

Each request is ``old <size>``, the consistency proof from the size the witness cosigned
last (base64, one hash a line), a blank line and the checkpoint with the log's own signature.
On 200 each cosignature line is checked with the witness's vkey (the others are ignored) and
kept; on 409 the witness's size is the body, and the checkpoint is sent once more with the
proof from that size (unless it is larger than the log: a rollback of this log, or a fork).
Every other answer, and a witness that cannot be reached, is recorded as the witness's last
error (``dstrail witness list``); nothing is raised.
"""

from __future__ import annotations

import logging
import threading
import time
from base64 import b64encode
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

import httpx

from dstrail import __version__
from dstrail.audit.checkpoints import check_ed25519
from dstrail.domain.trail import CheckpointRecord, note
from dstrail.errors import DstrailError, InvalidInput
from dstrail.store import Store
from dstrail.store.transparency import WitnessRow

logger = logging.getLogger("dstrail.witnesses")

TIMEOUT_SECONDS: Final = 10.0
MAX_ANSWER: Final = 1 << 20
"""Bytes of a witness's answer read at most."""
MAX_BACKOFF_SECONDS: Final = 300.0

Outcome = Literal["cosigned", "up-to-date", "failed", "no-checkpoint"]


@dataclass(frozen=True, slots=True)
class SubmissionResult:
    """How submitting to one witness went."""

    witness: str
    outcome: Outcome
    tree_size: int | None
    """The size of the checkpoint submitted (``None``: there is none yet)."""
    cosigned_size: int
    """The size the witness has cosigned, as this log knows it now."""
    error: str = ""

    def document(self) -> dict[str, object]:
        """What ``dstrail witness submit`` prints for the witness."""
        return {
            "witness": self.witness,
            "outcome": self.outcome,
            "treeSize": self.tree_size,
            "cosignedSize": self.cosigned_size,
            "error": self.error,
        }


class _Failed(Exception):
    """A submission that did not end in a verified cosignature, and why (for the operator)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def new_client(timeout: float = TIMEOUT_SECONDS) -> httpx.Client:
    """A keep-alive HTTP client for witnesses (no redirects followed: a witness answers)."""
    return httpx.Client(
        timeout=timeout,
        follow_redirects=False,
        headers={"User-Agent": f"dstrail/{__version__} (c2sp.org/tlog-witness)"},
    )


def submit_to_witnesses(
    store: Store,
    client: httpx.Client,
    *,
    clock: Callable[[], int],
    due: Callable[[WitnessRow], bool] = lambda _witness: True,
) -> list[SubmissionResult]:
    """Submit the latest C2SP checkpoint to each configured witness that has not cosigned it
    (and for which ``due`` says so), one after the other; the result of each, by name."""
    with store.read() as tx:
        record = tx.integrity.latest_note_checkpoint()
        witnesses = tx.transparency.witnesses()
        cosigned = set()
        if record is not None:
            cosigned = {s.name for s in tx.transparency.cosignatures_of(record.tree_size)}
    results = []
    for witness in witnesses:
        if record is None:
            results.append(
                SubmissionResult(witness.name, "no-checkpoint", None, witness.cosigned_size)
            )
        elif witness.cosigned_size == record.tree_size and witness.name in cosigned:
            results.append(
                SubmissionResult(witness.name, "up-to-date", record.tree_size, record.tree_size)
            )
        elif due(witness):
            results.append(submit_to(store, client, witness, record, clock=clock))
    return results


def submit_to(
    store: Store,
    client: httpx.Client,
    witness: WitnessRow,
    record: CheckpointRecord,
    *,
    clock: Callable[[], int],
) -> SubmissionResult:
    """Submit ``record`` to ``witness``, keep the cosignature it returns (when it verifies
    with the witness's vkey) and record how it went."""
    size = record.tree_size
    try:
        cosignature = _exchange(store, client, witness, record)
    except _Failed as failure:
        error = failure.why
    except (httpx.HTTPError, httpx.InvalidURL) as error_:
        error = f"{witness.url} could not be reached: {error_.__class__.__name__}: {error_}"
    else:
        with store.write() as tx:
            tx.transparency.add_cosignature(
                size, cosignature, note.cosignature_timestamp(cosignature)
            )
            tx.transparency.note_submission(
                witness.name, cosigned_size=size, error="", now_ms=clock()
            )
        logger.info("witness %s cosigned the checkpoint of size %d", witness.name, size)
        return SubmissionResult(witness.name, "cosigned", size, size)
    with store.write() as tx:
        tx.transparency.note_submission(
            witness.name, cosigned_size=None, error=error, now_ms=clock()
        )
    logger.warning(
        "witness %s did not cosign the checkpoint of size %d: %s", witness.name, size, error
    )
    return SubmissionResult(witness.name, "failed", size, witness.cosigned_size, error)


def _exchange(
    store: Store, client: httpx.Client, witness: WitnessRow, record: CheckpointRecord
) -> note.NoteSignature:
    """The verified cosignature of ``witness`` on ``record``, after at most two requests."""
    size, old = record.tree_size, witness.cosigned_size
    if old > size:
        raise _Failed(
            f"this log last had size {old} cosigned by the witness, and its tree has {size} "
            "events: the trail was rolled back (restored from an older backup?)"
        )
    signed = record.note().encode()
    status, answer = _post(store, client, witness, old, record, signed)
    if status == 409:
        theirs = _witness_size(answer)
        if theirs > size:
            raise _Failed(
                f"the witness has cosigned size {theirs} of this log, which has {size} events: "
                "this trail was rolled back, or the witness saw a fork of it"
            )
        if theirs == old:
            raise _Failed(f"the witness answered 409 with the size {old} it was sent")
        old = theirs
        status, answer = _post(store, client, witness, old, record, signed)
    if status != 200:
        raise _Failed(_refusal(status, answer, old=old, size=size, origin=record.origin or ""))
    return _verified(witness, signed, answer)


def _post(
    store: Store,
    client: httpx.Client,
    witness: WitnessRow,
    old: int,
    record: CheckpointRecord,
    signed: str,
) -> tuple[int, bytes]:
    """One ``add-checkpoint`` request: (status, the answer's body, at most ``MAX_ANSWER``)."""
    try:
        with store.read() as tx:
            proof = tx.integrity.consistency_proof(old, record.tree_size)
    except DstrailError as error:
        raise _Failed(f"no consistency proof from size {old}: {error.message}") from None
    lines = "".join(b64encode(hash_).decode() + "\n" for hash_ in proof)
    body = f"old {old}\n{lines}\n{signed}".encode()
    with client.stream("POST", f"{witness.url}/add-checkpoint", content=body) as response:
        answer = bytearray()
        for chunk in response.iter_bytes():
            answer += chunk
            if len(answer) > MAX_ANSWER:
                raise _Failed(f"the witness's answer is larger than {MAX_ANSWER} bytes")
        if response.status_code == 409 and not response.headers.get("content-type", "").startswith(
            note.SIZE_MEDIA_TYPE
        ):
            raise _Failed(f"the witness answered 409 without a {note.SIZE_MEDIA_TYPE} body")
        return response.status_code, bytes(answer)


def _witness_size(answer: bytes) -> int:
    text = answer.decode("ascii", "replace")
    number = text.removesuffix("\n")
    if not number.isdigit() or (number != "0" and number.startswith("0")) or len(number) > 19:
        raise _Failed(f"the witness answered 409 with {text[:40]!r}, not a tree size")
    return int(number)


def _refusal(status: int, answer: bytes, *, old: int, size: int, origin: str) -> str:
    said = _excerpt(answer)
    why = {
        400: "the witness found the request malformed",
        403: f"the witness does not trust this log's key for {origin!r} (give it the vkey of "
        "`dstrail audit public-key`)",
        404: f"the witness does not witness the origin {origin!r} (configure the log there, "
        "with the vkey of `dstrail audit public-key`)",
        409: "the witness answered 409 again",
        422: f"the witness refused the consistency proof from size {old} to {size}: the tree "
        "it cosigned is not a prefix of this trail (a fork, or a rewritten trail)",
    }.get(status, f"the witness answered HTTP {status}")
    return f"{why}{f': {said}' if said else ''}"


def _excerpt(answer: bytes) -> str:
    text = answer.decode("utf-8", "replace").strip()
    return "".join(c if c.isprintable() else " " for c in text)[:200]


def _verified(witness: WitnessRow, signed: str, answer: bytes) -> note.NoteSignature:
    """The witness's cosignature among the signature lines it answered, checked with its
    vkey; the lines of other keys are ignored."""
    verifier = note.parse_vkey(witness.vkey)
    try:
        text = answer.decode("utf-8")
        cosigned = note.parse_note(signed + text)
        found = note.verified_by(cosigned, verifier, check_ed25519)
    except UnicodeDecodeError:
        raise _Failed("the witness's answer is not UTF-8") from None
    except InvalidInput as error:
        raise _Failed(f"the witness's answer is refused: {error.message}") from None
    if found is None:
        raise _Failed(
            f"the witness answered no cosignature by its key {verifier.name}+"
            f"{verifier.key_id.hex()} (another key?): {_excerpt(answer)}"
        )
    if note.cosignature_timestamp(found) == 0:
        raise _Failed("the witness's cosignature has no timestamp (0)")
    return found


class WitnessSubmitter:
    """``dstrail serve``'s background submitter: every ``every_seconds``, the latest
    checkpoint goes to each witness that has not cosigned it; a witness that failed waits
    twice as long each time (at most five minutes) before it is asked again."""

    def __init__(self, store: Store, *, clock: Callable[[], int], every_seconds: float) -> None:
        self._store = store
        self._clock = clock
        self._every = every_seconds
        self._stop = threading.Event()
        self._client = new_client()
        self._retry_at: dict[str, tuple[float, float]] = {}
        """A failed witness's name: (when it may be asked again, the delay it waited)."""
        self._thread = threading.Thread(target=self._run, name="dstrail-witnesses", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop it (a submission in progress finishes) and close its connections."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._client.close()

    def run_once(self) -> list[SubmissionResult]:
        """One round: submit to each witness due."""
        now = time.monotonic()
        results = submit_to_witnesses(
            self._store, self._client, clock=self._clock,
            due=lambda w: self._retry_at.get(w.name, (0.0, 0.0))[0] <= now,
        )  # fmt: skip
        for result in results:
            if result.outcome == "failed":
                waited = self._retry_at.get(result.witness, (0.0, 0.0))[1]
                delay = min(max(waited * 2, self._every), MAX_BACKOFF_SECONDS)
                self._retry_at[result.witness] = (time.monotonic() + delay, delay)
            else:
                self._retry_at.pop(result.witness, None)
        return results

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self.run_once()
            except Exception:  # the next round retries; the server keeps serving
                logger.exception("submitting the checkpoint to the witnesses failed")


def start_witness_submitter(
    store: Store, *, clock: Callable[[], int], every_seconds: float
) -> WitnessSubmitter:
    """A started ``WitnessSubmitter``; ``stop()`` it when the server stops."""
    submitter = WitnessSubmitter(store, clock=clock, every_seconds=every_seconds)
    submitter.start()
    return submitter
