"""Client API views of end-to-end encryption: keys, cross-signing, device-list changes,
to-device messages, dehydrated devices and key backups. Views parse, call e2ee.actions /
e2ee.queries, and answer."""

from __future__ import annotations

from django.db import transaction
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.actions import uia
from e2ee import queries
from e2ee.actions import backup, dehydrated_device
from e2ee.actions.cross_signing import (
    check_signatures_body,
    check_signing_keys_upload,
    do_upload_signatures,
    do_upload_signing_keys,
)
from e2ee.actions.keys import check_claim_request, check_key_upload, do_claim_keys, do_upload_keys
from e2ee.actions.to_device import check_to_device_request, do_send_to_device
from e2ee.schemas import (
    BackupVersionBody,
    BackupVersionUpdateBody,
    DehydratedDeviceBody,
    DehydratedDeviceEventsBody,
    DeviceSigningUploadBody,
    KeysClaimBody,
    KeysQueryBody,
    KeysUploadBody,
    SendToDeviceBody,
)
from matrixhs.errors import Codes, MatrixError, MissingParam
from matrixhs.http import MatrixView, parse_body, parse_json_object, query_int
from matrixhs.tokens import SyncToken, current_token, min_token
from sync.classic import device_list_delta

PASSWORD_FLOWS = [[uia.PASSWORD]]

#: To-device messages per batch of a dehydrated device: ``limit`` asks for fewer or more,
#: up to the maximum.
DEHYDRATED_EVENTS_LIMIT = 100
MAX_DEHYDRATED_EVENTS_LIMIT = 1000


def _required_query_param(request: Request, name: str) -> str:
    """Raises: MissingParam: the query parameter is absent."""
    value = request.query_params.get(name)
    if value is None:
        raise MissingParam(f"Missing parameter: {name}")
    return str(value)


# --- Device keys -----------------------------------------------------------------------------


class KeysUploadView(MatrixView):
    allow_guests = True

    def post(self, request: Request) -> Response:
        body = parse_body(KeysUploadBody, request)
        requester = request.requester
        if requester.device is None:
            raise MatrixError(400, Codes.UNKNOWN, "Uploading keys needs a device's access token")
        upload = check_key_upload(requester.user_id, requester.device.device_id, body)
        do_upload_keys(requester.user, requester.device, upload)
        counts = queries.one_time_key_counts(requester.user, requester.device.device_id)
        return Response({"one_time_key_counts": counts})


class KeysQueryView(MatrixView):
    allow_guests = True

    def post(self, request: Request) -> Response:
        body = parse_body(KeysQueryBody, request)
        query = queries.check_keys_query(body["device_keys"])
        return Response(queries.query_keys(request.requester.user_id, query, body["timeout"]))


class KeysClaimView(MatrixView):
    allow_guests = True

    def post(self, request: Request) -> Response:
        body = parse_body(KeysClaimBody, request)
        claims = check_claim_request(body["one_time_keys"])
        return Response(do_claim_keys(claims, body["timeout"]))


class KeysChangesView(MatrixView):
    allow_guests = True

    def get(self, request: Request) -> Response:
        """``from`` and ``to`` are /sync tokens; the answer is what /sync's device_lists
        would have said between them (users who share a room with the caller)."""
        raw_from, raw_to = (_required_query_param(request, name) for name in ("from", "to"))
        since = SyncToken.parse(raw_from)
        until = min_token(SyncToken.parse(raw_to), current_token())
        lists = device_list_delta(request.requester.user_id, since, until)
        return Response({"changed": lists.get("changed", []), "left": lists.get("left", [])})


# --- Cross-signing ---------------------------------------------------------------------------


class DeviceSigningUploadView(MatrixView):
    """First upload needs no UIA; the same keys again are a no-op; new keys replacing
    existing ones need the password (spec v1.11+, MSC3967)."""

    def post(self, request: Request) -> Response:
        body = parse_body(DeviceSigningUploadBody, request)
        user = request.requester.user
        upload = check_signing_keys_upload(user, body)
        if not upload.changed:
            return Response({})
        session = None
        if upload.replaces_existing:
            operation = f"{request.method} {request.path}"
            session = uia.check_uia(body.get("auth"), operation, PASSWORD_FLOWS, user)
        with transaction.atomic():
            do_upload_signing_keys(user, upload)
            if session is not None:
                uia.finish_uia(session)
        return Response({})


class SignaturesUploadView(MatrixView):
    allow_guests = True

    def post(self, request: Request) -> Response:
        signed = check_signatures_body(parse_json_object(request))
        return Response(do_upload_signatures(request.requester.user, signed))


# --- Send-to-device --------------------------------------------------------------------------


class SendToDeviceView(MatrixView):
    allow_guests = True

    def put(self, request: Request, event_type: str, txn_id: str) -> Response:
        body = parse_body(SendToDeviceBody, request)
        messages = check_to_device_request(event_type, txn_id, body["messages"])
        requester = request.requester
        return Response(
            do_send_to_device(requester.user, requester.device_id, event_type, txn_id, messages)
        )


# --- Dehydrated devices (MSC3814) -------------------------------------------------------------


class DehydratedDeviceView(MatrixView):
    """``/unstable/org.matrix.msc3814.v1/dehydrated_device``"""

    def get(self, request: Request) -> Response:
        return Response(queries.get_dehydrated_device(request.requester.user))

    def put(self, request: Request) -> Response:
        body = parse_body(DehydratedDeviceBody, request)
        requester = request.requester
        upload = dehydrated_device.check_dehydrated_device(requester.user_id, body)
        device_id = dehydrated_device.do_put_dehydrated_device(requester.user, upload)
        return Response({"device_id": device_id})

    def delete(self, request: Request) -> Response:
        device_id = dehydrated_device.do_delete_dehydrated_device(request.requester.user)
        return Response({"device_id": device_id})


class DehydratedDeviceEventsView(MatrixView):
    """``/unstable/org.matrix.msc3814.v1/dehydrated_device/{deviceId}/events``"""

    def post(self, request: Request, device_id: str) -> Response:
        body = parse_body(DehydratedDeviceEventsBody, request, allow_empty=True)
        limit = query_int(request, "limit", DEHYDRATED_EVENTS_LIMIT, minimum=1)
        limit = min(limit, MAX_DEHYDRATED_EVENTS_LIMIT)
        user = request.requester.user
        return Response(
            queries.dehydrated_device_events(user, device_id, body.get("next_batch"), limit)
        )


# --- Key backup --------------------------------------------------------------------------------


class RoomKeysVersionsView(MatrixView):
    def get(self, request: Request) -> Response:
        row = queries.access_backup_version(request.requester.user)
        return Response(queries.format_backup_version(row))

    def post(self, request: Request) -> Response:
        body = parse_body(BackupVersionBody, request)
        user = request.requester.user
        version = backup.do_create_backup_version(user, body["algorithm"], body["auth_data"])
        return Response({"version": version})


class RoomKeysVersionView(MatrixView):
    def get(self, request: Request, version: str) -> Response:
        row = queries.access_backup_version(request.requester.user, version)
        return Response(queries.format_backup_version(row))

    def put(self, request: Request, version: str) -> Response:
        body = parse_body(BackupVersionUpdateBody, request)
        backup.do_update_backup_version(request.requester.user, version, body)
        return Response({})

    def delete(self, request: Request, version: str) -> Response:
        backup.do_delete_backup_version(request.requester.user, version)
        return Response({})


class RoomKeysView(MatrixView):
    """``/room_keys/keys[/{roomId}[/{sessionId}]]?version=``"""

    def get(
        self, request: Request, room_id: str | None = None, session_id: str | None = None
    ) -> Response:
        version = _required_query_param(request, "version")
        user = request.requester.user
        return Response(queries.get_room_keys(user, version, room_id, session_id))

    def put(
        self, request: Request, room_id: str | None = None, session_id: str | None = None
    ) -> Response:
        version = _required_query_param(request, "version")
        body = parse_json_object(request)
        if room_id is None:
            room_keys = backup.check_room_keys_body(body)
        elif session_id is None:
            room_keys = {room_id: backup.check_room_key_backup(body, room_id)}
        else:
            room_keys = {room_id: {session_id: backup.check_key_backup_data(body, "body")}}
        return Response(backup.do_put_room_keys(request.requester.user, version, room_keys))

    def delete(
        self, request: Request, room_id: str | None = None, session_id: str | None = None
    ) -> Response:
        version = _required_query_param(request, "version")
        user = request.requester.user
        return Response(backup.do_delete_room_keys(user, version, room_id, session_id))
