"""The base of every admin API view: a server admin's access token, JSON in and out."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.request import Request

from accounts.models import User
from accounts.queries import is_local_user_id
from matrixhs.errors import Forbidden, InvalidParam, NotFound
from matrixhs.http import MatrixView, query_int, room_id_param, user_id_param
from rooms.models import Room
from serveradmin.actions.audit import do_record


class AdminView(MatrixView):
    """Only server admins (``User.is_admin``) may call it; everyone else gets 403
    M_FORBIDDEN, before any lookup, so nothing is learned about users or rooms."""

    rate_limit = None  # operators' tools page through everything

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if not request.requester.user.is_admin:
            raise Forbidden("You are not a server admin")

    def audit(self, request: Request, action: str, target: str, **details: Any) -> None:
        do_record(request.requester.user_id, action, target, **details)


def local_user_param(user_id: str) -> str:
    """A user ID from the path that must be of this server.

    Raises:
        InvalidParam: not a user ID, or one of another server (Synapse answers 400 too).
    """
    user_id = user_id_param(user_id)
    if not is_local_user_id(user_id):
        raise InvalidParam("Can only look up local users")
    return user_id


def get_local_user_or_404(user_id: str) -> User:
    """Raises: InvalidParam (see :func:`local_user_param`); NotFound: no such user."""
    user = User.objects.filter(user_id=local_user_param(user_id)).first()
    if user is None:
        raise NotFound("User not found")
    return user


def room_or_404(room_id: str) -> Room:
    """Raises: InvalidParam: not a room ID; NotFound: no such room here."""
    room = Room.objects.filter(room_id=room_id_param(room_id)).first()
    if room is None:
        raise NotFound("Room not found")
    return room


def page_params(request: Request, default_limit: int = 100) -> tuple[int, int, bool]:
    """``from`` (an offset), ``limit`` and ``dir`` (True: backwards) of a listing.

    Raises:
        InvalidParam: a negative offset, a limit below 1, a dir other than f or b.
    """
    start = query_int(request, "from", 0)
    limit = query_int(request, "limit", default_limit, minimum=1)
    direction = request.query_params.get("dir", "f")
    if direction not in ("f", "b"):
        raise InvalidParam("dir must be f or b")
    return start, limit, direction == "b"


def paged(items_key: str, items: list[Any], start: int, limit: int, total: int) -> dict[str, Any]:
    """Synapse's listing shape: the items, ``total``, and ``next_token`` while more remain."""
    body: dict[str, Any] = {items_key: items, "total": total}
    if start + len(items) < total:
        body["next_token"] = str(start + len(items))
    return body


def server_name() -> str:
    return str(settings.MATRIXHS_SERVER_NAME)
