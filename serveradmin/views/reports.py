"""Content reports: GET /_synapse/admin/v1/event_reports, GET/DELETE .../{reportId}."""

from __future__ import annotations

import re

from django.db import transaction
from rest_framework.request import Request
from rest_framework.response import Response

from matrixhs.errors import InvalidParam, NotFound
from rooms.actions.reports import do_delete_report
from rooms.models import Event, EventReport
from serveradmin.queries.reports import format_reports
from serveradmin.views.base import AdminView, page_params, paged


def _report_or_404(report_id: str) -> EventReport:
    """Raises: InvalidParam: not a number; NotFound: no such report."""
    if not re.fullmatch(r"[0-9]{1,18}", report_id):
        raise InvalidParam("The report ID must be an integer")
    report = EventReport.objects.filter(pk=int(report_id)).first()
    if report is None:
        raise NotFound("Event report not found")
    return report


class EventReportsView(AdminView):
    def get(self, request: Request) -> Response:
        start, limit, _ = page_params(request)
        backwards = request.query_params.get("dir", "b") == "b"  # newest first by default
        reports = EventReport.objects.all()
        if request.query_params.get("user_id"):
            reports = reports.filter(reporter__icontains=request.query_params["user_id"])
        if request.query_params.get("room_id"):
            reports = reports.filter(room_id__icontains=request.query_params["room_id"])
        if request.query_params.get("event_sender_user_id"):
            senders = Event.objects.filter(
                sender__icontains=request.query_params["event_sender_user_id"]
            ).values("event_id")
            reports = reports.filter(event_id__in=senders)
        total = reports.count()
        order = ("-received_ts", "-pk") if backwards else ("received_ts", "pk")
        page = format_reports(list(reports.order_by(*order)[start : start + limit]))
        body = paged("event_reports", page, start, limit, total)
        if "next_token" in body:
            body["next_token"] = int(body["next_token"])
        return Response(body)


class EventReportView(AdminView):
    def get(self, request: Request, report_id: str) -> Response:
        return Response(format_reports([_report_or_404(report_id)], with_event=True)[0])

    def delete(self, request: Request, report_id: str) -> Response:
        report = _report_or_404(report_id)
        with transaction.atomic():
            do_delete_report(report)
            self.audit(request, "event_report.delete", str(report_id), room_id=report.room_id)
        return Response({})
