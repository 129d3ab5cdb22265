"""``projects`` and ``runs`` commands."""

from __future__ import annotations

import argparse

from dstrail.cli.common import Subparsers, add_command, open_from, print_json
from dstrail.domain.ids import LOCAL_DATA_PLANE_ID
from dstrail.domain.projects import Project, RunType
from dstrail.domain.users import OPERATOR
from dstrail.services import projects as project_service
from dstrail.services import runs as run_service


def register(commands: Subparsers) -> None:
    """Add the commands of this family."""
    projects = commands.add_parser("projects", help="projects").add_subparsers(
        dest="projects_command", required=True, metavar="COMMAND"
    )
    project = add_command(projects, "create", _create_project, "create a project")
    project.add_argument("name")
    project.add_argument("--owner", required=True, metavar="USERNAME")
    project.add_argument("--collaborator", action="append", default=[], metavar="USERNAME")
    for name, handler, text in (
        ("add-collaborator", _add_collaborator, "make a user a collaborator of a project"),
        ("remove-collaborator", _remove_collaborator, "remove a collaborator from a project"),
    ):
        member = add_command(projects, name, handler, text)
        member.add_argument("project", help="project id, or a unique project name")
        member.add_argument("username")

    runs = commands.add_parser("runs", help="runs (workspaces, jobs, apps...)").add_subparsers(
        dest="runs_command", required=True, metavar="COMMAND"
    )
    start = add_command(runs, "start", _start_run, "register a running execution")
    start.add_argument("--project", required=True, help="project id, or a unique project name")
    start.add_argument("--user", required=True, metavar="USERNAME")
    start.add_argument(
        "--type", required=True, help=f"one of {', '.join(t.value for t in RunType)}"
    )
    start.add_argument("--data-plane", default=LOCAL_DATA_PLANE_ID, metavar="ID")
    stop = add_command(runs, "stop", _stop_run, "end a run")
    stop.add_argument("run_id")


def _create_project(args: argparse.Namespace) -> int:
    dstrail = open_from(args)
    with dstrail.store.write() as tx:
        project = project_service.create_project_by_names(
            tx,
            name=args.name,
            owner=args.owner,
            collaborators=args.collaborator,
            now_ms=dstrail.clock(),
        )
    print_json({"id": project.id, "name": project.name, "ownerId": project.owner_id})
    return 0


def _add_collaborator(args: argparse.Namespace) -> int:
    dstrail = open_from(args)
    with dstrail.store.write() as tx:
        project = project_service.add_collaborator_by_names(
            tx, project=args.project, username=args.username, now_ms=dstrail.clock()
        )
    _print_members(project)
    return 0


def _remove_collaborator(args: argparse.Namespace) -> int:
    dstrail = open_from(args)
    with dstrail.store.write() as tx:
        project = project_service.remove_collaborator_by_names(
            tx, project=args.project, username=args.username, now_ms=dstrail.clock()
        )
    _print_members(project)
    return 0


def _print_members(project: Project) -> None:
    print_json(
        {
            "id": project.id,
            "name": project.name,
            "ownerId": project.owner_id,
            "collaboratorIds": list(project.collaborator_ids),
        }
    )


def _start_run(args: argparse.Namespace) -> int:
    run_type = run_service.parse_run_type(args.type)
    dstrail = open_from(args)
    with dstrail.store.write() as tx:
        started = run_service.start_run_by_names(
            tx,
            project=args.project,
            username=args.user,
            run_type=run_type,
            data_plane_id=args.data_plane,
            now_ms=dstrail.clock(),
            signing_key=dstrail.keys.signing_key,
        )
    run = started.run
    print_json(
        {
            "id": run.id,
            "runType": run.run_type.value,
            "projectId": run.project_id,
            "dataPlaneId": run.data_plane_id,
            "token": started.token,
        }
    )
    return 0


def _stop_run(args: argparse.Namespace) -> int:
    dstrail = open_from(args)
    with dstrail.store.write() as tx:
        run = run_service.stop_run(tx, run_id=args.run_id, now_ms=dstrail.clock(), actor=OPERATOR)
    print_json({"id": run.id, "running": False})
    return 0
