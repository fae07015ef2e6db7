"""Content reports, for the operators (listed in the Django admin)."""

from __future__ import annotations

from rooms.models import EventReport


def do_report(
    reporter: str, room_id: str, event_id: str, reason: str | None, score: int | None, ts: int
) -> EventReport:
    return EventReport.objects.create(
        room_id=room_id,
        event_id=event_id,
        reporter=reporter,
        reason=reason,
        score=score,
        received_ts=ts,
    )


def do_delete_report(report: EventReport) -> None:
    """An operator dealt with a report and removes it."""
    report.delete()
