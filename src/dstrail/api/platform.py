"""dstrail's own paths for what Domino's platform owns: users, API keys, projects, runs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from dstrail.api.deps import CallerDep, DstrailDep
from dstrail.api.errors import PUBLIC
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
from dstrail.services import projects as project_service
from dstrail.services import runs as run_service
from dstrail.services import users as user_service

router = APIRouter(
    prefix="/api/dstrail/v1",
    tags=["platform"],
    responses=PUBLIC.responses(400, 401, 403, 404, 409),
)


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=UserCreated)
def create_user(body: UserCreateBody, dstrail: DstrailDep, caller: CallerDep) -> dict[str, Any]:
    """A new user and their first API key (SysAdmins only)."""
    user_service.require_admin(caller.user, "creating users")
    role = user_service.parse_role(body.role)
    with dstrail.store.write() as tx:
        user, api_key = user_service.create_user(
            tx, username=body.username, email=body.email, role=role, now_ms=dstrail.clock()
        )
    return {"id": user.id, "username": user.username, "role": user.role.value, "apiKey": api_key}


@router.post(
    "/users/{user_id}/api-keys", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated
)
def create_api_key(user_id: str, dstrail: DstrailDep, caller: CallerDep) -> dict[str, str]:
    """Another API key for yourself (or for anyone, as a SysAdmin)."""
    with dstrail.store.write() as tx:
        api_key = user_service.issue_api_key_for(
            tx, actor=caller.user, user_id=user_id, label="api", now_ms=dstrail.clock()
        )
    return {"apiKey": api_key}


def _project_read(project: Project) -> dict[str, Any]:
    return {
        "id": project.id,
        "name": project.name,
        "ownerId": project.owner_id,
        "collaboratorIds": list(project.collaborator_ids),
    }


@router.post("/projects", status_code=status.HTTP_201_CREATED, response_model=ProjectRead)
def create_project(
    body: ProjectCreateBody, dstrail: DstrailDep, caller: CallerDep
) -> dict[str, Any]:
    """A project owned by the caller (or by ``ownerId``, as a SysAdmin)."""
    with dstrail.store.write() as tx:
        project = project_service.create_project_by_ids(
            tx,
            actor=caller.user,
            name=body.name,
            owner_id=body.ownerId,
            collaborator_ids=body.collaboratorIds,
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


@router.post("/runs", status_code=status.HTTP_201_CREATED, response_model=RunRead)
def start_run(body: RunStartBody, dstrail: DstrailDep, caller: CallerDep) -> dict[str, Any]:
    """Register a running execution; its token authenticates code inside it."""
    run_type = run_service.parse_run_type(body.runType)
    with dstrail.store.write() as tx:
        started = run_service.start_run_by_ids(
            tx,
            actor=caller.user,
            project_id=body.projectId,
            user_id=body.userId,
            run_type=run_type,
            data_plane_id=body.dataPlaneId,
            now_ms=dstrail.clock(),
            signing_key=dstrail.keys.signing_key,
        )
    return _run_read(started.run, started.token)


@router.post("/runs/{run_id}/stop", response_model=RunRead)
def stop_run(run_id: str, dstrail: DstrailDep, caller: CallerDep) -> dict[str, Any]:
    """End a run: its id and token stop being accepted."""
    with dstrail.store.write() as tx:
        stopped = run_service.stop_run(tx, run_id=run_id, actor=caller.user, now_ms=dstrail.clock())
    return _run_read(stopped)
