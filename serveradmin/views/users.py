"""Users: Synapse's /_synapse/admin/v1|v2/users..., deactivate, reset_password, whois,
suspend; and the spec's /_matrix/client/*/admin/{whois,lock,suspend}/{userId}."""

from __future__ import annotations

from django.db import transaction
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.actions.devices import do_delete_devices, do_rename_device
from accounts.actions.users import (
    check_password_acceptable,
    check_username,
    do_deactivate_user,
    do_set_admin,
    do_set_locked,
    do_set_password,
    do_set_suspended,
)
from accounts.models import User
from accounts.queries import get_device
from matrixhs.errors import Forbidden, InvalidParam, MissingParam
from matrixhs.http import MatrixView, parse_body, query_bool
from push.queries import list_pushers
from rooms.models import RoomMembership
from serveradmin.actions.users import do_create_user, do_update_user
from serveradmin.queries import users as queries
from serveradmin.schemas import (
    AdminFlagBody,
    DeactivateBody,
    DeleteDevicesBody,
    DeviceBody,
    LockedBody,
    ResetPasswordBody,
    SuspendBody,
    SuspendedBody,
    UserBody,
)
from serveradmin.views.base import (
    AdminView,
    get_local_user_or_404,
    local_user_param,
    page_params,
    paged,
)


def _optional_bool(request: Request, name: str) -> bool | None:
    if name not in request.query_params:
        return None
    return query_bool(request, name)


class UsersView(AdminView):
    """GET /_synapse/admin/v2/users."""

    def get(self, request: Request) -> Response:
        start, limit, backwards = page_params(request)
        users = queries.filter_users(
            user_id=request.query_params.get("user_id"),
            name=request.query_params.get("name"),
            guests=query_bool(request, "guests", True),
            deactivated=query_bool(request, "deactivated", False),
            admins=_optional_bool(request, "admins"),
            locked=query_bool(request, "locked", False),
        )
        order_by = request.query_params.get("order_by", "name")
        page, total = queries.list_users(users, order_by, backwards, start, limit)
        return Response(paged("users", page, start, limit, total))


class UsernameAvailableView(AdminView):
    """GET /_synapse/admin/v1/username_available?username=: 400 M_USER_IN_USE or
    M_INVALID_USERNAME when it cannot be registered."""

    def get(self, request: Request) -> Response:
        username = request.query_params.get("username")
        if username is None:
            raise MissingParam("Missing parameter: username")
        check_username(username)
        return Response({"available": True})


class UserView(AdminView):
    """GET and PUT /_synapse/admin/v2/users/{userId} (PUT creates: 201)."""

    def get(self, request: Request, user_id: str) -> Response:
        return Response(queries.user_details(get_local_user_or_404(user_id)))

    def put(self, request: Request, user_id: str) -> Response:
        user_id = local_user_param(user_id)
        body = parse_body(UserBody, request)
        with transaction.atomic():
            user = User.objects.select_for_update().filter(user_id=user_id).first()
            if user is None:
                user = do_create_user(user_id, body)
                self.audit(request, "user.create", user_id, admin=user.is_admin)
                status = 201
            else:
                if user == request.requester.user and body.get("admin") is False:
                    raise InvalidParam("You may not demote yourself")
                changed = do_update_user(user, body)
                self.audit(request, "user.modify", user_id, changed=changed)
                status = 200
        user.refresh_from_db()
        return Response(queries.user_details(user), status=status)


class DeactivateView(AdminView):
    """POST /_synapse/admin/v1/deactivate/{userId}."""

    def post(self, request: Request, user_id: str) -> Response:
        body = parse_body(DeactivateBody, request, allow_empty=True)
        user = get_local_user_or_404(user_id)
        with transaction.atomic():
            do_deactivate_user(user, erase=body["erase"])
            self.audit(request, "user.deactivate", user.user_id, erase=body["erase"])
        return Response({"id_server_unbind_result": "no-support"})


class ResetPasswordView(AdminView):
    """POST /_synapse/admin/v1/reset_password/{userId}."""

    def post(self, request: Request, user_id: str) -> Response:
        body = parse_body(ResetPasswordBody, request)
        user = get_local_user_or_404(user_id)
        if not user.is_active:
            raise InvalidParam("The user is deactivated")
        check_password_acceptable(body["new_password"])
        with transaction.atomic():
            do_set_password(user, body["new_password"], None, logout=body["logout_devices"])
            self.audit(request, "user.reset_password", user.user_id, logout=body["logout_devices"])
        return Response({})


class AdminFlagView(AdminView):
    """GET and PUT /_synapse/admin/v1/users/{userId}/admin."""

    def get(self, request: Request, user_id: str) -> Response:
        return Response({"admin": get_local_user_or_404(user_id).is_admin})

    def put(self, request: Request, user_id: str) -> Response:
        body = parse_body(AdminFlagBody, request)
        user = get_local_user_or_404(user_id)
        if user == request.requester.user and not body["admin"]:
            raise InvalidParam("You may not demote yourself")
        with transaction.atomic():
            do_set_admin(user, body["admin"])
            self.audit(request, "user.set_admin", user.user_id, admin=body["admin"])
        return Response({})


class WhoisView(AdminView):
    """GET /_synapse/admin/v1/whois/{userId} (Synapse's shape: sessions under "")."""

    def get(self, request: Request, user_id: str) -> Response:
        return Response(queries.whois(get_local_user_or_404(user_id), key_by_device=False))


class ClientWhoisView(MatrixView):
    """GET /_matrix/client/v3/admin/whois/{userId}: server admins, or the user themselves
    (the spec allows either restriction)."""

    def get(self, request: Request, user_id: str) -> Response:
        requester = request.requester
        if not requester.user.is_admin and local_user_param(user_id) != requester.user_id:
            raise Forbidden("You are not a server admin")
        return Response(queries.whois(get_local_user_or_404(user_id), key_by_device=True))


class DevicesView(AdminView):
    """GET /_synapse/admin/v2/users/{userId}/devices."""

    def get(self, request: Request, user_id: str) -> Response:
        user = get_local_user_or_404(user_id)
        devices = [
            queries.format_device(d, user.user_id)
            for d in user.devices.order_by("created_ts", "pk")
        ]
        return Response({"devices": devices, "total": len(devices)})


class DeviceView(AdminView):
    """GET, PUT and DELETE /_synapse/admin/v2/users/{userId}/devices/{deviceId}."""

    def get(self, request: Request, user_id: str, device_id: str) -> Response:
        user = get_local_user_or_404(user_id)
        return Response(queries.format_device(get_device(user, device_id), user.user_id))

    def put(self, request: Request, user_id: str, device_id: str) -> Response:
        body = parse_body(DeviceBody, request)
        user = get_local_user_or_404(user_id)
        device = get_device(user, device_id)
        if "display_name" in body:
            with transaction.atomic():
                do_rename_device(device, body["display_name"])
                self.audit(
                    request,
                    "device.rename",
                    user.user_id,
                    device_id=device_id,
                    display_name=body["display_name"],
                )
        return Response({})

    def delete(self, request: Request, user_id: str, device_id: str) -> Response:
        user = get_local_user_or_404(user_id)
        with transaction.atomic():
            if do_delete_devices(user, [device_id]):
                self.audit(request, "device.delete", user.user_id, device_ids=[device_id])
        return Response({})


class DeleteDevicesView(AdminView):
    """POST /_synapse/admin/v2/users/{userId}/delete_devices."""

    def post(self, request: Request, user_id: str) -> Response:
        body = parse_body(DeleteDevicesBody, request)
        user = get_local_user_or_404(user_id)
        with transaction.atomic():
            do_delete_devices(user, body["devices"])
            self.audit(request, "device.delete", user.user_id, device_ids=body["devices"])
        return Response({})


class JoinedRoomsView(AdminView):
    """GET /_synapse/admin/v1/users/{userId}/joined_rooms."""

    def get(self, request: Request, user_id: str) -> Response:
        user = get_local_user_or_404(user_id)
        rooms = list(
            RoomMembership.objects.filter(user_id=user.user_id, membership="join")
            .order_by("room__room_id")
            .values_list("room__room_id", flat=True)
        )
        return Response({"joined_rooms": rooms, "total": len(rooms)})


class PushersView(AdminView):
    """GET /_synapse/admin/v1/users/{userId}/pushers."""

    def get(self, request: Request, user_id: str) -> Response:
        user = get_local_user_or_404(user_id)
        pushers = [{**p, "user_name": user.user_id} for p in list_pushers(user)]
        return Response({"pushers": pushers, "total": len(pushers)})


class SuspendView(AdminView):
    """PUT /_synapse/admin/v1/suspend/{userId}: {"suspend": bool}."""

    def put(self, request: Request, user_id: str) -> Response:
        body = parse_body(SuspendBody, request)
        user = _moderation_target(request, user_id)
        with transaction.atomic():
            do_set_suspended(user, body["suspend"])
            self.audit(request, "user.suspend", user.user_id, suspended=body["suspend"])
        return Response({f"user_{user.user_id}_suspended": body["suspend"]})


def _moderation_target(request: Request, user_id: str) -> User:
    """The user to lock or suspend: a local one, not the caller, not another admin.

    Raises:
        InvalidParam: not a local user. Forbidden: oneself or an admin. NotFound.
    """
    user = get_local_user_or_404(user_id)
    if user == request.requester.user:
        raise Forbidden("You may not do this to your own account")
    if user.is_admin:
        raise Forbidden("The user is a server admin")
    return user


class ClientLockView(AdminView):
    """GET and PUT /_matrix/client/v1/admin/lock/{userId} (spec v1.18)."""

    def get(self, request: Request, user_id: str) -> Response:
        return Response({"locked": get_local_user_or_404(user_id).locked})

    def put(self, request: Request, user_id: str) -> Response:
        body = parse_body(LockedBody, request)
        user = _moderation_target(request, user_id)
        with transaction.atomic():
            do_set_locked(user, body["locked"])
            self.audit(request, "user.lock", user.user_id, locked=body["locked"])
        return Response({"locked": body["locked"]})


class ClientSuspendView(AdminView):
    """GET and PUT /_matrix/client/v1/admin/suspend/{userId} (spec v1.18)."""

    def get(self, request: Request, user_id: str) -> Response:
        return Response({"suspended": get_local_user_or_404(user_id).suspended})

    def put(self, request: Request, user_id: str) -> Response:
        body = parse_body(SuspendedBody, request)
        user = _moderation_target(request, user_id)
        with transaction.atomic():
            do_set_suspended(user, body["suspended"])
            self.audit(request, "user.suspend", user.user_id, suspended=body["suspended"])
        return Response({"suspended": body["suspended"]})
