"""Routes of the admin API: Synapse's /_synapse/admin/v1 and v2, and the spec's own."""

from __future__ import annotations

from django.urls import path

from serveradmin.views import federation, media, reports, rooms, server, tokens, users

U = "users/<str:user_id>"
R = "rooms/<str:room_id>"
M = "<str:server_name>/<str:media_id>"

# Served under /_synapse/admin/v1/ (beside accounts' shared-secret registration).
synapse_admin_v1_patterns = [
    path("server_version", server.ServerVersionView.as_view()),
    path("deactivate/<str:user_id>", users.DeactivateView.as_view()),
    path("reset_password/<str:user_id>", users.ResetPasswordView.as_view()),
    path("whois/<str:user_id>", users.WhoisView.as_view()),
    path("username_available", users.UsernameAvailableView.as_view()),
    path("suspend/<str:user_id>", users.SuspendView.as_view()),
    path(f"{U}/admin", users.AdminFlagView.as_view()),
    path(f"{U}/joined_rooms", users.JoinedRoomsView.as_view()),
    path(f"{U}/pushers", users.PushersView.as_view()),
    path("rooms", rooms.RoomsView.as_view()),
    path(R, rooms.RoomView.as_view()),
    path(f"{R}/members", rooms.RoomMembersView.as_view()),
    path(f"{R}/state", rooms.RoomStateView.as_view()),
    path(f"{R}/messages", rooms.RoomMessagesView.as_view()),
    path(f"{R}/block", rooms.BlockRoomView.as_view()),
    path("event_reports", reports.EventReportsView.as_view()),
    path("event_reports/<str:report_id>", reports.EventReportView.as_view()),
    path("registration_tokens", tokens.RegistrationTokensView.as_view()),
    path("registration_tokens/new", tokens.NewRegistrationTokenView.as_view()),
    path("registration_tokens/<str:token>", tokens.RegistrationTokenView.as_view()),
    path(f"media/quarantine/{M}", media.QuarantineMediaView.as_view()),
    path(f"media/unquarantine/{M}", media.UnquarantineMediaView.as_view()),
    path("media/delete", media.DeleteMediaBeforeView.as_view()),
    path("media/<str:server_name>/delete", media.DeleteMediaBeforeView.as_view()),
    path(f"media/{M}", media.MediaView.as_view()),
    path(f"{U}/media", media.UserMediaView.as_view()),
    path("room/<str:room_id>/media", media.RoomMediaView.as_view()),
    path("room/<str:room_id>/media/quarantine", media.QuarantineRoomMediaView.as_view()),
    path("user/<str:user_id>/media/quarantine", media.QuarantineUserMediaView.as_view()),
    path("federation/destinations", federation.DestinationsView.as_view()),
    path("federation/destinations/<str:destination>", federation.DestinationView.as_view()),
    path(
        "federation/destinations/<str:destination>/reset_connection",
        federation.ResetConnectionView.as_view(),
    ),
]

# Served under /_synapse/admin/v2/.
synapse_admin_v2_patterns = [
    path("users", users.UsersView.as_view()),
    path(U, users.UserView.as_view()),
    path(f"{U}/devices", users.DevicesView.as_view()),
    path(f"{U}/devices/<path:device_id>", users.DeviceView.as_view()),
    path(f"{U}/delete_devices", users.DeleteDevicesView.as_view()),
    path("rooms/delete_status/<str:delete_id>", rooms.DeleteStatusView.as_view()),
    path(R, rooms.DeleteRoomView.as_view()),
    path(f"{R}/delete_status", rooms.RoomDeleteStatusView.as_view()),
]

# Served under /_matrix/client/v3/ (and r0).
client_patterns = [
    path("admin/whois/<str:user_id>", users.ClientWhoisView.as_view()),
]

# Served under /_matrix/client/v1/.
client_v1_patterns = [
    path("admin/lock/<str:user_id>", users.ClientLockView.as_view()),
    path("admin/suspend/<str:user_id>", users.ClientSuspendView.as_view()),
]
