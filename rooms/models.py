"""Rooms and the event graph.

An event is stored as the PDU exactly as signed (canonical JSON), plus indexed columns.
State at any event is a *state group*: the full state, or a delta over a previous
group, so that state never has to be replayed from history. ``CurrentStateEvent`` and
``RoomMembership`` are derived from the state after the room's latest events. Only
rooms/events.py writes events and state (an architecture test checks it).
"""

from __future__ import annotations

from django.db import models


class Room(models.Model):
    room_id = models.CharField(max_length=255, unique=True)
    room_version = models.CharField(max_length=32)
    creator = models.CharField(max_length=255)
    created_ts = models.BigIntegerField()
    #: Listed in this server's public room directory.
    is_public = models.BooleanField(default=False)
    #: Its join rule is public or its history world-readable: its members are in every
    #: user's directory (rooms/actions/user_directory.py).
    directory_open = models.BooleanField(default=False)
    #: The state after the room's forward extremities, as seen by this server.
    current_state_group = models.ForeignKey(
        "StateGroup", null=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return self.room_id


class StateGroup(models.Model):
    """A state snapshot: ``prev_group``'s state with this group's entries on top (a delta),
    or, with no ``prev_group``, exactly its entries. Deltas are chained at most
    ``MAX_DELTA_CHAIN`` deep (rooms/state.py), so reading a state is a bounded walk."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="+")
    prev_group = models.ForeignKey("self", null=True, on_delete=models.CASCADE, related_name="+")
    #: Number of deltas between this group and its full snapshot.
    chain_length = models.PositiveIntegerField(default=0)


class StateGroupEntry(models.Model):
    group = models.ForeignKey(StateGroup, on_delete=models.CASCADE, related_name="entries")
    type = models.CharField(max_length=255)
    state_key = models.CharField(max_length=255)
    event_id = models.CharField(max_length=255)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["group", "type", "state_key"], name="state_group_entry_unique"
            )
        ]


class Event(models.Model):
    event_id = models.CharField(max_length=255, unique=True)
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=255)
    state_key = models.CharField(max_length=255, null=True)
    sender = models.CharField(max_length=255)
    depth = models.BigIntegerField()
    origin_server_ts = models.BigIntegerField()
    #: Position in the events stream; None for outliers (events outside the timeline).
    stream_ordering = models.BigIntegerField(unique=True, null=True)
    #: The PDU as signed, in canonical JSON.
    json = models.TextField()
    outlier = models.BooleanField(default=False)
    rejected_reason = models.TextField(null=True)
    soft_failed = models.BooleanField(default=False)
    #: The redaction event that redacts this one (served pruned from then on).
    redacted_by = models.CharField(max_length=255, null=True)
    #: m.room.redaction (not state): the event it redacts, which may arrive after it.
    redacts = models.CharField(max_length=255, null=True, db_index=True)
    #: m.room.member: the membership; other events: None.
    membership = models.CharField(max_length=16, null=True)
    #: For state events: the event this one replaced in the state (unsigned.prev_content).
    replaces_state = models.CharField(max_length=255, null=True)
    #: m.relates_to of the content: the related event and the relation type.
    relates_to = models.CharField(max_length=255, null=True)
    rel_type = models.CharField(max_length=255, null=True)
    state_group_before = models.ForeignKey(
        StateGroup, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    state_group = models.ForeignKey(
        StateGroup,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The state after this event.",
    )
    received_ts = models.BigIntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["room", "stream_ordering"], name="event_room_stream"),
            models.Index(fields=["room", "depth", "stream_ordering"], name="event_room_topo"),
            models.Index(fields=["relates_to", "rel_type"], name="event_relation"),
            models.Index(fields=["room", "type", "state_key"], name="event_room_state"),
            models.Index(fields=["room", "origin_server_ts"], name="event_room_ts"),
        ]

    def __str__(self) -> str:
        return self.event_id


class EventEdge(models.Model):
    """``prev_events``: the graph, by ID (a prev event may not be here yet)."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="prev_edges")
    prev_event_id = models.CharField(max_length=255, db_index=True)


class EventAuthEdge(models.Model):
    """``auth_events``, by ID."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="auth_edges")
    auth_event_id = models.CharField(max_length=255, db_index=True)


class TimelineGap(models.Model):
    """A hole in a room's timeline: events before ``event`` that another server sent us
    are not here (its prev events could not all be fetched, and the state before it came
    from that server). /sync never shows events from both sides of it in one timeline:
    one that would starts at the gap and is ``limited``, so that the client paginates
    back across it (spec "Syncing": "limited ... the client should use prev_batch")."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="+")
    event = models.OneToOneField(Event, on_delete=models.CASCADE, related_name="+")
    stream_ordering = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["room", "stream_ordering"], name="gap_room_stream")]


class ForwardExtremity(models.Model):
    """The room's latest events: the prev_events of the next event sent."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="extremities")
    event_id = models.CharField(max_length=255)
    depth = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "event_id"], name="extremity_unique")
        ]


class CurrentStateEvent(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="current_state")
    type = models.CharField(max_length=255)
    state_key = models.CharField(max_length=255)
    event_id = models.CharField(max_length=255)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["room", "type", "state_key"], name="current_state_unique"
            )
        ]


class RoomMembership(models.Model):
    """Current membership of every user (local or remote) in every room we know."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="memberships")
    user_id = models.CharField(max_length=255)
    membership = models.CharField(max_length=16)
    event_id = models.CharField(max_length=255)
    stream_ordering = models.BigIntegerField(null=True)
    sender = models.CharField(max_length=255)
    displayname = models.TextField(null=True)
    avatar_url = models.TextField(null=True)
    #: POST /forget: the user no longer wants to see this (left) room.
    forgotten = models.BooleanField(default=False)
    #: The stripped state that came with an invite or a knock to a room on another server
    #: (served as invite_state / knock_state, since we hold none of its state).
    stripped_state = models.JSONField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "user_id"], name="membership_unique")
        ]
        indexes = [models.Index(fields=["user_id", "membership"], name="membership_by_user")]


class ClientTransaction(models.Model):
    """Client transaction IDs: the same (device, endpoint, txnId) gives the same result."""

    user_id = models.CharField(max_length=255)
    device_id = models.CharField(max_length=255)
    #: "send/<room ID>/<event type>" or "redact/<room ID>/<event ID>": two values of up to
    #: 255 bytes each, and the prefix.
    endpoint = models.CharField(max_length=520)
    txn_id = models.CharField(max_length=255)
    event_id = models.CharField(max_length=255)
    created_ts = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user_id", "device_id", "endpoint", "txn_id"], name="client_txn_unique"
            )
        ]


class RoomAlias(models.Model):
    alias = models.CharField(max_length=255, unique=True)
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="aliases")
    creator = models.CharField(max_length=255)
    created_ts = models.BigIntegerField()


class Receipt(models.Model):
    """The latest receipt of each (user, type, thread) in a room."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="receipts")
    user_id = models.CharField(max_length=255)
    receipt_type = models.CharField(max_length=64)
    #: "" for an unthreaded receipt, "main" or a thread root event ID otherwise.
    thread_id = models.CharField(max_length=255, default="", blank=True)
    event_id = models.CharField(max_length=255)
    ts = models.BigIntegerField()
    stream_id = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["room", "user_id", "receipt_type", "thread_id"], name="receipt_unique"
            )
        ]
        indexes = [models.Index(fields=["room", "stream_id"], name="receipt_by_stream")]


class EventReport(models.Model):
    room_id = models.CharField(max_length=255)
    event_id = models.CharField(max_length=255, blank=True, default="")
    reporter = models.CharField(max_length=255)
    reason = models.TextField(null=True, blank=True)
    score = models.IntegerField(null=True, blank=True)
    received_ts = models.BigIntegerField()


class EventSearch(models.Model):
    """The search index (POST /search): one row per searchable event of the timeline, with
    the text of its searched key (``content.body`` of m.room.message, ``content.name`` of
    m.room.name, ``content.topic`` of m.room.topic). Encrypted, rejected, soft-failed,
    outlier and redacted events have none. The full-text part is the database's own
    (rooms/search_index.py): on PostgreSQL a generated ``tsvector`` column with a GIN
    index, on SQLite an FTS5 table that triggers keep in step with this one (migration
    0006). Written only by rooms/events.py."""

    event = models.OneToOneField(
        Event, primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="+")
    #: "content.body", "content.name" or "content.topic".
    key = models.CharField(max_length=16)
    value = models.TextField()
    #: The event's stream position (order "recent"; bounds of a room the searcher left).
    stream_ordering = models.BigIntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["room", "stream_ordering"], name="event_search_room_stream")
        ]


class UserDirectoryEntry(models.Model):
    """A user the directory may find: one joined to at least one room we know. Local
    users carry their profile, remote ones the name of their newest room membership."""

    user_id = models.CharField(max_length=255, unique=True)
    display_name = models.TextField(null=True)
    avatar_url = models.TextField(null=True)
    #: The display name and localpart, casefolded, for ranking exact and prefix matches.
    name_key = models.CharField(max_length=255, default="")
    localpart_key = models.CharField(max_length=255, default="")
    #: Joined to a room with ``Room.directory_open``: found by everyone.
    in_open_room = models.BooleanField(default=False)


class UserDirectoryWord(models.Model):
    """The words of an entry's user ID and display name (casefolded), with the entry's
    ``in_open_room`` (so that the users everyone finds are one range of an index). A search
    walks the index on (in_open_room, word, entry) from the term's word on, nearest words
    first, and stops after a page. On PostgreSQL the column is in the "C" collation
    (migration 0006): byte order, so that a prefix is one range of the index, as on
    SQLite."""

    entry = models.ForeignKey(
        UserDirectoryEntry, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    word = models.CharField(max_length=64)
    in_open_room = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["entry", "word"], name="directory_word_unique")
        ]
        indexes = [
            models.Index(fields=["in_open_room", "word", "entry"], name="directory_word_prefix")
        ]


class BlockedRoom(models.Model):
    """A room an operator blocked: local users can neither join it nor be invited to it.
    The room need not be known here yet (a room of other servers can be blocked ahead)."""

    room_id = models.CharField(max_length=255, unique=True)
    blocked_by = models.CharField(max_length=255)
    blocked_ts = models.BigIntegerField()

    def __str__(self) -> str:
        return self.room_id
