"""Users: register, log in, change password, deactivate."""

from __future__ import annotations

import logging
import secrets

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import IntegrityError, transaction

from accounts.actions.devices import do_delete_devices, wake_ended_sessions_on_commit
from accounts.models import User
from matrixhs.errors import Codes, Forbidden, InvalidParam, MatrixError
from matrixhs.protocol.ids import MAX_ID_BYTES, is_valid_localpart, user_id_for
from matrixhs.time import now_ms

MAX_PASSWORD_LENGTH = 512

logger = logging.getLogger(__name__)


class UsernameError(MatrixError):
    def __init__(self, errcode: str, msg: str) -> None:
        super().__init__(400, errcode, msg)


def check_username(localpart: str) -> str:
    """Validate a requested localpart for a new user and return it lower-cased.

    Raises:
        UsernameError: M_INVALID_USERNAME (grammar, length) or M_USER_IN_USE.
    """
    localpart = localpart.lower()
    if not localpart:
        raise UsernameError(Codes.INVALID_USERNAME, "User ID cannot be empty")
    if not is_valid_localpart(localpart):
        raise UsernameError(
            Codes.INVALID_USERNAME, "User ID can only contain characters a-z, 0-9, or '=_-./+'"
        )
    if localpart.startswith("_"):
        raise UsernameError(Codes.INVALID_USERNAME, "User ID may not begin with '_'")
    user_id = user_id_for(localpart, settings.MATRIXHS_SERVER_NAME)
    if len(user_id.encode("utf-8")) > MAX_ID_BYTES:
        raise UsernameError(
            Codes.INVALID_USERNAME, f"User ID may not be longer than {MAX_ID_BYTES}"
        )
    if User.objects.filter(localpart=localpart).exists():
        raise UsernameError(Codes.USER_IN_USE, "User ID already taken.")
    return localpart


def check_password_acceptable(password: str) -> None:
    """Raises: InvalidParam: the password is empty or too long."""
    if not password:
        raise InvalidParam("Password must not be empty")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidParam("Password too long")


def generate_localpart() -> str:
    """A free localpart for a user who did not choose one (and for guests)."""
    while True:
        localpart = secrets.token_hex(6)
        if not User.objects.filter(localpart=localpart).exists():
            return localpart


def do_register_user(
    localpart: str,
    password: str | None,
    *,
    admin: bool = False,
    guest: bool = False,
    displayname: str | None = None,
) -> User:
    """Create a local user (the caller has run :func:`check_username`).

    Raises:
        UsernameError: M_USER_IN_USE if the localpart was taken meanwhile.
    """
    try:
        with transaction.atomic():
            return User.objects.create(
                localpart=localpart,
                user_id=user_id_for(localpart, settings.MATRIXHS_SERVER_NAME),
                password=make_password(password),  # None gives an unusable password
                displayname=displayname if displayname is not None else localpart,
                is_admin=admin,
                is_guest=guest,
                created_ts=now_ms(),
            )
    except IntegrityError as exc:
        raise UsernameError(Codes.USER_IN_USE, "User ID already taken.") from exc


def local_user_for_login(identifier: str) -> User | None:
    """The local user a login names: ``@alice:server`` or ``alice``, case-insensitively."""
    if identifier.startswith("@"):
        localpart, _, server_name = identifier[1:].partition(":")
        if server_name != settings.MATRIXHS_SERVER_NAME:
            return None
    else:
        localpart = identifier
    return User.objects.filter(localpart=localpart.lower()).first()


def verify_password(user: User | None, password: str) -> bool:
    """Whether ``password`` is ``user``'s, in the time one hash takes whoever the user is:
    without a user, or for one without a usable password (deactivated, guest), a dummy
    password is hashed instead, so answers do not tell which users exist."""
    # "!" is an unusable password: Django's check hashes a random one in its place.
    return check_password(password, user.password if user is not None else "!")


def check_login_password(identifier: str, password: str) -> User:
    """The user whose password this is. The password is checked first, so only someone
    who knows it learns that the account is deactivated.

    Raises:
        Forbidden: M_FORBIDDEN for a wrong user or password, M_USER_DEACTIVATED.
    """
    user = local_user_for_login(identifier)
    if not verify_password(user, password) or user is None:
        raise Forbidden("Invalid username or password")
    if not user.is_active:
        raise Forbidden("This account has been deactivated", Codes.USER_DEACTIVATED)
    return user


def do_set_password(
    user: User, new_password: str, keep_device_id: str | None, logout: bool
) -> None:
    """Change a password; with ``logout``, every other device is logged out."""
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        if logout:
            others = user.devices.exclude(device_id=keep_device_id).values_list(
                "device_id", flat=True
            )
            do_delete_devices(user, list(others))
            # Tokens without a device (none are issued today) go as well.
            user.access_tokens.filter(device__isnull=True).delete()


def do_deactivate_user(user: User, erase: bool = False) -> None:
    """Deactivate an account for good: no login, no tokens, no devices, no rooms (it
    leaves them once this commits; rooms.actions.membership finishes what a crash left).

    The user ID stays reserved, the user leaves the user directory at once. With
    ``erase`` the profile (display name, avatar, other fields) is cleared too, so the
    leave events carry none of it.
    """
    from rooms.actions.user_directory import refresh_users

    with transaction.atomic():
        user.is_active = False
        user.set_unusable_password()
        fields = ["is_active", "password"]
        if erase:
            user.displayname = None
            user.avatar_url = None
            user.profile_fields = {}
            user.erased = True
            fields += ["displayname", "avatar_url", "profile_fields", "erased"]
        user.save(update_fields=fields)
        # Out of the user directory at once, not only once the rooms are left.
        refresh_users([user.user_id])
        do_delete_devices(user, list(user.devices.values_list("device_id", flat=True)))
        user.access_tokens.all().delete()
        wake_ended_sessions_on_commit(user)
        transaction.on_commit(lambda: _leave_rooms(user.user_id))


def _leave_rooms(user_id: str) -> None:
    from rooms.actions.membership import leave_rooms_of_deactivated_users

    try:
        leave_rooms_of_deactivated_users(user_id)
    except Exception:  # the periodic job tries again
        logger.exception("Leaving the rooms of deactivated %s failed", user_id)


def do_set_admin(user: User, admin: bool) -> None:
    user.is_admin = admin
    user.save(update_fields=["is_admin"])


def do_set_locked(user: User, locked: bool) -> None:
    """Lock or unlock an account (spec "Account locking"). A locked user keeps their
    sessions, but every request but logout answers 401 M_USER_LOCKED (soft logout)."""
    user.locked = locked
    user.save(update_fields=["locked"])
    if locked:
        wake_ended_sessions_on_commit(user)


def do_set_suspended(user: User, suspended: bool) -> None:
    """Suspend or reinstate an account (spec "Account suspension"): a suspended user may
    read, leave rooms and log out, but not create, join, invite, send or upload."""
    user.suspended = suspended
    user.save(update_fields=["suspended"])


def do_reactivate_user(user: User, password: str | None) -> None:
    """An operator brings a deactivated account back (it rejoins no room).

    Raises:
        InvalidParam: the password is not acceptable.
    """
    if password is not None:
        check_password_acceptable(password)
    user.is_active = True
    user.erased = False
    user.password = make_password(password)
    user.save(update_fields=["is_active", "erased", "password"])


def do_reset_password(user: User, new_password: str) -> None:
    """An operator sets a new password: every session of the user ends."""
    check_password_acceptable(new_password)
    do_set_password(user, new_password, keep_device_id=None, logout=True)
