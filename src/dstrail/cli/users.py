"""``users`` commands: users, roles and API keys."""

from __future__ import annotations

import argparse

from dstrail.cli.common import Subparsers, add_command, open_from, print_json
from dstrail.domain.users import OPERATOR, Role
from dstrail.services import users as user_service

ROLES = ", ".join(role.value for role in Role)


def register(commands: Subparsers) -> None:
    """Add the commands of this family."""
    users = commands.add_parser("users", help="users, roles and API keys").add_subparsers(
        dest="users_command", required=True, metavar="COMMAND"
    )
    create = add_command(users, "create", _create_user, "create a user and print their API key")
    create.add_argument("username")
    create.add_argument("--email", default=None)
    create.add_argument("--role", default="User", help=f"one of {ROLES}")
    add_command(users, "list", _list_users, "list users as JSON lines")
    role = add_command(users, "set-role", _set_role, "give a user another role")
    role.add_argument("username")
    role.add_argument("role", help=f"one of {ROLES}")
    key = add_command(users, "api-key", _new_key, "issue another API key for a user")
    key.add_argument("username")
    keys = add_command(users, "api-keys", _list_keys, "list a user's API keys (never the keys)")
    keys.add_argument("username")
    revoke = add_command(users, "revoke-key", _revoke_key, "revoke one of a user's API keys")
    revoke.add_argument("username")
    revoke.add_argument("key_id", help="the id `users api-keys` lists")


def _create_user(args: argparse.Namespace) -> int:
    role = user_service.parse_role(args.role)
    dstrail = open_from(args)
    with dstrail.store.write() as tx:
        user, api_key = user_service.create_user(
            tx, actor=OPERATOR, username=args.username, email=args.email, role=role,
            now_ms=dstrail.clock(),
        )  # fmt: skip
    print_json(
        {
            "id": user.id,
            "username": user.username,
            "role": user.role.value,
            "apiKey": api_key.secret,
            "apiKeyId": api_key.id,
        }
    )
    return 0


def _list_users(args: argparse.Namespace) -> int:
    dstrail = open_from(args)
    with dstrail.store.read() as tx:
        for user in user_service.list_users(tx):
            print_json(
                {
                    "id": user.id,
                    "username": user.username,
                    "email": user.email,
                    "role": user.role.value,
                }
            )
    return 0


def _set_role(args: argparse.Namespace) -> int:
    role = user_service.parse_role(args.role)
    dstrail = open_from(args)
    with dstrail.store.write() as tx:
        user = user_service.require_user(tx, username=args.username, field="username")
        user = user_service.set_role(
            tx, actor=OPERATOR, user_id=user.id, role=role, now_ms=dstrail.clock()
        )
    print_json({"id": user.id, "username": user.username, "role": user.role.value})
    return 0


def _new_key(args: argparse.Namespace) -> int:
    dstrail = open_from(args)
    with dstrail.store.write() as tx:
        user = user_service.require_user(tx, username=args.username, field="username")
        api_key = user_service.issue_api_key(
            tx, actor=OPERATOR, user=user, label="cli", now_ms=dstrail.clock()
        )
    print_json(
        {"id": user.id, "username": user.username, "apiKey": api_key.secret, "apiKeyId": api_key.id}
    )
    return 0


def _list_keys(args: argparse.Namespace) -> int:
    dstrail = open_from(args)
    with dstrail.store.read() as tx:
        user = user_service.require_user(tx, username=args.username, field="username")
        keys = user_service.api_keys_of(tx, actor=OPERATOR, user_id=user.id)
    for key in keys:
        print_json(
            {
                "id": key.id,
                "label": key.label,
                "created": key.created_ms,
                "revoked": key.revoked_ms,
                "live": key.is_live,
            }
        )
    return 0


def _revoke_key(args: argparse.Namespace) -> int:
    dstrail = open_from(args)
    with dstrail.store.write() as tx:
        user = user_service.require_user(tx, username=args.username, field="username")
        user_service.revoke_api_key(
            tx, actor=OPERATOR, user_id=user.id, key_id=args.key_id, now_ms=dstrail.clock()
        )
    print_json({"id": args.key_id, "username": user.username, "live": False})
    return 0
