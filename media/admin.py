"""The operators' Django admin for media: quarantine and delete, by media, user or room.

Search with a user ID (``@alice:example.org``) or a room ID (``!room:example.org``) to
list that user's uploads or the media a room's events use, then apply an action to the
selection. Every change goes through media.actions (deletion removes the stored files
too, so Django's own bulk delete is replaced).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from media.actions import do_delete_media, do_quarantine_media, do_unquarantine_media
from media.models import Media
from media.queries import media_in_room, media_of_user


@admin.register(Media)
class MediaAdmin(admin.ModelAdmin):
    list_display = (
        "mxc",
        "user",
        "content_type",
        "size",
        "upload_name",
        "created_ts",
        "last_access_ts",
        "quarantined_by",
    )
    list_filter = ("server_name", "content_type")
    search_fields = ("media_id", "upload_name")
    fields = (
        "server_name",
        "media_id",
        "user",
        "content_type",
        "upload_name",
        "size",
        "sha256",
        "storage_key",
        "created_ts",
        "uploaded_ts",
        "last_access_ts",
        "quarantined_by",
        "width",
        "height",
    )
    readonly_fields = fields
    actions = ["quarantine", "unquarantine", "delete_media"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the "delete media" action removes the stored files too

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Media], search_term: str
    ) -> tuple[QuerySet[Media], bool]:
        term = search_term.strip()
        if term.startswith("@"):
            return queryset.filter(pk__in=media_of_user(term).values("pk")), False
        if term.startswith("!"):
            return queryset.filter(pk__in=media_in_room(term).values("pk")), False
        return super().get_search_results(request, queryset, search_term)

    @admin.action(description="Quarantine (serve to nobody)")
    def quarantine(self, request: HttpRequest, queryset: QuerySet[Media]) -> None:
        count = do_quarantine_media(queryset, by=str(request.user))
        self.message_user(request, f"Quarantined {count} media.", messages.SUCCESS)

    @admin.action(description="Lift the quarantine")
    def unquarantine(self, request: HttpRequest, queryset: QuerySet[Media]) -> None:
        count = do_unquarantine_media(queryset)
        self.message_user(request, f"Lifted the quarantine of {count} media.", messages.SUCCESS)

    @admin.action(description="Delete media and their files")
    def delete_media(self, request: HttpRequest, queryset: QuerySet[Media]) -> None:
        count = do_delete_media(queryset.iterator())
        self.message_user(request, f"Deleted {count} media.", messages.SUCCESS)
