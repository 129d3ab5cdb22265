"""What every entry point (HTTP, console, CLI) builds once: settings, store, keys, clock, the
checkpoint signer and the credential vault."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass

from dstrail.audit.archive_targets import ArchiveTarget, open_target
from dstrail.audit.checkpoints import (
    Ed25519CheckpointSigner,
    checkpoint_policy,
    private_key_from_text,
)
from dstrail.domain.timestamps import Clock, system_clock
from dstrail.keys import Keys, load_keys
from dstrail.services.credentials import CredentialVault
from dstrail.services.refusals import writing
from dstrail.settings import Settings
from dstrail.store import Repositories, Store


@dataclass(frozen=True, slots=True)
class Dstrail:
    """The running service's parts, passed to routes, views and commands."""

    settings: Settings
    store: Store
    keys: Keys
    clock: Clock
    signer: Ed25519CheckpointSigner
    vault: CredentialVault

    def archive(self, url: str | None = None) -> ArchiveTarget:
        """Where retention archives go: ``url``, else ``DSTRAIL_ARCHIVE_URL``, else the
        ``archive`` directory under the data directory."""
        chosen = (
            url or self.settings.archive_url or str((self.settings.data_dir / "archive").resolve())
        )
        return open_target(chosen, s3_endpoint=self.settings.archive_s3_endpoint)

    def change(self) -> AbstractContextManager[Repositories]:
        """A write transaction for a management change: a refused change (a 403 on a data
        source the caller can see) is recorded in a transaction of its own
        (``services.refusals``)."""
        return writing(self.store, self.clock)


def open_dstrail(
    settings: Settings, *, clock: Clock = system_clock, migrate: bool = True
) -> Dstrail:
    """Connect to the database (migrating it first) and load the keys."""
    keys = load_keys(settings)
    signer = Ed25519CheckpointSigner(
        private_key_from_text(keys.audit_signing_key), origin=settings.resolved_log_origin()
    )
    store = Store(
        settings.resolved_database_url(),
        checkpoints=checkpoint_policy(
            signer,
            every_events=settings.checkpoint_every_events,
            every_seconds=settings.checkpoint_every_seconds,
        ),
    )
    if migrate:
        store.migrate(now_ms=clock())
    return Dstrail(
        settings=settings,
        store=store,
        keys=keys,
        clock=clock,
        signer=signer,
        vault=CredentialVault(keys.encryption_key),
    )
