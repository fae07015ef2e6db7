"""Client API views of push: push rules and pushers. Views parse, call push.actions /
push.queries, and answer."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from matrixhs.http import MatrixView, parse_body, parse_json_object, query_int
from push import queries
from push.actions.rules import (
    check_actions,
    check_pusher,
    check_rule,
    do_delete_push_rule,
    do_set_push_rule,
    do_set_push_rule_actions,
    do_set_push_rule_enabled,
    do_set_pusher,
)
from push.schemas import PusherSetBody, PushRuleActionsBody, PushRuleEnabledBody


def _query_param(request: Request, name: str) -> str | None:
    """A query parameter, an empty value counting as absent."""
    return request.query_params.get(name) or None


class PushRulesView(MatrixView):
    """GET /pushrules/ (every ruleset: only "global" exists)."""

    def get(self, request: Request) -> Response:
        return Response(queries.push_rules_content(request.requester.user))


class GlobalPushRulesView(MatrixView):
    def get(self, request: Request) -> Response:
        return Response(queries.push_rules_content(request.requester.user)["global"])


class PushRuleView(MatrixView):
    def get(self, request: Request, kind: str, rule_id: str) -> Response:
        return Response(queries.get_push_rule(request.requester.user, kind, rule_id))

    def put(self, request: Request, kind: str, rule_id: str) -> Response:
        spec = check_rule(kind, rule_id, parse_json_object(request))
        do_set_push_rule(
            request.requester.user,
            spec,
            before=_query_param(request, "before"),
            after=_query_param(request, "after"),
        )
        return Response({})

    def delete(self, request: Request, kind: str, rule_id: str) -> Response:
        do_delete_push_rule(request.requester.user, kind, rule_id)
        return Response({})


class PushRuleEnabledView(MatrixView):
    def get(self, request: Request, kind: str, rule_id: str) -> Response:
        rule = queries.get_push_rule(request.requester.user, kind, rule_id)
        return Response({"enabled": rule["enabled"]})

    def put(self, request: Request, kind: str, rule_id: str) -> Response:
        body = parse_body(PushRuleEnabledBody, request)
        do_set_push_rule_enabled(request.requester.user, kind, rule_id, body["enabled"])
        return Response({})


class PushRuleActionsView(MatrixView):
    def get(self, request: Request, kind: str, rule_id: str) -> Response:
        rule = queries.get_push_rule(request.requester.user, kind, rule_id)
        return Response({"actions": rule["actions"]})

    def put(self, request: Request, kind: str, rule_id: str) -> Response:
        body = parse_body(PushRuleActionsBody, request)
        actions = check_actions(body["actions"])
        do_set_push_rule_actions(request.requester.user, kind, rule_id, actions)
        return Response({})


class PushersView(MatrixView):
    def get(self, request: Request) -> Response:
        return Response({"pushers": queries.list_pushers(request.requester.user)})


class PusherSetView(MatrixView):
    def post(self, request: Request) -> Response:
        spec = check_pusher(parse_body(PusherSetBody, request))
        do_set_pusher(request.requester.user, request.requester.device, spec)
        return Response({})


class NotificationsView(MatrixView):
    """GET /notifications: the events that notified the user, newest first."""

    def get(self, request: Request) -> Response:
        limit = query_int(request, "limit", queries.DEFAULT_NOTIFICATIONS_LIMIT, minimum=1)
        start = queries.parse_notifications_token(_query_param(request, "from"))
        return Response(
            queries.notifications_page(
                request.requester.user_id,
                request.requester.device_id,
                start,
                min(limit, queries.MAX_NOTIFICATIONS_LIMIT),
                _query_param(request, "only") == "highlight",
            )
        )
