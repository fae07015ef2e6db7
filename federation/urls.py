"""URL patterns of the federation API (/_matrix/federation/...), included by matrixhs/urls.py."""

from __future__ import annotations

from django.urls import path

from federation.views import devices, queries, rooms
from matrixhs.protocol.events import Membership

v1_patterns = [
    path("send/<str:txn_id>", rooms.SendTransactionView.as_view()),
    path(
        "make_join/<str:room_id>/<str:user_id>",
        rooms.MakeMembershipView.as_view(membership=Membership.JOIN),
    ),
    path(
        "make_leave/<str:room_id>/<str:user_id>",
        rooms.MakeMembershipView.as_view(membership=Membership.LEAVE),
    ),
    path(
        "make_knock/<str:room_id>/<str:user_id>",
        rooms.MakeMembershipView.as_view(membership=Membership.KNOCK),
    ),
    path(
        "send_knock/<str:room_id>/<str:event_id>",
        rooms.SendMembershipView.as_view(membership=Membership.KNOCK),
    ),
    path("state/<str:room_id>", rooms.StateView.as_view()),
    path("state_ids/<str:room_id>", rooms.StateIdsView.as_view()),
    path("event/<str:event_id>", rooms.EventView.as_view()),
    path("event_auth/<str:room_id>/<str:event_id>", rooms.EventAuthView.as_view()),
    path("backfill/<str:room_id>", rooms.BackfillView.as_view()),
    path("get_missing_events/<str:room_id>", rooms.GetMissingEventsView.as_view()),
    path("query/profile", queries.QueryProfileView.as_view()),
    path("query/directory", queries.QueryDirectoryView.as_view()),
    path("publicRooms", queries.PublicRoomsView.as_view()),
    path("openid/userinfo", queries.OpenIdUserInfoView.as_view()),
    path("user/devices/<str:user_id>", devices.UserDevicesView.as_view()),
    path("user/keys/query", devices.UserKeysQueryView.as_view()),
    path("user/keys/claim", devices.UserKeysClaimView.as_view()),
]

v2_patterns = [
    path(
        "send_join/<str:room_id>/<str:event_id>",
        rooms.SendMembershipView.as_view(membership=Membership.JOIN),
    ),
    path(
        "send_leave/<str:room_id>/<str:event_id>",
        rooms.SendMembershipView.as_view(membership=Membership.LEAVE),
    ),
    path("invite/<str:room_id>/<str:event_id>", rooms.InviteView.as_view()),
]
