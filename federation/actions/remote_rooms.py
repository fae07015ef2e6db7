"""What this server does for its users in rooms that live on other servers: joining
through make_join/send_join, inviting a user of another server (/invite), being invited
by one, and rejecting such an invite (make_leave/send_leave), as the server-server API's
"Joining rooms", "Inviting to a room" and "Leaving rooms" describe.

A join is a workflow with a record (``JoinAttempt``): it tries the candidate servers in
turn, and what it stores it stores through rooms/events.py, after checking every event
the resident server sent (signatures, hashes, the auth rules with each event's own auth
events, and the join against the state it came with).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from django.conf import settings
from django.db import transaction

from accounts.models import User
from federation.actions.inbound import Inbound, Remote, Verifier
from federation.models import JoinAttempt
from matrixhs.errors import Codes, Forbidden, InvalidParam, JsonDict, MatrixError, NotFound
from matrixhs.protocol.events import (
    CREATE_KEY,
    EventTypes,
    InvalidEvent,
    Membership,
    auth_event_ids,
    check_pdu_format,
    create_event_id_for_room,
    membership_of,
    prev_event_ids,
    state_key_tuple,
)
from matrixhs.protocol.hashing import check_content_hash, compute_event_id
from matrixhs.protocol.ids import server_name_of
from matrixhs.protocol.room_versions import (
    IMPLEMENTED_ROOM_VERSIONS,
    RoomVersion,
    UnknownRoomVersion,
    get_room_version,
)
from matrixhs.protocol.signing import InvalidSignature, build_pdu, sign_event
from matrixhs.time import now_ms
from rooms import events as room_events
from rooms.models import Event, Room, RoomMembership

logger = logging.getLogger(__name__)


class MembershipRemote(Remote, Protocol):
    """The calls a membership change in another server's room makes."""

    def make_membership(
        self, destination: str, room_id: str, user_id: str, membership: str, versions: list[str]
    ) -> JsonDict: ...

    def send_membership(
        self, destination: str, room_id: str, event_id: str, pdu: JsonDict, membership: str
    ) -> JsonDict: ...

    def invite(
        self,
        destination: str,
        room_id: str,
        event_id: str,
        pdu: JsonDict,
        room_version: str,
        invite_room_state: list[JsonDict],
    ) -> JsonDict: ...


class RemoteJoinFailed(MatrixError):
    def __init__(self, message: str) -> None:
        super().__init__(404, Codes.NOT_FOUND, message)


def _our_signing_key() -> Any:
    from federation.keys import get_signing_key

    return get_signing_key()


def _sign_template(
    template: Any, rv: RoomVersion, user_id: str, membership: str, content: JsonDict
) -> tuple[str, JsonDict]:
    """Fill in and sign the event a make_* call returned.

    Raises:
        InvalidParam: the template is not that membership event of ``user_id``.
    """
    if not isinstance(template, dict) or not isinstance(template.get("content"), dict):
        raise InvalidParam("The resident server sent no event template")
    if (
        template.get("type") != EventTypes.MEMBER
        or template.get("sender") != user_id
        or template.get("state_key") != user_id
        or template["content"].get("membership") != membership
    ):
        raise InvalidParam("The resident server sent a template for another event")
    partial = {
        key: template[key]
        for key in ("type", "sender", "state_key", "room_id", "depth")
        if key in template
    }
    partial["prev_events"] = prev_event_ids(template)
    partial["auth_events"] = auth_event_ids(template, rv, include_create=False)
    partial["content"] = {**template["content"], **content, "membership": membership}
    partial["origin_server_ts"] = now_ms()
    try:
        return build_pdu(partial, settings.MATRIXHS_SERVER_NAME, _our_signing_key(), rv)
    except (InvalidEvent, ValueError) as exc:
        raise InvalidParam(f"The event template is not usable: {exc}") from exc


# --- joining ------------------------------------------------------------------------------


def join_remote_room(
    user: User,
    room_id: str,
    servers: Sequence[str],
    content: JsonDict,
    remote: MembershipRemote,
    verify: Verifier,
) -> Event:
    """Join a room through the first of ``servers`` that lets us.

    Raises:
        RemoteJoinFailed: no server let us in (404 M_NOT_FOUND, as Synapse answers).
        Forbidden: a server answered that the user may not join.
    """
    candidates = [s for s in dict.fromkeys(servers) if s and s != settings.MATRIXHS_SERVER_NAME]
    if not candidates:
        raise RemoteJoinFailed("No server to join the room through")
    attempt = JoinAttempt.objects.create(
        user_id=user.user_id,
        room_id=room_id,
        servers=candidates,
        status=JoinAttempt.Status.RUNNING,
        started_ms=now_ms(),
    )
    forbidden: MatrixError | None = None
    errors = []
    for server in candidates:
        try:
            event = _join_through(user, room_id, server, content, remote, verify)
        except MatrixError as exc:
            logger.info(
                "Joining %s through %s refused: %s %s", room_id, server, exc.errcode, exc.msg
            )
            errors.append(f"{server}: {exc.errcode} {exc.msg}")
            if exc.errcode == Codes.FORBIDDEN:
                forbidden = exc
            continue
        except Exception as exc:  # unreachable, bad answers: try the next server
            logger.info("Joining %s through %s failed: %s", room_id, server, exc)
            errors.append(f"{server}: {exc}")
            continue
        attempt.finish(JoinAttempt.Status.DONE, "")
        return event
    attempt.finish(JoinAttempt.Status.FAILED, "; ".join(errors)[:2000])
    if forbidden is not None:
        raise Forbidden(forbidden.msg)
    raise RemoteJoinFailed(f"Could not join the room through {', '.join(candidates)}")


def _join_through(
    user: User,
    room_id: str,
    server: str,
    content: JsonDict,
    remote: MembershipRemote,
    verify: Verifier,
) -> Event:
    versions = sorted(IMPLEMENTED_ROOM_VERSIONS)
    answer = remote.make_membership(server, room_id, user.user_id, Membership.JOIN, versions)
    try:
        rv = get_room_version(str(answer.get("room_version", "1")))
    except UnknownRoomVersion as exc:
        raise MatrixError(400, Codes.INCOMPATIBLE_ROOM_VERSION, str(exc)) from exc
    if rv.identifier not in IMPLEMENTED_ROOM_VERSIONS:
        raise MatrixError(400, Codes.INCOMPATIBLE_ROOM_VERSION, "Unsupported room version")
    event_id, pdu = _sign_template(answer.get("event"), rv, user.user_id, "join", content)
    joined = remote.send_membership(server, room_id, event_id, pdu, Membership.JOIN)
    if isinstance(joined.get("event"), dict):
        # Restricted rooms: the resident server's copy carries its signature too.
        pdu = _same_event_countersigned(joined["event"], event_id, rv, verify)
    state_pdus, chain_pdus = joined.get("state"), joined.get("auth_chain")
    if not isinstance(state_pdus, list) or not isinstance(chain_pdus, list):
        raise InvalidParam("The send_join answer has no state or auth chain")
    create = _create_event(state_pdus, room_id, rv)
    room = room_events.remember_remote_room(room_id, rv, create)
    inbound = Inbound(server, room, remote, verify)
    inbound.store_outliers([*chain_pdus, *state_pdus])
    state = _state_map(state_pdus, rv)
    outcome = room_events.persist_federated_event(
        room_id, event_id, pdu, state=state, replace_extremities=True
    )
    if outcome.rejected_reason is not None:
        raise Forbidden(f"The join does not pass the room's rules: {outcome.rejected_reason}")
    return Event.objects.get(event_id=event_id)


def _same_event_countersigned(
    event: JsonDict, event_id: str, rv: RoomVersion, verify: Verifier
) -> JsonDict:
    try:
        if compute_event_id(event, rv) != event_id:
            raise InvalidParam("The resident server changed the join event")
        verify(event, rv)
    except InvalidSignature as exc:
        raise InvalidParam(f"The countersigned join is not valid: {exc}") from exc
    return event


def _create_event(state_pdus: list[Any], room_id: str, rv: RoomVersion) -> JsonDict:
    """The room's create event among the state, checked against the room ID."""
    for pdu in state_pdus:
        if isinstance(pdu, dict) and state_key_tuple(pdu) == CREATE_KEY:
            if rv.room_id_from_create_event:
                if compute_event_id(pdu, rv) != create_event_id_for_room(room_id):
                    raise InvalidParam("The create event is not this room's")
            elif pdu.get("room_id") != room_id:
                raise InvalidParam("The create event is of another room")
            return pdu
    raise InvalidParam("The room's state has no create event")


def _state_map(state_pdus: list[Any], rv: RoomVersion) -> dict[tuple[str, str], str]:
    """The state the resident server sent, keyed by (type, state_key), keeping only the
    events that passed the checks and were stored."""
    ids = {}
    for pdu in state_pdus:
        if not isinstance(pdu, dict):
            continue
        key = state_key_tuple(pdu)
        if key is not None:
            ids[key] = compute_event_id(pdu, rv)
    stored = set(
        Event.objects.filter(event_id__in=ids.values(), rejected_reason__isnull=True).values_list(
            "event_id", flat=True
        )
    )
    return {key: event_id for key, event_id in ids.items() if event_id in stored}


def knock_remote_room(
    user: User,
    room_id: str,
    servers: Sequence[str],
    content: JsonDict,
    remote: MembershipRemote,
) -> Event:
    """Knock on a room through the first of ``servers`` that takes the knock; the room
    is then known here by the stripped state the resident server answered with.

    Raises:
        RemoteJoinFailed: no server took it (404 M_NOT_FOUND).
        Forbidden: a server answered that the user may not knock.
    """
    candidates = [s for s in dict.fromkeys(servers) if s and s != settings.MATRIXHS_SERVER_NAME]
    forbidden: MatrixError | None = None
    for server in candidates:
        try:
            versions = sorted(IMPLEMENTED_ROOM_VERSIONS)
            answer = remote.make_membership(
                server, room_id, user.user_id, Membership.KNOCK, versions
            )
            rv = get_room_version(str(answer.get("room_version", "1")))
            if rv.identifier not in IMPLEMENTED_ROOM_VERSIONS:
                raise MatrixError(400, Codes.INCOMPATIBLE_ROOM_VERSION, "Unsupported version")
            event_id, pdu = _sign_template(answer.get("event"), rv, user.user_id, "knock", content)
            sent = remote.send_membership(server, room_id, event_id, pdu, Membership.KNOCK)
        except MatrixError as exc:
            if exc.errcode == Codes.FORBIDDEN:
                forbidden = exc
            logger.info("Knocking on %s through %s failed: %s", room_id, server, exc)
            continue
        except Exception as exc:
            logger.info("Knocking on %s through %s failed: %s", room_id, server, exc)
            continue
        stripped = _stripped(sent.get("knock_room_state"))
        create = next((e for e in stripped if e.get("type") == EventTypes.CREATE), None)
        room_events.remember_remote_room(room_id, rv, create)
        room_events.persist_out_of_band_membership(room_id, event_id, pdu, stripped)
        return Event.objects.get(event_id=event_id)
    if forbidden is not None:
        raise Forbidden(forbidden.msg)
    raise RemoteJoinFailed(
        f"Could not knock on the room through {', '.join(candidates) or 'no server'}"
    )


# --- invites ------------------------------------------------------------------------------


def invite_remote_user(
    inviter: str,
    room_id: str,
    invitee: str,
    content: JsonDict,
    remote: MembershipRemote,
    verify: Verifier,
) -> Event:
    """Invite a user of another server: our signed invite goes to their server, which
    signs it too; then it is stored and passed on to the room's other servers.

    Raises:
        Forbidden: the auth rules refuse the invite, or the invitee's server does.
        NotFound: unknown room.
    """
    destination = server_name_of(invitee)
    with transaction.atomic():
        room = room_events.lock_room(room_id)
        rv = get_room_version(room.room_version)
        event_id, pdu = room_events.build_local_event(
            room, rv, inviter, EventTypes.MEMBER, content, state_key=invitee
        )
        stripped = room_events.stripped_state_of(room)
    try:
        answer = remote.invite(destination, room_id, event_id, pdu, rv.identifier, stripped)
    except MatrixError as exc:
        raise Forbidden(f"{destination} refused the invite: {exc.msg}") from exc
    signed = answer.get("event")
    if not isinstance(signed, dict):
        raise Forbidden(f"{destination} did not sign the invite")
    signed = {k: v for k, v in signed.items() if k != "unsigned"}
    try:
        if compute_event_id(signed, rv) != event_id:
            raise Forbidden(f"{destination} changed the invite")
        verify(signed, rv)
    except InvalidSignature as exc:
        raise Forbidden(f"{destination} signed the invite wrongly: {exc}") from exc
    outcome = room_events.persist_federated_event(
        room_id, event_id, signed, relay_except=destination
    )
    if not outcome.accepted or outcome.soft_failed:
        raise Forbidden("The invite is no longer allowed")
    return Event.objects.get(event_id=event_id)


def receive_invite(
    origin: str, room_id: str, event_id: str, body: Any, verify: Verifier
) -> JsonDict:
    """PUT /invite/{roomId}/{eventId} (v2): a user of ours is invited by another server.

    Returns:
        ``{"event": ...}``: the invite with our signature added.

    Raises:
        MatrixError: 400 M_INCOMPATIBLE_ROOM_VERSION; 400 M_INVALID_PARAM for an event that
            is not an invite from ``origin`` to a user of ours; 403 M_FORBIDDEN.
    """
    if not isinstance(body, dict) or not isinstance(body.get("event"), dict):
        raise InvalidParam("No invite event")
    version = body.get("room_version", "1")
    if not isinstance(version, str) or version not in IMPLEMENTED_ROOM_VERSIONS:
        raise MatrixError(
            400,
            Codes.INCOMPATIBLE_ROOM_VERSION,
            "This server does not support the room's version",
            extra={"room_version": version},
        )
    rv = get_room_version(version)
    pdu = {k: v for k, v in body["event"].items() if k != "unsigned"}
    try:
        check_pdu_format(pdu, rv)
        if compute_event_id(pdu, rv) != event_id:
            raise InvalidParam("The event ID does not match the event")
        verify(pdu, rv)
    except (InvalidEvent, InvalidSignature) as exc:
        raise InvalidParam(f"Not a valid invite: {exc}") from exc
    invitee = pdu.get("state_key")
    if (
        pdu.get("type") != EventTypes.MEMBER
        or membership_of(pdu) != Membership.INVITE
        or pdu.get("room_id") != room_id
        or server_name_of(pdu.get("sender", "")) != origin
        or not isinstance(invitee, str)
        or server_name_of(invitee) != settings.MATRIXHS_SERVER_NAME
    ):
        raise InvalidParam("Not an invite from your server to a user of ours")
    if not check_content_hash(pdu, rv):
        raise InvalidParam("The invite's content hash is wrong")
    if not User.objects.filter(user_id=invitee, is_active=True).exists():
        raise NotFound("Unknown user")
    signed = sign_event(pdu, settings.MATRIXHS_SERVER_NAME, _our_signing_key(), rv)
    stripped = _stripped(body.get("invite_room_state"))
    room = Room.objects.filter(room_id=room_id).first()
    in_room = (
        room is not None
        and RoomMembership.objects.filter(
            room=room,
            membership=Membership.JOIN,
            user_id__endswith=f":{settings.MATRIXHS_SERVER_NAME}",
        ).exists()
    )
    if not in_room:
        create = next((e for e in stripped if e.get("type") == EventTypes.CREATE), None)
        room_events.remember_remote_room(room_id, rv, create)
        room_events.persist_out_of_band_membership(room_id, event_id, signed, stripped)
    # In a room we are in, the invite also reaches us as a PDU of the room.
    return {"event": signed}


def _stripped(value: Any) -> list[JsonDict]:
    if not isinstance(value, list):
        return []
    kept = []
    for entry in value[:50]:
        if (
            isinstance(entry, dict)
            and isinstance(entry.get("type"), str)
            and isinstance(entry.get("state_key"), str)
            and isinstance(entry.get("content"), dict)
        ):
            kept.append(
                {k: entry[k] for k in ("type", "state_key", "sender", "content") if k in entry}
            )
    return kept


# --- leaving a room we are not in (rejecting an invite, withdrawing a knock) ----------------


def leave_remote_room(
    user: User, room_id: str, servers: Iterable[str], content: JsonDict, remote: MembershipRemote
) -> Event | None:
    """Reject an invite to (or withdraw a knock on) a room we are not in, through the
    servers that know it; when none answers, the invite is rejected here only.

    Returns:
        Our leave event, when a server took it; None for a rejection made here only.
    """
    for server in dict.fromkeys(s for s in servers if s != settings.MATRIXHS_SERVER_NAME):
        try:
            answer = remote.make_membership(server, room_id, user.user_id, Membership.LEAVE, [])
            rv = get_room_version(str(answer.get("room_version") or _room_version(room_id)))
            event_id, pdu = _sign_template(answer.get("event"), rv, user.user_id, "leave", content)
            remote.send_membership(server, room_id, event_id, pdu, Membership.LEAVE)
        except Exception as exc:
            logger.info("Leaving %s through %s failed: %s", room_id, server, exc)
            continue
        room_events.persist_out_of_band_membership(room_id, event_id, pdu, None)
        return Event.objects.get(event_id=event_id)
    room_events.reject_locally(room_id, user.user_id)
    return None


def _room_version(room_id: str) -> str:
    room = Room.objects.filter(room_id=room_id).first()
    return room.room_version if room is not None else "1"


def invite_servers(room_id: str, user_id: str) -> list[str]:
    """The servers to reject an invite through: the inviter's, and those the stripped
    state names."""
    membership = RoomMembership.objects.filter(room__room_id=room_id, user_id=user_id).first()
    if membership is None:
        return []
    servers = [server_name_of(membership.sender)]
    for entry in membership.stripped_state or []:
        sender = entry.get("sender")
        if isinstance(sender, str):
            servers.append(server_name_of(sender))
    return list(dict.fromkeys(servers))
