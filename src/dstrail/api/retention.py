"""Retention over HTTP (``/api/dstrail/v1/retention``): the policy (SysAdmins and Auditors
read it), changing it and purging now (SysAdmins), with an API key. Every change, refused change and purge is recorded in
the trail; a locked policy that would be shortened or unlocked is a 409 and changes nothing."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import ConfigDict, Field, field_validator

from dstrail.api.deps import AuditReaderDep, DstrailDep, admin_with_api_key, get_caller
from dstrail.api.errors import PUBLIC
from dstrail.api.schemas import TextBody
from dstrail.domain.retention import DAYS_RULE, parse_days
from dstrail.domain.timestamps import format_ms
from dstrail.services import retention as retention_service
from dstrail.services.auth import Caller
from dstrail.services.retention import PurgeResult, RetentionView

router = APIRouter(
    prefix="/api/dstrail/v1/retention",
    tags=["retention"],
    responses=PUBLIC.responses(400, 401, 403),
)


def get_admin(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
    """A SysAdmin with an API key; 403 for anyone else, before the body is read."""
    return admin_with_api_key(caller, managing="retention policies")


AdminDep = Annotated[Caller, Depends(get_admin)]


class _Body(TextBody):
    model_config = ConfigDict(extra="forbid")


class RetentionBody(_Body):
    """``PUT /api/dstrail/v1/retention``."""

    days: int | str | None = Field(description=DAYS_RULE)
    lock: bool = Field(
        default=False,
        description="compliance mode: the policy can then be lengthened, never shortened or "
        "unlocked (a locked policy must be given lock: true again)",
    )

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, value: Any) -> int | None:
        return parse_days(value)


class ApplyBody(_Body):
    """``POST /api/dstrail/v1/retention/apply``."""

    dryRun: bool = Field(default=False, description="say what would be purged; change nothing")  # noqa: N815
    force: bool = Field(
        default=False,
        description="purge past stream destinations that have not delivered the events "
        "(recorded with their names)",
    )


def view_document(view: RetentionView) -> dict[str, Any]:
    """The policy and where the trail stands (``dstrail retention show`` prints the same)."""
    policy = view.policy
    return {
        "days": policy.days,
        "locked": policy.locked,
        "policy": policy.describe(),
        "setAt": format_ms(policy.set_at) if policy.set_at else None,
        "setBy": policy.set_by or None,
        "purgedThroughSeq": view.purge_through,
        "oldestHotSeq": view.oldest_hot_seq,
        "oldestHotTimestamp": format_ms(view.oldest_hot_ms) if view.oldest_hot_ms else None,
        "nextPurgeAt": format_ms(view.next_purge_ms) if view.next_purge_ms else None,
        "lastPurgeAt": format_ms(view.last_purge_ms) if view.last_purge_ms else None,
        "lastArchive": view.last_archive or None,
        "removalPending": view.removed_through < view.purge_through,
    }


def purge_document(result: PurgeResult) -> dict[str, Any]:
    """What a purge did, or would do (``dstrail retention apply`` prints the same)."""
    plan = result.plan
    archive = result.archive
    return {
        "dryRun": result.dry_run,
        "firstSeq": plan.first if plan.events else None,
        "lastSeq": plan.last if plan.events else None,
        "events": plan.events,
        "cutoff": format_ms(plan.cutoff_ms) if plan.cutoff_ms is not None else None,
        "heldBackBy": list(plan.held_back_by),
        "forcedPast": list(plan.forced_past),
        "reason": plan.reason or None,
        "archive": archive.location if archive else None,
        "archiveSha256": archive.manifest_sha256 if archive else None,
        "files": [f.name for f in archive.files] if archive else [],
        "removed": result.removed,
        "partitionsDropped": result.partitions_dropped,
        "seconds": {step: round(value, 3) for step, value in result.seconds.items()},
    }


@router.get("")
def get_retention(dstrail: DstrailDep, caller: AuditReaderDep) -> dict[str, Any]:
    """The policy, the oldest event kept hot and when the next month leaves the window
    (SysAdmins and Auditors)."""
    view = retention_service.show_retention(
        dstrail.store, actor=caller.user, now_ms=dstrail.clock()
    )
    return view_document(view)


@router.put("", responses=PUBLIC.responses(409))
def set_retention(body: RetentionBody, dstrail: DstrailDep, caller: AdminDep) -> dict[str, Any]:
    """Set the policy; records ``AuditRetentionPolicySet``. A locked policy refuses to be
    shortened, unlocked or removed: 409, nothing changed, ``AuditRetentionChangeRefused``
    recorded."""
    days = parse_days(body.days)  # already checked: an int, or None for 'forever'
    view = retention_service.set_retention(
        dstrail.store, actor=caller.user, days=days, lock=body.lock, now_ms=dstrail.clock()
    )
    return view_document(view)


@router.post("/apply")
def apply_retention(
    dstrail: DstrailDep, caller: AdminDep, body: ApplyBody | None = None
) -> dict[str, Any]:
    """Archive, verify and purge what the policy no longer keeps, now (``dryRun``: only say
    what would go; no body: the defaults). Records ``AuditTrailPurged``."""
    body = body or ApplyBody()
    result = retention_service.apply_retention(
        dstrail.store,
        dstrail.archive(),
        actor=caller.user,
        public_key=dstrail.signer.public_raw,
        now_ms=dstrail.clock(),
        dry_run=body.dryRun,
        force=body.force,
    )
    return purge_document(result)
