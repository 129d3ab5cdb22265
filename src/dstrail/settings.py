"""Settings: one class, read from the environment (prefix ``DSTRAIL_``) and CLI flags."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("dstrail-data")
DEFAULT_LOG_ORIGIN = "dstrail.local/audit"


class Settings(BaseSettings):
    """Everything an operator can set. Unset values fall back to the data directory."""

    model_config = SettingsConfigDict(env_prefix="DSTRAIL_", extra="forbid")

    data_dir: Path = Field(default=DEFAULT_DATA_DIR, description="where embedded data lives")
    database_url: str | None = Field(
        default=None,
        description="sqlite:///PATH or postgresql://...; default: SQLite under the data directory",
    )
    secret_key: str | None = Field(
        default=None,
        description="signs run tokens and console sessions; default: a key file in the data dir",
    )
    encryption_key: str | None = Field(
        default=None,
        description="Fernet key that encrypts stored credentials; default: a key file in the data dir",
    )
    public_url: str | None = Field(
        default=None, description="the base URL clients reach; used in signed URLs"
    )
    signed_url_ttl_seconds: int = Field(default=900, ge=10, le=86400)
    checkpoint_every_events: int = Field(default=1000, ge=1)
    checkpoint_every_seconds: int = Field(default=60, ge=1)
    audit_signing_key: str | None = Field(
        default=None,
        description="Ed25519 key (base64 of the 32-byte seed, or PEM) that signs audit "
        "checkpoints; default: a key file in the data dir",
        repr=False,
    )
    audit_log_origin: str | None = Field(
        default=None,
        description="the log's origin in its C2SP checkpoints and the key name of its vkey, "
        "e.g. dstrail.example.com/audit; default: the public URL's host and path then /audit, "
        "else dstrail.local/audit. Set it once, before adding witnesses",
    )
    tlog_public: bool = Field(
        default=False,
        description="serve the C2SP checkpoint and hash tiles without authentication (they "
        "reveal no event content; entry bundles always need the audit API's authentication)",
    )
    witness_name: str | None = Field(
        default=None,
        description="this instance's name as a witness (`dstrail witness serve`), its key name "
        "in cosignatures; default: the log origin's host then /witness",
    )
    archive_url: str | None = Field(
        default=None,
        description="where retention purges archive the events they remove: a directory, or "
        "s3://bucket/prefix (credentials from the AWS environment); default: archive/ under "
        "the data directory",
    )
    archive_s3_endpoint: str | None = Field(
        default=None,
        description="the S3 endpoint URL for an s3:// archive, for S3-compatible stores "
        "(MinIO, Ceph); default: AWS",
    )
    retention_check_seconds: float = Field(
        default=3600.0, ge=1, le=86400,
        description="how often `dstrail serve` applies the retention policy",
    )  # fmt: skip
    witness_submit_seconds: float = Field(
        default=10.0, ge=0.1, le=3600,
        description="how often `dstrail serve` submits its latest checkpoint to its witnesses",
    )  # fmt: skip
    stream_workers: str = Field(
        default="process",
        description="how `dstrail serve` delivers stream destinations: process (a child "
        "process it starts and watches, the default), thread (in its own process), off (run "
        "`dstrail stream run` apart); true and false mean process and off",
    )
    stream_poll_seconds: float = Field(default=0.1, ge=0.01, le=60)
    stream_lease_seconds: float = Field(default=30.0, ge=1, le=3600)
    stream_batch_size: int = Field(default=1000, ge=1, le=10_000)
    forensics_follow_seconds: float = Field(
        default=1.0, ge=0.05, le=3600,
        description="how often `dstrail serve` brings the forensics state (entitlements, "
        "timelines, findings) up to the trail's head; every forensics answer catches up first",
    )  # fmt: skip
    forensics_batch_events: int = Field(
        default=2000, ge=10, le=100_000,
        description="events the forensics follower takes in one transaction",
    )  # fmt: skip
    metrics_token: str | None = Field(
        default=None,
        description="a bearer token Prometheus scrapes /metrics with (else: the API key of a "
        "SysAdmin or Auditor)",
        repr=False,
    )
    # Detection rules (docs/forensics.md, "Detection rules"): each rule's thresholds.
    forensics_first_access_lookback_days: float = Field(
        default=45.0, gt=0, le=3650,
        description="firstAccess: an access is a first one when the user has not reached the "
        "data source in this many days",
    )  # fmt: skip
    forensics_first_access_user_grace_days: float = Field(
        default=14.0, ge=0, le=3650,
        description="firstAccess: users created fewer days ago than this (new joiners) are not "
        "reported",
    )  # fmt: skip
    forensics_first_access_grant_grace_days: float = Field(
        default=14.0, ge=0, le=3650,
        description="firstAccess: nor are users whose oldest grant in force is younger than "
        "this (a fresh grant explains a first access)",
    )  # fmt: skip
    forensics_revocation_window_hours: float = Field(
        default=72.0, gt=0, le=87600,
        description="accessAfterRevocation: a refused attempt this soon after the user lost "
        "access to the data source is reported",
    )  # fmt: skip
    forensics_volume_factor: float = Field(
        default=4.0, gt=1, le=1000,
        description="volumeSpike: an hour's accesses of a user to a data source above this "
        "many times their own peak hour are reported",
    )  # fmt: skip
    forensics_volume_min_events: int = Field(
        default=60, ge=1,
        description="volumeSpike: and at least this many accesses in the hour",
    )  # fmt: skip
    forensics_volume_min_hours: int = Field(
        default=8, ge=0,
        description="volumeSpike: the user must have reached the data source in this many "
        "earlier hours (their baseline)",
    )  # fmt: skip
    forensics_volume_half_life_days: float = Field(
        default=60.0, gt=0, le=3650,
        description="volumeSpike: the peak hour counts half as much after this many days",
    )  # fmt: skip
    forensics_refused_window_minutes: float = Field(
        default=10.0, gt=0, le=10080,
        description="refusedBurst: the sliding window refused attempts are counted in",
    )  # fmt: skip
    forensics_refused_user_count: int = Field(
        default=8, ge=2,
        description="refusedBurst: this many refused attempts by one user in the window",
    )  # fmt: skip
    forensics_refused_source_count: int = Field(
        default=8, ge=2,
        description="refusedBurst: or this many on one data source in the window, ...",
    )  # fmt: skip
    forensics_refused_source_users: int = Field(
        default=3, ge=1,
        description="refusedBurst: ... by at least this many users",
    )  # fmt: skip
    forensics_everyone_credential_types: str = Field(
        default="Shared",
        description="everyoneShare: the credential types (comma separated: Shared, "
        "Individual) of the data sources whose share with everyone is reported",
    )
    forensics_transfer_delete_hours: float = Field(
        default=48.0, gt=0, le=87600,
        description="transferThenDelete: a deletion this soon after an ownership transfer is "
        "reported",
    )  # fmt: skip
    forensics_unusual_hour_max_share: float = Field(
        default=0.01, gt=0, lt=1,
        description="unusualHour: an hour of the day (UTC, with the two hours either side) "
        "holding at most this share of the user's active hours is unusual for them",
    )  # fmt: skip
    forensics_unusual_hour_min_hours: int = Field(
        default=100, ge=1,
        description="unusualHour: the user must have this many active hours of history",
    )  # fmt: skip
    forensics_unusual_hour_min_days: int = Field(
        default=14, ge=1,
        description="unusualHour: over at least this many days",
    )  # fmt: skip
    forensics_unusual_hour_cooldown_hours: float = Field(
        default=12.0, ge=0, le=87600,
        description="unusualHour: at most one finding per user in this many hours",
    )  # fmt: skip
    forensics_unusual_hour_run_types: str = Field(
        default="Workspace,none",
        description="unusualHour: the run types whose accesses are a person at work (comma "
        "separated; none: outside any run); scheduled jobs, apps and model APIs run at any hour",
    )
    forensics_new_run_type_min_accesses: int = Field(
        default=200, ge=0,
        description="newRunType: a data source must have been accessed this many times before "
        "a run type new to it is reported",
    )  # fmt: skip
    forensics_new_run_type_min_age_days: float = Field(
        default=14.0, ge=0, le=3650,
        description="newRunType: and be at least this many days old",
    )  # fmt: skip

    @field_validator("stream_workers", mode="before")
    @classmethod
    def _stream_workers_mode(cls, value: object) -> str:
        modes = {"process": "process", "thread": "thread", "off": "off", "true": "process",
                 "false": "off"}  # fmt: skip
        text = str(value).lower() if isinstance(value, bool | str) else ""
        if text not in modes:
            raise ValueError(f"{value!r}; accepted: process, thread, off (true, false)")
        return modes[text]

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        if not value:
            return None  # unset or empty: the embedded SQLite default
        accepted = ("sqlite://", "postgresql://", "postgresql+psycopg://", "postgres://")
        if not value.startswith(accepted):
            raise ValueError(f"unsupported database URL scheme; accepted: {', '.join(accepted)}")
        return value

    @field_validator("audit_log_origin")
    @classmethod
    def _origin(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not re.fullmatch(r"[!-*,-~]{1,255}", value):  # printable ASCII, no space, no +
            raise ValueError(
                f"{value[:100]!r}; accepted: a schema-less URL such as dstrail.example.com/audit "
                "(printable ASCII, no spaces, no '+')"
            )
        return value

    def resolved_log_origin(self) -> str:
        """The log's origin: as set, else from the public URL, else ``dstrail.local/audit``."""
        if self.audit_log_origin:
            return self.audit_log_origin
        if self.public_url:
            parts = urlsplit(self.public_url)
            base = (parts.netloc.rpartition("@")[2] + parts.path).rstrip("/")
            if base and re.fullmatch(r"[!-*,-~]+", base):
                return f"{base}/audit"
        return DEFAULT_LOG_ORIGIN

    def resolved_database_url(self) -> str:
        """The URL to connect to, defaulting to the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'dstrail.sqlite3').resolve()}"
