"""dstrail's own paths for what Domino's platform owns: users, API keys, projects, runs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from dstrail.api.deps import CallerDep, DstrailDep
from dstrail.api.errors import error_responses
from dstrail.api.schemas import (
    ApiKeyCreated,
    ProjectCreateBody,
    ProjectRead,
    RunRead,
    RunStartBody,
    UserCreateBody,
    UserCreated,
)
from dstrail.domain.projects import Project, Run
from dstrail.domain.users import User
from dstrail.errors import Forbidden, InvalidInput, NotFound
from dstrail.services import projects as project_service
from dstrail.services import runs as run_service
from dstrail.services import users as user_service

router = APIRouter(prefix="/api/dstrail/v1", tags=["platform"])
_ERRORS = error_responses(400, 401, 403, 404, 409)


def _require_admin(user: User, action: str) -> None:
    if not user.is_admin:
        raise Forbidden(f"{action} requires the SysAdmin role")


@router.post(
    "/users", status_code=status.HTTP_201_CREATED, response_model=UserCreated, responses=_ERRORS
)
def create_user(body: UserCreateBody, dstrail: DstrailDep, caller: CallerDep) -> dict[str, Any]:
    """A new user and their first API key (SysAdmins only)."""
    _require_admin(caller.user, "creating users")
    role = user_service.parse_role(body.role)
    with dstrail.store.write() as tx:
        user, api_key = user_service.create_user(
            tx, username=body.username, email=body.email, role=role, now_ms=dstrail.clock()
        )
    return {"id": user.id, "username": user.username, "role": user.role.value, "apiKey": api_key}


@router.post(
    "/users/{user_id}/api-keys",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    responses=_ERRORS,
)
def create_api_key(user_id: str, dstrail: DstrailDep, caller: CallerDep) -> dict[str, str]:
    """Another API key for yourself (or for anyone, as a SysAdmin)."""
    if user_id != caller.user.id:
        _require_admin(caller.user, "creating keys for other users")
    with dstrail.store.write() as tx:
        user = tx.users.by_id(user_id)
        if user is None:
            raise NotFound(f"no user with id {user_id!r}")
        api_key = user_service.issue_api_key(tx, user=user, label="api", now_ms=dstrail.clock())
    return {"apiKey": api_key}


def _project_read(project: Project) -> dict[str, Any]:
    return {
        "id": project.id,
        "name": project.name,
        "ownerId": project.owner_id,
        "collaboratorIds": list(project.collaborator_ids),
    }


@router.post(
    "/projects", status_code=status.HTTP_201_CREATED, response_model=ProjectRead, responses=_ERRORS
)
def create_project(
    body: ProjectCreateBody, dstrail: DstrailDep, caller: CallerDep
) -> dict[str, Any]:
    """A project owned by the caller (or by ``ownerId``, as a SysAdmin)."""
    if body.ownerId is not None and body.ownerId != caller.user.id:
        _require_admin(caller.user, "creating projects for other users")
    with dstrail.store.write() as tx:
        owner = tx.users.by_id(body.ownerId) if body.ownerId else caller.user
        if owner is None:
            raise InvalidInput(f"ownerId: no user with id {body.ownerId!r}")
        found = tx.users.by_ids(body.collaboratorIds)
        missing = [uid for uid in body.collaboratorIds if uid not in found]
        if missing:
            raise InvalidInput(f"collaboratorIds: unknown user ids: {', '.join(missing)}")
        project = project_service.create_project(
            tx,
            name=body.name,
            owner=owner,
            collaborators=list(found.values()),
            now_ms=dstrail.clock(),
        )
    return _project_read(project)


def _run_read(run: Run, token: str | None = None) -> dict[str, Any]:
    return {
        "id": run.id,
        "runType": run.run_type.value,
        "projectId": run.project_id,
        "userId": run.user_id,
        "dataPlaneId": run.data_plane_id,
        "running": run.is_running,
        "token": token,
    }


@router.post(
    "/runs", status_code=status.HTTP_201_CREATED, response_model=RunRead, responses=_ERRORS
)
def start_run(body: RunStartBody, dstrail: DstrailDep, caller: CallerDep) -> dict[str, Any]:
    """Register a running execution; its token authenticates code inside it."""
    run_type = run_service.parse_run_type(body.runType)
    if body.userId is not None and body.userId != caller.user.id:
        _require_admin(caller.user, "starting runs for other users")
    now = dstrail.clock()
    with dstrail.store.write() as tx:
        user = tx.users.by_id(body.userId) if body.userId else caller.user
        if user is None:
            raise InvalidInput(f"userId: no user with id {body.userId!r}")
        project = tx.projects.by_id(body.projectId)
        if project is None:
            raise InvalidInput(f"projectId: no project with id {body.projectId!r}")
        run = run_service.start_run(
            tx,
            project=project,
            user=user,
            run_type=run_type,
            data_plane_id=body.dataPlaneId,
            now_ms=now,
        )
    token = run_service.issue_run_token(run, signing_key=dstrail.keys.signing_key, now_ms=now)
    return _run_read(run, token)


@router.post("/runs/{run_id}/stop", response_model=RunRead, responses=_ERRORS)
def stop_run(run_id: str, dstrail: DstrailDep, caller: CallerDep) -> dict[str, Any]:
    """End a run: its id and token stop being accepted."""
    with dstrail.store.write() as tx:
        run = tx.runs.by_id(run_id)
        if run is None:
            raise NotFound(f"no run with id {run_id!r}")
        if run.user_id != caller.user.id:
            _require_admin(caller.user, "stopping other users' runs")
        run_service.stop_run(tx, run_id=run_id, now_ms=dstrail.clock())
        stopped = tx.runs.by_id(run_id)
    assert stopped is not None
    return _run_read(stopped)
