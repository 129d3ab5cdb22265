"""The witnesses this log asks to cosign its checkpoints (c2sp.org/tlog-witness), managed by
SysAdmins: each is named by its cosignature verifier key (signature type 0x04), and its
submission prefix is the URL ``add-checkpoint`` is appended to. Every change is recorded in
the trail in the same transaction (``WitnessAdded``, ``WitnessRemoved``): dropping a witness
weakens what the checkpoints prove, which is itself worth seeing.

Submitting checkpoints to them is ``dstrail.audit.submission``.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlsplit

from dstrail.audit.recorder import record_platform_event
from dstrail.domain.text import check_text
from dstrail.domain.timestamps import format_ms
from dstrail.domain.trail import EventKind, note
from dstrail.domain.users import User
from dstrail.errors import InvalidInput, NotFound
from dstrail.services.users import require_admin
from dstrail.store import Repositories
from dstrail.store.transparency import WitnessRow

MAX_URL: Final = 2048
URL_RULE: Final = (
    "an http:// or https:// URL with a host and no credentials, query or fragment, in "
    "printable ASCII without spaces: the witness's submission prefix (add-checkpoint is "
    "appended to it)"
)


def check_witness_vkey(name: str, vkey: str) -> note.Verifier:
    """A witness's cosignature verifier key (type 0x04) whose key name is ``name``."""
    return note.named_vkey(
        name, vkey, name_field="name", signature_type=note.COSIGNATURE_ED25519,
        wrong_type="a witness's cosignature key (signature type 0x04, "
        "c2sp.org/tlog-cosignature: <name>+<8 hex digits>+<base64 of 0x04 and 32 bytes>); "
        "this one is an Ed25519 note key (0x01), which signs checkpoints, not cosignatures",
        wrong_name="name: {name!r} is not the vkey's key name {key!r}; accepted: the key "
        "name of the witness's vkey",
    )  # fmt: skip


def check_witness_url(url: str) -> str:
    """The submission prefix, without a trailing ``/``; ``InvalidInput`` saying what is
    accepted."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise InvalidInput(f"url: {URL_RULE}, at most {MAX_URL} characters")
    check_text(url, field="url")
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError as error:
        raise InvalidInput(f"url: {url!r} is not a URL ({error}); accepted: {URL_RULE}") from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username
        or parts.password
        or parts.query
        or parts.fragment
        or url.endswith(("?", "#"))
        or not (url.isascii() and url.isprintable())  # punycode for other host names
        or " " in url
    ):
        raise InvalidInput(f"url: {url[:200]!r} is not accepted; accepted: {URL_RULE}")
    return url.rstrip("/")


def add_witness(
    tx: Repositories, *, name: str, vkey: str, url: str, actor: User, now_ms: int
) -> WitnessRow:
    """Configure a witness; records ``WitnessAdded``. ``Conflict`` when one has that name."""
    require_admin(actor, "adding a witness")
    verifier = check_witness_vkey(name, vkey)
    prefix = check_witness_url(url)
    tx.transparency.add_witness(
        name=name, vkey=verifier.vkey(), url=prefix, now_ms=now_ms, actor_id=actor.id
    )
    record_platform_event(
        tx, kind=EventKind.WITNESS_ADDED, actor=actor, now_ms=now_ms,
        metadata={"witnessName": name, "vkey": verifier.vkey(), "url": prefix},
    )  # fmt: skip
    return _by_name(tx, name)


def remove_witness(tx: Repositories, *, name: str, actor: User, now_ms: int) -> WitnessRow:
    """Stop asking a witness (the cosignatures it gave stay); records ``WitnessRemoved``.
    ``NotFound`` when none has that name."""
    require_admin(actor, "removing a witness")
    witness = _by_name(tx, name)
    tx.transparency.remove_witness(name)
    record_platform_event(
        tx, kind=EventKind.WITNESS_REMOVED, actor=actor, now_ms=now_ms,
        metadata={"witnessName": name, "vkey": witness.vkey, "url": witness.url,
                  "cosignedSize": str(witness.cosigned_size)},
    )  # fmt: skip
    return witness


def witnesses(tx: Repositories, *, actor: User) -> list[WitnessRow]:
    """Every configured witness, by name (SysAdmins)."""
    require_admin(actor, "listing witnesses")
    return tx.transparency.witnesses()


def _by_name(tx: Repositories, name: str) -> WitnessRow:
    for witness in tx.transparency.witnesses():
        if witness.name == name:
            return witness
    raise NotFound(f"no witness named {name[: note.MAX_NAME]!r}")


def witness_document(witness: WitnessRow) -> dict[str, Any]:
    """A witness as ``dstrail witness list`` prints it."""
    attempt = witness.last_attempt_ms
    return {
        "name": witness.name,
        "vkey": witness.vkey,
        "url": witness.url,
        "cosignedSize": witness.cosigned_size,
        "lastError": witness.last_error,
        "lastAttempt": format_ms(attempt) if attempt is not None else None,
        "addedAt": format_ms(witness.added_at_ms),
        "addedBy": witness.added_by,
    }
