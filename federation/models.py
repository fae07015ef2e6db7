"""Federation: what other servers are owed (the outbound queue) and how they are doing.

The queue is the record (DESIGN "Redis and Celery are accelerators"): an event for a
remote server is written here in the event's own transaction, and removed only once
that server acknowledged the transaction that carried it.
"""

from __future__ import annotations

from django.db import models

from matrixhs.time import now_ms


class Destination(models.Model):
    """A remote server we send to, with its retry state."""

    server_name = models.CharField(max_length=255, unique=True)
    #: No attempt before this time (ms); 0: try now.
    retry_at_ms = models.BigIntegerField(default=0)
    #: The current backoff interval (ms); 0 when the server is healthy.
    retry_interval_ms = models.BigIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    last_success_ms = models.BigIntegerField(null=True)
    last_error = models.TextField(blank=True, default="")
    #: A sender holds the destination until this time (one transaction in flight).
    lease_until_ms = models.BigIntegerField(default=0)
    #: Transaction IDs count up per destination, from the clock (ms) when the row is
    #: made: a destination caches the (origin, ID) pairs it answered, so IDs counted from
    #: 1 again after the database was reset would be acknowledged unread.
    next_txn_id = models.BigIntegerField(default=now_ms)

    def __str__(self) -> str:
        return self.server_name


class OutboundPdu(models.Model):
    """An event owed to a destination, in the order it was queued."""

    destination = models.CharField(max_length=255)
    room_id = models.CharField(max_length=255)
    event_id = models.CharField(max_length=255)
    created_ms = models.BigIntegerField()
    #: The transaction carrying it, once one was started: a resend after a crash reuses
    #: the transaction ID, so the destination answers it from its cache.
    txn_id = models.BigIntegerField(null=True)

    class Meta:
        indexes = [models.Index(fields=["destination", "id"], name="outbound_pdu_queue")]
        constraints = [
            models.UniqueConstraint(fields=["destination", "event_id"], name="outbound_pdu_once")
        ]


class OutboundEdu(models.Model):
    """An EDU owed to a destination (typing, receipts, to-device messages...), sent with
    the PDUs of the next transactions, in the order it was queued. One that carries only
    a passing state (typing) expires: past ``expires_ms`` it is dropped unsent."""

    destination = models.CharField(max_length=255)
    edu_type = models.CharField(max_length=255)
    content = models.JSONField()
    created_ms = models.BigIntegerField()
    #: 0: never expires.
    expires_ms = models.BigIntegerField(default=0)
    #: The transaction carrying it, once one was started (see OutboundPdu.txn_id).
    txn_id = models.BigIntegerField(null=True)

    class Meta:
        indexes = [models.Index(fields=["destination", "id"], name="outbound_edu_queue")]


class InboundTransaction(models.Model):
    """A transaction another server sent us, with our answer: a resend gets the same
    answer and changes nothing (server-server API: transactions are idempotent)."""

    origin = models.CharField(max_length=255)
    txn_id = models.CharField(max_length=255)
    response = models.JSONField()
    received_ms = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["origin", "txn_id"], name="inbound_txn_once")
        ]


class JoinAttempt(models.Model):
    """A user of ours joining a room on other servers: the servers tried, and how it
    ended (an attempt left RUNNING by a crash is marked FAILED by the periodic sweep)."""

    class Status(models.TextChoices):
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    user_id = models.CharField(max_length=255)
    room_id = models.CharField(max_length=255)
    servers = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=Status.choices)
    error = models.TextField(blank=True, default="")
    started_ms = models.BigIntegerField()
    finished_ms = models.BigIntegerField(null=True)

    def finish(self, status: str, error: str) -> None:
        from matrixhs.time import now_ms

        self.status, self.error, self.finished_ms = status, error, now_ms()
        self.save(update_fields=["status", "error", "finished_ms"])


class ServerKey(models.Model):
    """A public signing key of a server, as fetched from it (or from a notary), and our
    own keys of before a rotation (``expired_ts`` set)."""

    server_name = models.CharField(max_length=255)
    key_id = models.CharField(max_length=255)
    #: Unpadded base64 of the Ed25519 public key.
    verify_key = models.CharField(max_length=255)
    #: Signatures made with the key count until this time (ms): the response's
    #: valid_until_ts for a current key, expired_ts for an old one.
    valid_until_ts = models.BigIntegerField()
    #: Set for an old key (old_verify_keys): when it stopped being used.
    expired_ts = models.BigIntegerField(null=True)
    fetched_ms = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["server_name", "key_id"], name="server_key_once")
        ]

    def __str__(self) -> str:
        return f"{self.server_name} {self.key_id}"


class ServerKeysResponse(models.Model):
    """The newest signed key response of a remote server, kept as received so that this
    server, as a notary, can hand it on with its own signature added."""

    server_name = models.CharField(max_length=255, unique=True)
    #: The response in canonical JSON, the origin's signatures included.
    response = models.TextField()
    valid_until_ts = models.BigIntegerField()
    fetched_ms = models.BigIntegerField()

    def __str__(self) -> str:
        return self.server_name
