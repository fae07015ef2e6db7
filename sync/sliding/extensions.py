"""Sliding sync extensions: to_device, e2ee, account_data, receipts and typing."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Q

from accounts.models import AccountData, User
from e2ee.actions.to_device import delete_to_device_up_to
from e2ee.queries import one_time_key_counts, to_device_messages, unused_fallback_key_types
from matrixhs.errors import InvalidParam, JsonDict
from matrixhs.tokens import SyncToken, parse_position
from rooms.models import Room
from sync import rooms as data
from sync.actions import typing_in_rooms
from sync.classic import device_list_delta, initial_push_rules
from sync.connections import ConnectionState
from sync.sliding.request import SlidingRequest

# --- extensions -----------------------------------------------------------------------------


def _enabled(extensions: JsonDict, name: str) -> JsonDict | None:
    config = extensions.get(name)
    if isinstance(config, dict) and config.get("enabled") is True:
        return config
    return None


#: The most to-device messages one response carries, whatever the client asks.
MAX_TO_DEVICE_LIMIT = 1000


def _to_device_window(config: JsonDict, since: SyncToken | None) -> tuple[int, int]:
    """The to_device extension's ``since`` (a stream position we issued; absent: the
    connection's) and ``limit`` (a positive integer, 100 by default).

    Raises:
        InvalidParam: either is something else.
    """
    raw = config.get("since")
    after = parse_position(raw) if isinstance(raw, str) else None
    if raw is not None and after is None:
        raise InvalidParam("extensions.to_device.since must be a stream position")
    limit = config.get("limit")
    if limit is None:
        limit = 100
    elif isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidParam("extensions.to_device.limit must be a positive integer")
    default = since.to_device if since else 0
    return (after if after is not None else default), min(limit, MAX_TO_DEVICE_LIMIT)


def build_extensions(
    request: SlidingRequest,
    previous: ConnectionState | None,
    now: SyncToken,
    rooms: list[Room],
    initial_rooms: set[str],
) -> tuple[JsonDict, bool, int | None]:
    """The extensions section, whether it holds news, and the next typing expiry."""
    since = previous.token if previous is not None else None
    out: JsonDict = {}
    news = False
    expiry = None
    if (config := _enabled(request.extensions, "to_device")) is not None and request.device_id:
        after, limit = _to_device_window(config, since)
        if after:
            delete_to_device_up_to(request.user, request.device_id, after)
        events, position = to_device_messages(
            request.user, request.device_id, after, limit, now.to_device
        )
        out["to_device"] = {"next_batch": str(position), "events": events}
        news |= bool(events)
    if _enabled(request.extensions, "e2ee") is not None and request.device_id:
        e2ee: JsonDict = {
            "device_one_time_keys_count": one_time_key_counts(request.user, request.device_id),
            "device_unused_fallback_key_types": unused_fallback_key_types(
                request.user, request.device_id
            ),
        }
        lists = device_list_delta(request.user.user_id, since, now)
        if lists:
            e2ee["device_lists"] = {
                "changed": lists.get("changed", []),
                "left": lists.get("left", []),
            }
            news = True
        out["e2ee"] = e2ee
    if _enabled(request.extensions, "account_data") is not None:
        out["account_data"], changed = _account_data(request.user, rooms, since, now)
        news |= changed
    if _enabled(request.extensions, "receipts") is not None:
        receipts = data.receipts(
            rooms, request.user.user_id, since.receipts if since else None, now.receipts
        )
        by_pk = {r.pk: r.room_id for r in rooms}
        out["receipts"] = {
            "rooms": {
                by_pk[pk]: {"type": "m.receipt", "content": content}
                for pk, content in receipts.items()
            }
        }
        news |= bool(receipts)
    if _enabled(request.extensions, "typing") is not None:
        typing_out, expiry = _typing(rooms, since, now, initial_rooms)
        out["typing"] = {"rooms": typing_out}
        news |= bool(typing_out)
    return out, news, expiry


def _account_data(
    user: User, rooms: list[Room], since: SyncToken | None, now: SyncToken
) -> tuple[JsonDict, bool]:
    query = AccountData.objects.filter(user=user, stream_id__lte=now.account_data).filter(
        Q(room_id="") | Q(room_id__in=[r.room_id for r in rooms])
    )
    if since is not None:
        query = query.filter(stream_id__gt=since.account_data)
    global_events: list[JsonDict] = []
    per_room: dict[str, list[JsonDict]] = defaultdict(list)
    for room_id, data_type, content in query.values_list("room_id", "type", "content"):
        event = {"type": data_type, "content": content}
        (per_room[room_id] if room_id else global_events).append(event)
    if since is None and not any(e["type"] == "m.push_rules" for e in global_events):
        global_events.extend(initial_push_rules(user))
    changed = bool(global_events or per_room) and since is not None
    return {"global": global_events, "rooms": dict(per_room)}, changed


def _typing(
    rooms: list[Room], since: SyncToken | None, now: SyncToken, initial_rooms: set[str]
) -> tuple[JsonDict, int | None]:
    typing = typing_in_rooms([r.room_id for r in rooms])
    out: JsonDict = {}
    expiry = None
    for room_id, state in typing.items():
        fresh = since is None or room_id in initial_rooms or since.typing > now.typing
        if fresh and not state.users:
            continue
        if fresh or state.position > since.typing:  # type: ignore[union-attr]
            out[room_id] = {"type": "m.typing", "content": {"user_ids": state.users}}
        if state.next_expiry_ms is not None:
            expiry = min(expiry or state.next_expiry_ms, state.next_expiry_ms)
    return out, expiry
