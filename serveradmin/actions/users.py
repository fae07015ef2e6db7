"""An operator creates or changes an account (PUT /_synapse/admin/v2/users/{userId}).

Every step is one of accounts' actions, as the Django admin and manage.py use them."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.actions.profile import (
    check_profile_field,
    do_delete_profile_field,
    do_set_profile_field,
)
from accounts.actions.users import (
    UsernameError,
    check_password_acceptable,
    check_username,
    do_deactivate_user,
    do_reactivate_user,
    do_register_user,
    do_set_admin,
    do_set_locked,
    do_set_password,
)
from accounts.models import User
from matrixhs.errors import Codes, InvalidParam, JsonDict
from matrixhs.protocol.ids import split_id
from rooms.actions.membership import do_send_profile_to_rooms


def check_user_changes(body: JsonDict) -> None:
    """Refuse what this server cannot store, before anything changes.

    Raises:
        InvalidParam: third-party IDs or external IDs (this server keeps none), or an
            unacceptable password.
    """
    if body.get("threepids"):
        raise InvalidParam("This server does not keep third-party identifiers")
    if body.get("external_ids"):
        raise InvalidParam("This server does not keep external identifiers")
    if "password" in body:
        check_password_acceptable(body["password"])


def do_create_user(user_id: str, body: JsonDict) -> User:
    """Create the account ``user_id`` names, with the body's fields.

    Raises:
        UsernameError: the localpart is not acceptable.
        InvalidParam: see :func:`check_user_changes`.
    """
    check_user_changes(body)
    requested = split_id(user_id, "@")[0]
    localpart = check_username(requested)
    if localpart != requested:  # the account must have the ID the path names
        raise UsernameError(Codes.INVALID_USERNAME, "User IDs are lower case")
    with transaction.atomic():
        user = do_register_user(
            localpart,
            body.get("password"),
            admin=bool(body.get("admin", False)),
            displayname=body.get("displayname") or None,
        )
        _apply(user, {k: v for k, v in body.items() if k not in ("password", "admin")}, True)
    return user


def do_update_user(user: User, body: JsonDict) -> list[str]:
    """Apply the body's fields to an existing account; the names of those that changed.

    Raises:
        InvalidParam: see :func:`check_user_changes`.
    """
    check_user_changes(body)
    with transaction.atomic():
        return _apply(user, body, False)


def _apply(user: User, body: JsonDict, created: bool) -> list[str]:
    changed: list[str] = []
    if body.get("deactivated") is False and not user.is_active:
        do_reactivate_user(user, body.get("password"))
        changed.append("deactivated")
    elif "password" in body and user.is_active:
        do_set_password(user, body["password"], None, logout=body.get("logout_devices", True))
        changed.append("password")
    if "admin" in body and body["admin"] != user.is_admin:
        do_set_admin(user, body["admin"])
        changed.append("admin")
    if "locked" in body and body["locked"] != user.locked:
        do_set_locked(user, body["locked"])
        changed.append("locked")
    changed += _apply_profile(user, body, created)
    if body.get("deactivated") is True and user.is_active:
        do_deactivate_user(user)
        changed.append("deactivated")
    return changed


def _apply_profile(user: User, body: JsonDict, created: bool) -> list[str]:
    changed = []
    for key in ("displayname", "avatar_url"):
        if key not in body or body[key] == getattr(user, key):
            continue
        value: Any = body[key]
        if value:
            check_profile_field(user, key, value)
            do_set_profile_field(user, key, value)
        else:
            do_delete_profile_field(user, key)
        changed.append(key)
    if changed and not created and user.is_active:
        do_send_profile_to_rooms(user)
    return changed
