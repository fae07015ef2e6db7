"""What this server does for other servers in rooms it is in: make_join / send_join,
make_leave / send_leave, make_knock / send_knock (server-server API "Joining rooms",
"Leaving rooms", "Knocking upon a room").

make_* hands out an unsigned event on top of the room as it is here; send_* checks the
signed event the other server returns, stores it through rooms/events.py, passes it on
to the other servers in the room, and answers (for a join: the state before it and its
auth chain, so that the joining server can check and store the room).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings

from federation.actions.inbound import Dropped, Inbound, Remote, Verifier
from federation.keys import get_signing_key
from federation.queries.events import state_and_auth_chain
from matrixhs.errors import Codes, Forbidden, InvalidParam, JsonDict, MatrixError, NotFound
from matrixhs.protocol.event_auth import EventRejected, auth_types_for_event, recheck_auth
from matrixhs.protocol.events import CREATE_KEY, EventTypes, Membership, membership_of
from matrixhs.protocol.ids import server_name_of
from matrixhs.protocol.signing import sign_event
from rooms import events as room_events
from rooms.actions.membership import AUTHORISER, restricted_join_authoriser
from rooms.models import Room, RoomMembership
from rooms.state import state_of_group

#: What make_* may be asked for, and the room versions that have it.
MEMBERSHIPS = (Membership.JOIN, Membership.LEAVE, Membership.KNOCK)


def _room_we_are_in(room_id: str) -> Room:
    """Raises: NotFound: we have no joined user in the room (so cannot vouch for it)."""
    room = Room.objects.filter(room_id=room_id).first()
    suffix = f":{settings.MATRIXHS_SERVER_NAME}"
    if (
        room is None
        or not RoomMembership.objects.filter(
            room=room, membership=Membership.JOIN, user_id__endswith=suffix
        ).exists()
    ):
        raise NotFound("This server is not in the room")
    return room


def make_membership(
    origin: str, room_id: str, user_id: str, membership: str, versions: Sequence[str]
) -> JsonDict:
    """GET /make_join, /make_leave, /make_knock: an event template for ``user_id``.

    Raises:
        Forbidden: the user is not on ``origin``, or the auth rules would refuse it.
        NotFound: we are not in the room.
        MatrixError: 400 M_INCOMPATIBLE_ROOM_VERSION when ``origin`` does not support the
            room's version (joins and knocks).
    """
    if server_name_of(user_id) != origin:
        raise Forbidden("The user is not on the requesting server")
    room = _room_we_are_in(room_id)
    if membership != Membership.LEAVE and room.room_version not in versions:
        raise MatrixError(
            400,
            Codes.INCOMPATIBLE_ROOM_VERSION,
            "Your server does not support this room's version",
            extra={"room_version": room.room_version},
        )
    content: JsonDict = {"membership": membership}
    if membership == Membership.JOIN:
        _authorise_restricted_join(room, user_id, content)
    rv, template = room_events.event_template(
        room_id, user_id, EventTypes.MEMBER, content, state_key=user_id
    )
    if rv.knock_join_rule is False and membership == Membership.KNOCK:
        raise MatrixError(400, Codes.INCOMPATIBLE_ROOM_VERSION, "The room does not allow knocks")
    _check_against_current_state(room, template)
    return {"event": template, "room_version": rv.identifier}


def _authorise_restricted_join(room: Room, user_id: str, content: JsonDict) -> None:
    """A join to a restricted room by a user not invited nor joined names one of our
    members who may invite, when the user is in one of the rooms the join rules allow
    (spec "Restricted rooms"); we sign the join in send_join to vouch for it."""
    current = (
        RoomMembership.objects.filter(room=room, user_id=user_id)
        .values_list("membership", flat=True)
        .first()
    )
    if current in (Membership.JOIN, Membership.INVITE):
        return
    authoriser = restricted_join_authoriser(room, user_id)
    if authoriser is not None:
        content[AUTHORISER] = authoriser


def _countersigned(room: Room, event: JsonDict) -> JsonDict:
    """A join naming one of our users as its authoriser, with our signature added: we
    vouch only for a user in one of the rooms the join rules allow.

    Raises:
        Forbidden: we cannot vouch for this join.
    """
    content, sender = event.get("content"), event.get("sender")
    authoriser = content.get(AUTHORISER) if isinstance(content, dict) else None
    if not isinstance(authoriser, str) or not authoriser.endswith(
        f":{settings.MATRIXHS_SERVER_NAME}"
    ):
        return event
    if not isinstance(sender, str) or restricted_join_authoriser(room, sender) is None:
        raise Forbidden("This server cannot authorise the join: not in an allowed room")
    rv = room_events.get_room_version(room.room_version)
    try:
        return sign_event(event, settings.MATRIXHS_SERVER_NAME, get_signing_key(), rv)
    except ValueError as exc:
        raise InvalidParam(f"The join cannot be signed: {exc}") from exc


def _check_against_current_state(room: Room, template: JsonDict) -> None:
    if AUTHORISER in template["content"]:  # we sign it in send_join
        ours = settings.MATRIXHS_SERVER_NAME
        template = {**template, "signatures": {ours: {"ed25519:send_join": ""}}}
    rv = room_events.get_room_version(room.room_version)
    keys = auth_types_for_event(template, rv) | {CREATE_KEY}
    state = room_events.current_state_ids(room, keys)
    pdus = room_events.load_pdus(state.values())
    try:
        recheck_auth(template, {k: pdus[e] for k, e in state.items() if e in pdus}, rv)
    except EventRejected as exc:
        raise Forbidden(f"You are not allowed to {membership_of(template)}: {exc.reason}") from exc


def send_membership(
    origin: str,
    room_id: str,
    event_id: str,
    pdu: Any,
    membership: str,
    remote: Remote,
    verify: Verifier,
) -> JsonDict:
    """PUT /send_join (v2), /send_leave (v2), /send_knock: accept the signed event.

    Returns:
        The answer's body: for a join, the state before it and the auth chain; for a knock,
        the stripped state; for a leave, {}.

    Raises:
        InvalidParam: not a valid, signed event of that membership for a user of ``origin``.
        Forbidden: the auth rules refuse it.
        NotFound: we are not in the room.
    """
    room = _room_we_are_in(room_id)
    if membership == Membership.JOIN and isinstance(pdu, dict):
        pdu = _countersigned(room, pdu)
    inbound = Inbound(origin, room, remote, verify)
    try:
        checked_id, event = inbound.checked(pdu)
    except Dropped as exc:
        raise InvalidParam(str(exc)) from exc
    sender = event.get("sender")
    if (
        checked_id != event_id
        or event.get("type") != EventTypes.MEMBER
        or membership_of(event) != membership
        or event.get("state_key") != sender
        or server_name_of(sender) != origin
    ):
        raise InvalidParam(f"Not a {membership} event of a user of {origin} for this room")
    try:
        outcome = room_events.persist_federated_event(room_id, event_id, event, relay_except=origin)
    except room_events.StateUnknown as exc:
        raise InvalidParam("The event is not built on events this server has") from exc
    if outcome.rejected_reason is not None or outcome.soft_failed:
        raise Forbidden(f"The {membership} is not allowed: {outcome.rejected_reason or 'state'}")
    if membership == Membership.JOIN:
        answer = _join_answer(room, event_id)
        if AUTHORISER in event.get("content", {}):
            answer["event"] = event
        return answer
    if membership == Membership.KNOCK:
        return {"knock_room_state": knock_room_state(room)}
    return {}


def _join_answer(room: Room, event_id: str) -> JsonDict:
    group = room_events.Event.objects.get(event_id=event_id).state_group_before_id
    before = state_of_group(group)
    answer = state_and_auth_chain(room, before, also=[event_id])
    answer.update({"origin": settings.MATRIXHS_SERVER_NAME, "members_omitted": False})
    return answer


def knock_room_state(room: Room) -> list[JsonDict]:
    """Stripped state for a knocking user: the room's name and such."""
    return room_events.stripped_state_of(room)
