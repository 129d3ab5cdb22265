"""What an auditor trusts, and a checkpoint note checked against it: the log's verifier key,
the witnesses' cosignature keys, and how many of them must have cosigned (``k`` of ``n``,
c2sp.org/tlog-proof "Verifying a tlog proof", steps 2 and 3).

Pure: the Ed25519 check is an argument (``note.Check``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dstrail.domain.trail import note
from dstrail.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class CheckedNote:
    """A checkpoint note as the policy sees it."""

    checkpoint: note.Checkpoint
    note: note.Note
    origin_matches: bool
    """The origin line is the log key's name."""
    log_signed: bool | None
    """True: the log's signature verifies; False: a signature of the log's key does not;
    None: the note has none."""
    cosigned_by: tuple[str, ...]
    """The given witnesses whose cosignature verifies."""
    bad_cosignatures: tuple[str, ...]
    """The given witnesses with a cosignature line that does not verify (a forgery)."""


@dataclass(frozen=True, slots=True)
class TrustPolicy:
    """The log's key, the witnesses' keys and how many of them must cosign."""

    log: note.Verifier
    witnesses: tuple[note.Verifier, ...] = ()
    min_witnesses: int = 0

    @classmethod
    def of(
        cls, log: note.Verifier, witnesses: Sequence[note.Verifier], min_witnesses: int | None
    ) -> TrustPolicy:
        """A policy; ``min_witnesses`` None: every given witness. ``InvalidInput`` naming the
        option when the keys are not of the right type or ``k`` is not 0 to ``n``."""
        if log.signature_type != note.ED25519:
            raise InvalidInput("--vkey: accepted: a log's Ed25519 vkey (signature type 0x01)")
        seen: set[bytes] = set()
        for witness in witnesses:
            if witness.signature_type != note.COSIGNATURE_ED25519:
                raise InvalidInput(
                    f"--witness {witness.name}: accepted: a witness's Ed25519 cosignature vkey "
                    "(signature type 0x04, c2sp.org/tlog-cosignature)"
                )
            # An Ed25519 cosignature does not commit to the witness's name: one key under two
            # names would count one cosignature twice.
            if witness.public_key in seen:
                raise InvalidInput(
                    f"--witness {witness.name}: its key is given twice (under any name, one key "
                    "is one witness)"
                )
            seen.add(witness.public_key)
        count = len(witnesses)
        k = count if min_witnesses is None else min_witnesses
        if not 0 <= k <= count:
            raise InvalidInput(
                f"--min-witnesses: {k} is not accepted; accepted: 0 to {count} (the number of "
                "--witness keys given)"
            )
        return cls(log=log, witnesses=tuple(witnesses), min_witnesses=k)

    @property
    def witnessed(self) -> bool:
        """Whether the policy asks for cosignatures at all."""
        return self.min_witnesses > 0

    def describe(self) -> str:
        """``2 of 3 witnesses (a, b, c)``, or ``no witnesses``."""
        if not self.witnesses:
            return "no witnesses"
        names = ", ".join(w.name for w in self.witnesses)
        return f"{self.min_witnesses} of {len(self.witnesses)} witnesses ({names})"

    def check_note(self, parsed: note.Note, check: note.Check) -> CheckedNote:
        """Check a checkpoint note: its statement, its origin, the log's signature and each
        given witness's cosignature. ``InvalidInput`` when its text is not a checkpoint."""
        checkpoint = note.parse_checkpoint(parsed.text)
        try:
            signed = note.verified_by(parsed, self.log, check)
            log_signed: bool | None = None if signed is None else True
        except InvalidInput:
            log_signed = False
        cosigned: list[str] = []
        bad: list[str] = []
        for witness in self.witnesses:
            try:
                if note.verified_by(parsed, witness, check) is not None:
                    cosigned.append(witness.name)
            except InvalidInput:
                bad.append(witness.name)
        return CheckedNote(
            checkpoint=checkpoint,
            note=parsed,
            origin_matches=checkpoint.origin == self.log.name,
            log_signed=log_signed,
            cosigned_by=tuple(cosigned),
            bad_cosignatures=tuple(bad),
        )
