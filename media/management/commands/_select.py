"""Choosing media for the operators' commands: one mxc:// URI, a user's, or a room's."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError
from django.db.models import QuerySet

from matrixhs.protocol.ids import InvalidIdentifier, parse_mxc_uri
from media.models import Media
from media.queries import media_in_room, media_of_user


def add_selection_arguments(parser: Any) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--media", metavar="MXC", help="one mxc://server/mediaId")
    group.add_argument("--user", metavar="USER_ID", help="every media uploaded by this user")
    group.add_argument("--room", metavar="ROOM_ID", help="every media the room's events use")


def selected_media(options: dict[str, Any]) -> QuerySet[Media]:
    if options["media"]:
        try:
            server_name, media_id = parse_mxc_uri(options["media"])
        except InvalidIdentifier as exc:
            raise CommandError(str(exc)) from exc
        return Media.objects.filter(server_name=server_name, media_id=media_id)
    if options["user"]:
        return media_of_user(options["user"])
    return media_in_room(options["room"])
