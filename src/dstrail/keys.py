"""The server's own secrets: the signing key, the credential-encryption key, the Ed25519
key that signs audit checkpoints and, for an instance that witnesses other logs, the Ed25519
key that cosigns their checkpoints.

Taken from the settings when set, otherwise created once in the data directory (mode 0600; a
data directory created here is 0700).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet

from dstrail.audit.checkpoints import new_private_key_text
from dstrail.settings import Settings


@dataclass(frozen=True, slots=True)
class Keys:
    """Secrets the server needs at run time; never logged, never returned."""

    signing_key: str = field(repr=False)
    encryption_key: str = field(repr=False)
    audit_signing_key: str = field(default="", repr=False)
    """Ed25519 private key (base64 seed or PEM) of audit checkpoints."""


def _read_or_create(path: Path, make: str) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(make)
    return make


def load_keys(settings: Settings) -> Keys:
    """The keys from the settings, or from (new) files in the data directory."""
    signing = settings.secret_key or _read_or_create(
        settings.data_dir / "signing.key", secrets.token_urlsafe(48)
    )
    encryption = settings.encryption_key or _read_or_create(
        settings.data_dir / "credentials.key", Fernet.generate_key().decode()
    )
    audit_signing = settings.audit_signing_key or _read_or_create(
        settings.data_dir / "audit-signing.key", new_private_key_text()
    )
    return Keys(signing_key=signing, encryption_key=encryption, audit_signing_key=audit_signing)


WITNESS_KEY_FILE = "witness-signing.key"


def load_witness_signing_key(settings: Settings) -> str:
    """The Ed25519 private key (base64 seed) this instance cosigns other logs' checkpoints
    with as a witness: a key of its own, never the audit signing key (C2SP tlog-cosignature
    asks for distinct keys per cosigner), made once in the data directory (mode 0600)."""
    return _read_or_create(settings.data_dir / WITNESS_KEY_FILE, new_private_key_text())
