"""Federation destinations: /_synapse/admin/v1/federation/destinations[/{destination}],
from the outbound sender's per-destination retry state."""

from __future__ import annotations

from django.db import transaction
from rest_framework.request import Request
from rest_framework.response import Response

from federation.actions.sending import do_reset_backoff
from federation.models import Destination
from matrixhs.errors import InvalidParam, JsonDict, NotFound
from serveradmin.views.base import AdminView, page_params, paged

DESTINATION_ORDER = {
    "destination": "server_name",
    "retry_last_ts": "retry_at_ms",
    "retry_interval": "retry_interval_ms",
    "failure_ts": "retry_at_ms",
    "last_successful_stream_ordering": "last_success_ms",
}


def format_destination(row: Destination) -> JsonDict:
    """Synapse's fields, from what the sender keeps: the last failed attempt was one
    interval before the next retry. ``last_successful_stream_ordering`` is not kept
    here; ``last_success_ts``, ``failures`` and ``last_error`` are this server's own."""
    failing = row.failures > 0
    last_try = row.retry_at_ms - row.retry_interval_ms if failing else 0
    return {
        "destination": row.server_name,
        "retry_last_ts": last_try,
        "retry_interval": row.retry_interval_ms,
        "failure_ts": last_try if failing else None,
        "last_successful_stream_ordering": None,
        "last_success_ts": row.last_success_ms,
        "failures": row.failures,
        "last_error": row.last_error or None,
    }


def _destination_or_404(destination: str) -> Destination:
    row = Destination.objects.filter(server_name=destination).first()
    if row is None:
        raise NotFound("Unknown destination")
    return row


class DestinationsView(AdminView):
    def get(self, request: Request) -> Response:
        start, limit, backwards = page_params(request)
        column = DESTINATION_ORDER.get(request.query_params.get("order_by", "destination"))
        if column is None:
            raise InvalidParam("Unknown order_by")
        rows = Destination.objects.all()
        if request.query_params.get("destination"):
            rows = rows.filter(server_name__icontains=request.query_params["destination"])
        total = rows.count()
        rows = rows.order_by(f"-{column}" if backwards else column, "server_name")
        page = [format_destination(row) for row in rows[start : start + limit]]
        return Response(paged("destinations", page, start, limit, total))


class DestinationView(AdminView):
    def get(self, request: Request, destination: str) -> Response:
        return Response(format_destination(_destination_or_404(destination)))


class ResetConnectionView(AdminView):
    def post(self, request: Request, destination: str) -> Response:
        _destination_or_404(destination)
        with transaction.atomic():
            do_reset_backoff(destination)
            self.audit(request, "destination.reset_connection", destination)
        return Response({})
