from __future__ import annotations

from django.urls import path

from rooms.views import (
    create,
    directory,
    events,
    membership,
    receipts,
    relations,
    search,
    tags,
)

R = "rooms/<str:room_id>"

# Served under /_matrix/client/v3/ (and r0).
client_patterns = [
    path("createRoom", create.CreateRoomView.as_view()),
    path("join/<str:room>", membership.JoinView.as_view()),
    path("knock/<str:room>", membership.KnockView.as_view()),
    path("joined_rooms", membership.JoinedRoomsView.as_view()),
    path("rooms/<str:room>/join", membership.JoinView.as_view()),
    path(f"{R}/invite", membership.InviteView.as_view()),
    path(f"{R}/leave", membership.LeaveView.as_view()),
    path(f"{R}/forget", membership.ForgetView.as_view()),
    path(f"{R}/kick", membership.KickView.as_view()),
    path(f"{R}/ban", membership.BanView.as_view()),
    path(f"{R}/unban", membership.UnbanView.as_view()),
    path(f"{R}/send/<str:event_type>/<str:txn_id>", events.SendView.as_view()),
    path(f"{R}/redact/<str:event_id>/<str:txn_id>", events.RedactView.as_view()),
    path(f"{R}/state", events.StateView.as_view()),
    path(f"{R}/state/<str:event_type>", events.StateView.as_view()),
    path(f"{R}/state/<str:event_type>/", events.StateView.as_view()),
    path(f"{R}/state/<str:event_type>/<str:state_key>", events.StateView.as_view()),
    path(f"{R}/event/<str:event_id>", events.EventView.as_view()),
    path(f"{R}/messages", events.MessagesView.as_view()),
    path(f"{R}/context/<str:event_id>", events.ContextView.as_view()),
    path(f"{R}/members", events.MembersView.as_view()),
    path(f"{R}/joined_members", events.JoinedMembersView.as_view()),
    path(f"{R}/receipt/<str:receipt_type>/<str:event_id>", receipts.ReceiptView.as_view()),
    path(f"{R}/read_markers", receipts.ReadMarkersView.as_view()),
    path(f"{R}/typing/<str:user_id>", receipts.TypingView.as_view()),
    path(f"{R}/report/<str:event_id>", receipts.ReportEventView.as_view()),
    path(f"{R}/report", receipts.ReportEventView.as_view()),
    path(f"{R}/aliases", directory.RoomAliasesView.as_view()),
    path("directory/room/<str:alias>", directory.AliasView.as_view()),
    path("directory/list/room/<str:room_id>", directory.RoomVisibilityView.as_view()),
    path("publicRooms", directory.PublicRoomsView.as_view()),
    path("user_directory/search", directory.UserDirectorySearchView.as_view()),
    path("search", search.SearchView.as_view()),
    path(f"{R}/initialSync", events.RoomInitialSyncView.as_view()),
    path(f"{R}/upgrade", create.UpgradeRoomView.as_view()),
    path(f"user/<str:user_id>/{R}/tags", tags.TagsView.as_view()),
    path(f"user/<str:user_id>/{R}/tags/<str:tag>", tags.TagView.as_view()),
]

# Served under /_matrix/client/v1/.
client_v1_patterns = [
    path(f"{R}/relations/<str:event_id>", relations.RelationsView.as_view()),
    path(f"{R}/relations/<str:event_id>/<str:rel_type>", relations.RelationsView.as_view()),
    path(
        f"{R}/relations/<str:event_id>/<str:rel_type>/<str:event_type>",
        relations.RelationsView.as_view(),
    ),
    path(f"{R}/threads", relations.ThreadsView.as_view()),
    path(f"{R}/timestamp_to_event", events.TimestampToEventView.as_view()),
    path(f"{R}/hierarchy", directory.HierarchyView.as_view()),
    path("room_summary/<str:room>", directory.RoomSummaryView.as_view()),
    path("mutual_rooms", membership.MutualRoomsView.as_view()),
]

# Served under /_matrix/client/unstable/: paths of MSCs that clients still call.
client_unstable_patterns = [
    path(f"org.matrix.msc3030/{R}/timestamp_to_event", events.TimestampToEventView.as_view()),
    path("im.nheko.summary/summary/<str:room>", directory.RoomSummaryView.as_view()),
    path("im.nheko.summary/rooms/<str:room>/summary", directory.RoomSummaryView.as_view()),
]
