"""POST /search (spec "Server Side Search")."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from matrixhs.errors import JsonDict
from matrixhs.http import MatrixView, parse_body
from rooms.queries.search import Criteria, search_room_events
from rooms.schemas import SearchBody
from rooms.views import viewer_of


class SearchView(MatrixView):
    def post(self, request: Request) -> Response:
        body = parse_body(SearchBody, request)
        categories = body["search_categories"]
        results: JsonDict = {}
        if "room_events" in categories:
            criteria = Criteria.from_body(categories["room_events"])
            results["room_events"] = search_room_events(
                request.requester.user_id,
                viewer_of(request),
                criteria,
                request.query_params.get("next_batch"),
            )
        return Response({"search_categories": results})
