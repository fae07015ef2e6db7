"""Sliding sync connections: what each ``pos`` of a connection has sent (MSC4186
"Connections"). A request names the ``pos`` it continues from; its answer is stored as a
new position, so a retried request (same ``pos``) is answered again from the same
place. Positions older than the one a request uses are deleted: the client has moved on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from django.db import transaction

from accounts.models import User
from matrixhs.errors import Codes, MatrixError
from matrixhs.time import now_ms
from matrixhs.tokens import SyncToken, parse_position
from sync.models import SlidingSyncConnection, SlidingSyncPosition

#: Positions kept per connection (the newest ones).
KEPT_POSITIONS = 4


@dataclass(frozen=True)
class RoomSent:
    """A room as last sent on the connection: events up to ``position``, with that config."""

    position: int
    limit: int
    config: str


@dataclass(frozen=True)
class ConnectionState:
    token: SyncToken
    rooms: dict[str, RoomSent]


def _unknown_pos() -> MatrixError:
    return MatrixError(400, Codes.UNKNOWN_POS, "Unknown pos: start a new sync connection")


def parse_pos(pos: str) -> tuple[int, int]:
    """``<sync token>~<connection>.<number>`` -> (connection, number)."""
    _, sep, ref = pos.rpartition("~")
    connection, dot, number = ref.partition(".")
    connection_id, position = parse_position(connection), parse_position(number)
    if not sep or not dot or connection_id is None or position is None:
        raise _unknown_pos()
    return connection_id, position


def load_connection(
    user: User, device_id: str, conn_id: str, pos: str | None
) -> ConnectionState | None:
    """The state a request continues from (None: a new connection).

    Raises:
        MatrixError: 400 M_UNKNOWN_POS for a position this connection does not have.
    """
    if pos is None:
        return None
    connection_pk, number = parse_pos(pos)
    row = SlidingSyncPosition.objects.filter(
        connection_id=connection_pk,
        number=number,
        connection__user=user,
        connection__device_id=device_id,
        connection__conn_id=conn_id,
    ).first()
    if row is None:
        raise _unknown_pos()
    rooms = {room_id: RoomSent(*sent) for room_id, sent in row.rooms.items()}
    return ConnectionState(SyncToken.parse(row.token), rooms)


def save_connection(
    user: User, device_id: str, conn_id: str, previous_pos: str | None, state: ConnectionState
) -> str:
    """Store ``state`` as the connection's next position; returns the new ``pos``."""
    with transaction.atomic():
        connection, created = SlidingSyncConnection.objects.select_for_update().get_or_create(
            user=user, device_id=device_id, conn_id=conn_id, defaults={"created_ts": now_ms()}
        )
        if previous_pos is None and not created:
            connection.positions.all().delete()  # a fresh start of the same conn_id
        number = connection.next_number
        connection.next_number = number + 1
        connection.save(update_fields=["next_number"])
        SlidingSyncPosition.objects.create(
            connection=connection,
            number=number,
            token=state.token.encode(),
            rooms={room_id: list(asdict(sent).values()) for room_id, sent in state.rooms.items()},
            created_ts=now_ms(),
        )
        if previous_pos is not None:
            _, used = parse_pos(previous_pos)
            connection.positions.filter(number__lt=used).delete()
        stale = connection.positions.order_by("-number").values_list("number", flat=True)[
            KEPT_POSITIONS:
        ]
        if stale:
            connection.positions.filter(number__lte=max(stale)).delete()
    return f"{state.token.encode()}~{connection.pk}.{number}"
