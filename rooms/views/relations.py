"""GET /relations and GET /threads (client API v1)."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from matrixhs.errors import InvalidParam, JsonDict
from matrixhs.http import MatrixView, query_bool, query_int
from matrixhs.tokens import parse_position
from rooms.queries.access import access_event, access_room
from rooms.queries.format import format_events
from rooms.queries.relations import MAX_RECURSION_DEPTH, related_event_ids, thread_roots
from rooms.queries.timeline import parse_token, position_of, timeline_events
from rooms.queries.visibility import filter_visible, from_ignored, with_ignored
from rooms.views import event_id_param, room_id_param, viewer_of


class RelationsView(MatrixView):
    allow_guests = True

    def get(
        self,
        request: Request,
        room_id: str,
        event_id: str,
        rel_type: str | None = None,
        event_type: str | None = None,
    ) -> Response:
        access = access_room(request.requester.user_id, room_id_param(room_id))
        parent = access_event(access, request.requester.user_id, event_id_param(event_id))
        recurse = query_bool(request, "recurse", False)
        direction = request.query_params.get("dir", "b")
        if direction not in ("b", "f"):
            raise InvalidParam("dir must be b or f")
        limit = min(query_int(request, "limit", 50, minimum=1), 1000)
        viewer = with_ignored(viewer_of(request))
        events = timeline_events(access)
        ids = related_event_ids(parent, rel_type, event_type, recurse)
        query = events.filter(event_id__in=ids)
        if viewer.ignored:  # what ignored users sent is not served (spec "Ignoring Users")
            query = query.exclude(from_ignored(viewer.ignored))
        order = ("depth", "stream_ordering") if direction == "f" else ("-depth", "-stream_ordering")
        if request.query_params.get("from"):
            start = parse_token(events, request.query_params["from"])
            query = query.filter(
                **(
                    {"stream_ordering__gt": start.stream}
                    if direction == "f"
                    else {"stream_ordering__lte": start.stream}
                )
            )
        if request.query_params.get("to"):
            end = parse_token(events, request.query_params["to"])
            query = query.filter(
                **(
                    {"stream_ordering__lte": end.stream}
                    if direction == "f"
                    else {"stream_ordering__gt": end.stream}
                )
            )
        rows = list(query.order_by(*order)[:limit])
        visible = filter_visible(request.requester.user_id, rows, access.is_joined)
        body: JsonDict = {"chunk": format_events(visible, viewer)}
        if len(rows) == limit:
            last = position_of(rows[-1])
            body["next_batch"] = (last if direction == "f" else last.before()).token()
        if recurse:
            body["recursion_depth"] = MAX_RECURSION_DEPTH
        return Response(body)


class ThreadsView(MatrixView):
    def get(self, request: Request, room_id: str) -> Response:
        access = access_room(request.requester.user_id, room_id_param(room_id))
        include = request.query_params.get("include", "all")
        if include not in ("all", "participated"):
            raise InvalidParam("include must be all or participated")
        limit = min(query_int(request, "limit", 50, minimum=1), 1000)
        viewer = with_ignored(viewer_of(request))
        roots = thread_roots(
            access, viewer.user_id, include == "participated", viewer.ignored or frozenset()
        )
        since = request.query_params.get("from")
        if since:
            latest = parse_position(since[2:]) if since.startswith("th") else None
            if latest is None:
                raise InvalidParam("Invalid from token")
            roots = roots.filter(latest__lt=latest)
        page = list(roots[:limit])
        by_id = {
            e.event_id: e
            for e in timeline_events(access).filter(event_id__in=[r["relates_to"] for r in page])
        }
        ordered = [by_id[r["relates_to"]] for r in page if r["relates_to"] in by_id]
        visible = filter_visible(request.requester.user_id, ordered, access.is_joined)
        # A root whose replies the reader may not see (history visibility) is no thread
        # to them: its bundle, which holds only what they may see, tells.
        chunk = [
            e
            for e in format_events(visible, viewer)
            if "m.thread" in e["unsigned"].get("m.relations", {})
        ]
        body: JsonDict = {"chunk": chunk}
        if len(page) == limit:
            body["next_batch"] = f"th{page[-1]['latest']}"
        return Response(body)
