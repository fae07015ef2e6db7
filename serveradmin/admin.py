"""The Django admin of the admin API's tables: the audit log and room deletions are
records, read-only; blocked rooms are blocked and unblocked through rooms.actions."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from rooms.actions.blocking import do_unblock_room
from rooms.models import BlockedRoom
from serveradmin.models import AuditLogEntry, RoomDeletion


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditLogEntry)
class AuditLogEntryAdmin(ReadOnlyAdmin):
    list_display = ("ts", "actor", "action", "target")
    list_filter = ("action",)
    search_fields = ("actor", "action", "target")
    ordering = ("-ts", "-pk")
    readonly_fields = ("ts", "actor", "action", "target", "details")


@admin.register(RoomDeletion)
class RoomDeletionAdmin(ReadOnlyAdmin):
    list_display = ("delete_id", "room_id", "requester", "status", "created_ts", "updated_ts")
    list_filter = ("status",)
    search_fields = ("room_id", "delete_id", "requester")
    readonly_fields = (
        "delete_id",
        "room_id",
        "requester",
        "params",
        "status",
        "error",
        "result",
        "created_ts",
        "updated_ts",
    )


@admin.register(BlockedRoom)
class BlockedRoomAdmin(admin.ModelAdmin):
    list_display = ("room_id", "blocked_by", "blocked_ts")
    search_fields = ("room_id", "blocked_by")
    readonly_fields = ("room_id", "blocked_by", "blocked_ts")
    actions = ["unblock"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # blocked through the admin API (PUT /rooms/{roomId}/block)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Unblock the selected rooms")
    def unblock(self, request: HttpRequest, queryset: QuerySet[BlockedRoom]) -> None:
        for row in queryset:
            do_unblock_room(row.room_id)
