"""Runs and the tokens code inside them authenticates with."""

from __future__ import annotations

from dataclasses import dataclass, replace

import jwt

from dstrail.audit.recorder import record_platform_event
from dstrail.domain.ids import LOCAL_DATA_PLANE_ID, is_object_id, new_object_id
from dstrail.domain.projects import Project, Run, RunType
from dstrail.domain.trail import EventKind
from dstrail.domain.users import OPERATOR, User
from dstrail.errors import Conflict, Forbidden, InvalidInput, NotFound
from dstrail.services.projects import find_project, project_by_id
from dstrail.services.users import require_admin, require_user, user_by_id
from dstrail.store import Repositories

TOKEN_AUDIENCE = "dstrail-run"  # noqa: S105 - a JWT audience, not a secret
TOKEN_LIFETIME_MS = 7 * 86_400_000


def parse_run_type(value: str) -> RunType:
    """The run type named ``value``; ``InvalidInput`` naming the accepted ones otherwise."""
    try:
        return RunType(value)
    except ValueError:
        accepted = ", ".join(kind.value for kind in RunType)
        raise InvalidInput(f"type: unknown run type {value!r}; accepted: {accepted}") from None


def start_run(
    tx: Repositories,
    *,
    actor: User,
    project: Project,
    user: User,
    run_type: RunType,
    data_plane_id: str = LOCAL_DATA_PLANE_ID,
    now_ms: int,
) -> Run:
    """Register a running execution of ``user`` in ``project``; records ``RunStarted``,
    performed by ``actor``."""
    if not is_object_id(data_plane_id):
        raise InvalidInput(f"data plane: {data_plane_id!r} is not 24 lowercase hex characters")
    if not project.is_member(user.id):
        raise Forbidden(f"user {user.username!r} is not a member of project {project.name!r}")
    run = Run(
        id=new_object_id(),
        run_type=run_type,
        project_id=project.id,
        user_id=user.id,
        data_plane_id=data_plane_id,
        started_at_ms=now_ms,
        ended_at_ms=None,
    )
    tx.runs.add(run)
    _record_run(tx, EventKind.RUN_STARTED, actor, run, user, now_ms)
    return run


def _record_run(
    tx: Repositories, kind: EventKind, actor: User, run: Run, user: User | None, now_ms: int
) -> None:
    metadata = {"userId": run.user_id}
    if user is not None:
        metadata["username"] = user.username
    record_platform_event(tx, kind=kind, actor=actor, now_ms=now_ms, metadata=metadata, run=run)


@dataclass(frozen=True, slots=True)
class StartedRun:
    """A run just registered, and the token code inside it authenticates with."""

    run: Run
    token: str


def _started(
    tx: Repositories,
    *,
    actor: User,
    project: Project,
    user: User,
    run_type: RunType,
    data_plane_id: str,
    now_ms: int,
    signing_key: str,
) -> StartedRun:
    run = start_run(
        tx, actor=actor, project=project, user=user, run_type=run_type,
        data_plane_id=data_plane_id, now_ms=now_ms,
    )  # fmt: skip
    return StartedRun(run=run, token=issue_run_token(run, signing_key=signing_key, now_ms=now_ms))


def start_run_by_ids(
    tx: Repositories,
    *,
    actor: User,
    project_id: str,
    user_id: str | None,
    run_type: RunType,
    data_plane_id: str,
    now_ms: int,
    signing_key: str,
) -> StartedRun:
    """The platform API's way: a run of the actor (or, a SysAdmin's, of ``user_id``)."""
    if user_id is not None and user_id != actor.id:
        require_admin(actor, "starting runs for other users")
    user = user_by_id(tx, user_id, field="userId") if user_id else actor
    project = project_by_id(tx, project_id, field="projectId")
    return _started(
        tx, actor=actor, project=project, user=user, run_type=run_type,
        data_plane_id=data_plane_id, now_ms=now_ms, signing_key=signing_key,
    )  # fmt: skip


def start_run_by_names(
    tx: Repositories,
    *,
    project: str,
    username: str,
    run_type: RunType,
    data_plane_id: str,
    now_ms: int,
    signing_key: str,
) -> StartedRun:
    """The operator's way: the project by id or unique name, the user by username."""
    user = require_user(tx, username=username, field="--user")
    return _started(
        tx, actor=OPERATOR, project=find_project(tx, project), user=user, run_type=run_type,
        data_plane_id=data_plane_id, now_ms=now_ms, signing_key=signing_key,
    )  # fmt: skip


def stop_run(tx: Repositories, *, run_id: str, now_ms: int, actor: User) -> Run:
    """End a run (the actor's own, or any as a SysAdmin); its id and token stop being
    accepted. Records ``RunStopped``; returns the ended run."""
    run = tx.runs.by_id(run_id)
    if run is None:
        raise NotFound(f"run: no run with id {run_id!r}")
    if run.user_id != actor.id:
        require_admin(actor, "stopping other users' runs")
    if not tx.runs.finish(run_id, now_ms=now_ms):
        raise Conflict(f"run: {run_id!r} has already ended")
    stopped = replace(run, ended_at_ms=now_ms)
    _record_run(tx, EventKind.RUN_STOPPED, actor, stopped, tx.users.by_id(run.user_id), now_ms)
    return stopped


def issue_run_token(run: Run, *, signing_key: str, now_ms: int) -> str:
    """A JWT naming the run and its user, for ``DOMINO_TOKEN_FILE``."""
    claims = {
        "sub": run.user_id,
        "run_id": run.id,
        "aud": TOKEN_AUDIENCE,
        "iat": now_ms // 1000,
        "exp": (now_ms + TOKEN_LIFETIME_MS) // 1000,
    }
    return jwt.encode(claims, signing_key, algorithm="HS256")


def decode_run_token(token: str, *, signing_key: str) -> tuple[str, str] | None:
    """(user id, run id) of a valid run token, else ``None``."""
    try:
        claims = jwt.decode(token, signing_key, algorithms=["HS256"], audience=TOKEN_AUDIENCE)
    except jwt.PyJWTError:
        return None
    user_id, run_id = claims.get("sub"), claims.get("run_id")
    if isinstance(user_id, str) and isinstance(run_id, str):
        return user_id, run_id
    return None
