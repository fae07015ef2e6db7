"""Client API views of accounts: register, login, tokens, password, devices, profile,
account data. Views parse, call accounts.actions / accounts.queries, and answer."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import queries
from accounts.actions import shared_secret, tokens, uia
from accounts.actions.account_data import do_set_account_data
from accounts.actions.devices import do_delete_devices, do_rename_device
from accounts.actions.login_tokens import do_issue_login_token, do_use_login_token
from accounts.actions.openid import do_request_openid_token
from accounts.actions.profile import (
    check_profile_field,
    check_profile_key,
    do_delete_profile_field,
    do_set_profile_field,
)
from accounts.actions.users import (
    check_login_password,
    check_password_acceptable,
    check_username,
    do_deactivate_user,
    do_register_user,
    do_set_password,
    generate_localpart,
)
from accounts.models import RegistrationToken, User
from accounts.schemas import (
    ChangePasswordBody,
    DeactivateBody,
    DeleteDevicesBody,
    DeviceDeleteBody,
    DeviceUpdateBody,
    GetLoginTokenBody,
    LoginBody,
    RefreshBody,
    RegisterBody,
    SharedSecretRegisterBody,
)
from federation.queries.profile import remote_profile
from matrixhs.errors import (
    BadJson,
    Codes,
    Forbidden,
    InvalidParam,
    JsonDict,
    MatrixError,
    MissingParam,
    NotFound,
    Unrecognized,
)
from matrixhs.http import (
    MatrixView,
    parse_body,
    parse_json_object,
    room_id_param,
    user_id_param,
)
from matrixhs.protocol.ids import server_name_of
from matrixhs.ratelimit import client_ip
from rooms.actions.membership import do_send_profile_to_rooms

PASSWORD_FLOWS = [[uia.PASSWORD]]
LOGIN_TOKEN = "m.login.token"


def _operation(request: Request) -> str:
    return f"{request.method} {request.path}"


def _sign_in(request: Request, user: User, body: JsonDict) -> JsonDict:
    """The device and tokens of a login or registration (``body`` as the schemas parse it)."""
    result = tokens.do_sign_in(
        user,
        body.get("device_id"),
        body.get("initial_device_display_name"),
        body["refresh_token"],
        ip=client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
    )
    result["home_server"] = settings.MATRIXHS_SERVER_NAME
    return result


# --- Registration ---------------------------------------------------------------------


class RegisterView(MatrixView):
    requires_auth = False
    rate_limit = "auth"

    def post(self, request: Request) -> Response:
        kind = request.query_params.get("kind", "user")
        if kind not in ("user", "guest"):
            raise InvalidParam("kind must be user or guest")
        body = parse_body(RegisterBody, request)
        if kind == "guest":
            return Response(self._register_guest(request, body))
        if settings.MATRIXHS_REGISTRATION == "disabled":
            raise Forbidden("Registration has been disabled")
        localpart = check_username(body["username"]) if body.get("username") else None
        password = body.get("password")
        if password is not None:
            check_password_acceptable(password)
        flows = (
            [[uia.REGISTRATION_TOKEN]]
            if settings.MATRIXHS_REGISTRATION == "token"
            else [[uia.DUMMY]]
        )
        # The flows come first, whatever the body holds: clients learn them by posting
        # an empty body (spec "User-Interactive Authentication API"; Element does so).
        session = uia.check_uia(body.get("auth"), _operation(request), flows)
        if password is None:
            raise MissingParam("Missing parameter: password")
        with transaction.atomic():
            user = do_register_user(localpart or generate_localpart(), password)
            result = self._log_in(request, user, body)
            uia.finish_uia(session)
        return Response(result)

    def _register_guest(self, request: Request, body: JsonDict) -> JsonDict:
        if not settings.MATRIXHS_GUEST_ACCESS:
            raise Forbidden("Guest access is disabled", Codes.GUEST_ACCESS_FORBIDDEN)
        with transaction.atomic():
            user = do_register_user(generate_localpart(), None, guest=True)
            return self._log_in(request, user, body)

    def _log_in(self, request: Request, user: User, body: JsonDict) -> JsonDict:
        if body["inhibit_login"]:
            return {"user_id": user.user_id, "home_server": settings.MATRIXHS_SERVER_NAME}
        return _sign_in(request, user, body)


class RegisterAvailableView(MatrixView):
    requires_auth = False
    rate_limit = "auth"

    def get(self, request: Request) -> Response:
        username = request.query_params.get("username")
        if username is None:
            raise MissingParam("Missing parameter: username")
        if settings.MATRIXHS_REGISTRATION == "disabled":
            raise Forbidden("Registration has been disabled")
        check_username(username)
        return Response({"available": True})


class RegistrationTokenValidityView(MatrixView):
    requires_auth = False
    rate_limit = "auth"

    def get(self, request: Request) -> Response:
        token = request.query_params.get("token")
        if token is None:
            raise MissingParam("Missing parameter: token")
        if settings.MATRIXHS_REGISTRATION != "token":
            raise Forbidden("Registration tokens are not in use")
        valid = RegistrationToken.objects.filter(
            uia.registration_token_usable(), token=token
        ).exists()
        return Response({"valid": valid})


# --- Login and tokens -------------------------------------------------------------------


class LoginView(MatrixView):
    requires_auth = False
    rate_limit = "auth"

    def get(self, request: Request) -> Response:
        flows: list[JsonDict] = [{"type": uia.PASSWORD}]
        if settings.MATRIXHS_LOGIN_TOKEN_ENABLED:
            flows.append({"type": LOGIN_TOKEN, "get_login_token": True})
        return Response({"flows": flows})

    def post(self, request: Request) -> Response:
        body = parse_body(LoginBody, request)
        if body["type"] == uia.PASSWORD:
            user = self._password_user(body)
        elif body["type"] == LOGIN_TOKEN and settings.MATRIXHS_LOGIN_TOKEN_ENABLED:
            if "token" not in body:
                raise MissingParam("Missing parameter: token")
            user = do_use_login_token(body["token"])
        else:
            raise MatrixError(400, Codes.UNKNOWN, "Unknown login type")
        result = _sign_in(request, user, body)
        result["well_known"] = {"m.homeserver": {"base_url": settings.MATRIXHS_PUBLIC_BASEURL}}
        return Response(result)

    def _password_user(self, body: JsonDict) -> User:
        identifier = body.get("identifier")
        if identifier is None:
            if "user" not in body:
                raise MissingParam("Missing parameter: identifier")
            identifier = {"type": "m.id.user", "user": body["user"]}
        if identifier.get("type") != "m.id.user":
            raise MatrixError(400, Codes.UNKNOWN, "Unknown login identifier type")
        if not isinstance(identifier.get("user"), str):
            raise BadJson("identifier.user must be a string")
        if "password" not in body:
            raise MissingParam("Missing parameter: password")
        return check_login_password(identifier["user"], body["password"])


class GetLoginTokenView(MatrixView):
    """POST /v1/login/get_token: a single-use m.login.token token for another client. UIA
    asks for the password every time (a finished session is gone; spec: servers must
    always re-prompt here)."""

    rate_limit = "auth"

    def post(self, request: Request) -> Response:
        if not settings.MATRIXHS_LOGIN_TOKEN_ENABLED:
            raise Unrecognized("Login tokens are not enabled on this server")
        user = request.requester.user
        body = parse_body(GetLoginTokenBody, request)
        session = uia.check_uia(body.get("auth"), _operation(request), PASSWORD_FLOWS, user)
        with transaction.atomic():
            result = do_issue_login_token(user)
            uia.finish_uia(session)
        return Response(result)


class RefreshView(MatrixView):
    requires_auth = False
    rate_limit = "auth"

    def post(self, request: Request) -> Response:
        body = parse_body(RefreshBody, request)
        return Response(tokens.do_refresh(body["refresh_token"]))


class LogoutView(MatrixView):
    allow_guests = True
    allow_locked = True

    def post(self, request: Request) -> Response:
        requester = request.requester
        tokens.do_logout(requester.user, requester.device_id, requester.token_id)
        return Response({})


class LogoutAllView(MatrixView):
    allow_guests = True
    allow_locked = True

    def post(self, request: Request) -> Response:
        tokens.do_logout_all(request.requester.user)
        return Response({})


class WhoamiView(MatrixView):
    allow_guests = True

    def get(self, request: Request) -> Response:
        requester = request.requester
        body: JsonDict = {"user_id": requester.user_id, "is_guest": requester.is_guest}
        if requester.device_id is not None:
            body["device_id"] = requester.device_id
        return Response(body)


# --- Password and deactivation ------------------------------------------------------------


class PasswordView(MatrixView):
    """Change the password: as the logged-in user, or, without a token, as the user whose
    current password the UIA password stage proves."""

    requires_auth = False
    rate_limit = "auth"

    def post(self, request: Request) -> Response:
        body = parse_body(ChangePasswordBody, request)
        requester = request.requester
        check_password_acceptable(body["new_password"])
        user = requester.user if requester is not None else None
        session = uia.check_uia(body.get("auth"), _operation(request), PASSWORD_FLOWS, user)
        with transaction.atomic():
            do_set_password(
                session.user,
                body["new_password"],
                requester.device_id if requester is not None else None,
                body["logout_devices"],
            )
            uia.finish_uia(session)
        return Response({})


class DeactivateView(MatrixView):
    rate_limit = "auth"

    def post(self, request: Request) -> Response:
        body = parse_body(DeactivateBody, request)
        user = request.requester.user
        session = uia.check_uia(
            body.get("auth"), _operation(request), PASSWORD_FLOWS, user, content=body
        )
        with transaction.atomic():
            do_deactivate_user(user, erase=body["erase"])
            uia.finish_uia(session)
        return Response({"id_server_unbind_result": "no-support"})


# --- Devices ------------------------------------------------------------------------------


class DevicesView(MatrixView):
    allow_guests = True

    def get(self, request: Request) -> Response:
        return Response({"devices": queries.list_devices(request.requester.user)})


class DeviceView(MatrixView):
    allow_guests = ("GET", "PUT")  # deleting a device needs UIA, which guests cannot pass

    def get(self, request: Request, device_id: str) -> Response:
        device = queries.get_device(request.requester.user, device_id)
        return Response(queries.format_device(device))

    def put(self, request: Request, device_id: str) -> Response:
        body = parse_body(DeviceUpdateBody, request)
        device = queries.get_device(request.requester.user, device_id)
        if "display_name" in body:
            do_rename_device(device, body["display_name"])
        return Response({})

    def delete(self, request: Request, device_id: str) -> Response:
        body = parse_body(DeviceDeleteBody, request, allow_empty=True)
        user = request.requester.user
        queries.get_device(user, device_id)
        session = uia.check_uia(body.get("auth"), _operation(request), PASSWORD_FLOWS, user)
        with transaction.atomic():
            do_delete_devices(user, [device_id])
            uia.finish_uia(session)
        return Response({})


class DeleteDevicesView(MatrixView):
    def post(self, request: Request) -> Response:
        body = parse_body(DeleteDevicesBody, request)
        user = request.requester.user
        session = uia.check_uia(
            body.get("auth"), _operation(request), PASSWORD_FLOWS, user, content=body
        )
        with transaction.atomic():
            do_delete_devices(user, body["devices"])
            uia.finish_uia(session)
        return Response({})


# --- Profile ------------------------------------------------------------------------------


def _profile(user_id: str, field: str | None = None) -> JsonDict:
    """A local user's profile, or a remote user's as their server answers it."""
    if server_name_of(user_id) != settings.MATRIXHS_SERVER_NAME:
        return remote_profile(user_id, field)
    return queries.get_profile(user_id)


#: The profile fields that rooms show in the member events.
MEMBER_PROFILE_KEYS = ("displayname", "avatar_url")


class PublicProfileView(MatrixView):
    """Profiles are read without a token (spec: ``GET /profile/{userId}`` needs no auth)
    unless MATRIXHS_PROFILE_LOOKUP_REQUIRES_AUTH restricts lookups to users."""

    @property
    def anonymous_methods(self) -> tuple[str, ...]:  # type: ignore[override]
        return () if settings.MATRIXHS_PROFILE_LOOKUP_REQUIRES_AUTH else ("GET",)


class ProfileView(PublicProfileView):
    allow_guests = True

    def get(self, request: Request, user_id: str) -> Response:
        return Response(_profile(user_id_param(user_id)))


class ProfileFieldView(PublicProfileView):
    allow_guests = True
    suspended_refused = ("PUT", "DELETE")
    unbounded_path_params = ("key",)  # past 255 bytes: M_KEY_TOO_LARGE (accounts.actions)

    def guests_may(self, request: Request) -> bool:
        # Spec "Guest access": guests may set their display name, and no other field.
        return request.method == "GET" or self.kwargs.get("key") == "displayname"

    def get(self, request: Request, user_id: str, key: str) -> Response:
        check_profile_key(key)
        profile = _profile(user_id_param(user_id), key)
        if key not in profile:
            raise NotFound("Profile field not found")
        return Response({key: profile[key]})

    def put(self, request: Request, user_id: str, key: str) -> Response:
        queries.access_own_user(request.requester, user_id_param(user_id))
        check_profile_key(key)
        body = parse_json_object(request)
        if key not in body:
            raise MissingParam(f"Missing parameter: {key}")
        user = request.requester.user
        check_profile_field(user, key, body[key])
        do_set_profile_field(user, key, body[key])
        if key in MEMBER_PROFILE_KEYS:
            do_send_profile_to_rooms(user)
        return Response({})

    def delete(self, request: Request, user_id: str, key: str) -> Response:
        queries.access_own_user(request.requester, user_id_param(user_id))
        do_delete_profile_field(request.requester.user, key)
        if key in MEMBER_PROFILE_KEYS:
            do_send_profile_to_rooms(request.requester.user)
        return Response({})


# --- Account data -------------------------------------------------------------------------

#: Types the server manages itself (spec: clients may not set them here).
SERVER_MANAGED_TYPES = ("m.fully_read", "m.push_rules")


class AccountDataView(MatrixView):
    def _room(self, kwargs: dict[str, Any]) -> str:
        return room_id_param(kwargs["room_id"]) if "room_id" in kwargs else ""

    def get(self, request: Request, user_id: str, data_type: str, **kwargs: Any) -> Response:
        queries.access_own_user(request.requester, user_id)
        room_id = self._room(kwargs)
        return Response(queries.get_account_data(request.requester.user, data_type, room_id))

    def put(self, request: Request, user_id: str, data_type: str, **kwargs: Any) -> Response:
        queries.access_own_user(request.requester, user_id)
        room_id = self._room(kwargs)
        if data_type in SERVER_MANAGED_TYPES:
            raise MatrixError(405, Codes.BAD_JSON, f"Cannot set {data_type} through this API.")
        content = parse_json_object(request)
        do_set_account_data(request.requester.user, data_type, content, room_id)
        return Response({})


# --- Shared-secret registration (/_synapse/admin/v1/register) ---------------------------


class SharedSecretRegisterView(MatrixView):
    """Synapse's provisioning endpoint: GET a nonce, POST the account with an HMAC."""

    requires_auth = False
    rate_limit = "auth"

    def get(self, request: Request) -> Response:
        return Response({"nonce": shared_secret.do_create_nonce()})

    def post(self, request: Request) -> Response:
        body = parse_body(SharedSecretRegisterBody, request)
        shared_secret.check_registration_mac(
            body["nonce"],
            body["username"],
            body["password"],
            body["admin"],
            body["user_type"],
            body["mac"],
        )
        localpart = check_username(body["username"])
        check_password_acceptable(body["password"])
        with transaction.atomic():
            user = do_register_user(
                localpart, body["password"], admin=body["admin"], displayname=body["displayname"]
            )
            result = _sign_in(request, user, {"refresh_token": False})
        return Response(result)


# --- OpenID -------------------------------------------------------------------------------


class OpenIdRequestTokenView(MatrixView):
    """POST /user/{userId}/openid/request_token."""

    def post(self, request: Request, user_id: str) -> Response:
        queries.access_own_user(request.requester, user_id_param(user_id))
        parse_json_object(request)
        return Response(do_request_openid_token(request.requester.user))


# --- Third-party identifiers --------------------------------------------------------------
# This server has no identity service and validates no email address or phone number: an
# account has no third-party identifier, and asking to add one is refused clearly.


class ThreepidsView(MatrixView):
    """GET /account/3pid (none), and the deprecated POST /account/3pid (refused)."""

    def get(self, request: Request) -> Response:
        return Response({"threepids": []})

    def post(self, request: Request) -> Response:
        raise Forbidden(
            "This server does not support third-party identifiers", Codes.THREEPID_DENIED
        )


class ThreepidAddView(MatrixView):
    """POST /account/3pid/add: it needs a validated session, which this server, sending
    no emails or texts, never has."""

    def post(self, request: Request) -> Response:
        parse_json_object(request)
        raise MatrixError(
            400,
            Codes.THREEPID_AUTH_FAILED,
            "No validated third-party identifier session: this server validates none",
        )


class ThreepidBindView(MatrixView):
    """POST /account/3pid/bind: binding goes through an identity server, which this
    server does not talk to."""

    def post(self, request: Request) -> Response:
        parse_json_object(request)
        raise Forbidden("This server does not talk to identity servers", Codes.SERVER_NOT_TRUSTED)


class ThreepidUnbindView(MatrixView):
    """POST /account/3pid/delete and /unbind: nothing is bound, nothing to undo."""

    def post(self, request: Request) -> Response:
        parse_json_object(request)
        return Response({"id_server_unbind_result": "no-support"})


class RequestTokenView(MatrixView):
    """POST .../email/requestToken and .../msisdn/requestToken: no validation here."""

    requires_auth = False
    rate_limit = "auth"

    def post(self, request: Request, **kwargs: Any) -> Response:
        parse_json_object(request)
        raise Forbidden(
            "This server does not validate email addresses or phone numbers",
            Codes.THREEPID_DENIED,
        )
