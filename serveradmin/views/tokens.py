"""Registration tokens: /_synapse/admin/v1/registration_tokens (Synapse's shapes; the
same tokens as the Django admin and `manage.py create_registration_token`)."""

from __future__ import annotations

import secrets
import string

from django.db import transaction
from django.db.models import F, Q
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.actions.registration_tokens import (
    do_create_registration_token,
    do_delete_registration_token,
    do_update_registration_token,
)
from accounts.models import RegistrationToken
from matrixhs.errors import JsonDict, NotFound
from matrixhs.http import parse_body, query_bool
from matrixhs.time import now_ms
from serveradmin.schemas import NewRegistrationTokenBody, UpdateRegistrationTokenBody
from serveradmin.views.base import AdminView

TOKEN_ALPHABET = string.ascii_letters + string.digits + "._~-"


def format_token(token: RegistrationToken) -> JsonDict:
    return {
        "token": token.token,
        "uses_allowed": token.uses_allowed,
        "pending": token.pending,
        "completed": token.completed,
        "expiry_time": token.expiry_ts,
    }


def _token_or_404(token: str) -> RegistrationToken:
    row = RegistrationToken.objects.filter(token=token).first()
    if row is None:
        raise NotFound(f"No such registration token: {token}")
    return row


class RegistrationTokensView(AdminView):
    """GET /_synapse/admin/v1/registration_tokens[?valid=true|false]."""

    def get(self, request: Request) -> Response:
        tokens = RegistrationToken.objects.order_by("created_ts", "pk")
        if "valid" in request.query_params:
            valid = Q(uses_allowed__isnull=True) | Q(uses_allowed__gt=F("pending") + F("completed"))
            valid &= Q(expiry_ts__isnull=True) | Q(expiry_ts__gt=now_ms())
            tokens = tokens.filter(valid if query_bool(request, "valid") else ~valid)
        return Response({"registration_tokens": [format_token(t) for t in tokens]})


class NewRegistrationTokenView(AdminView):
    """POST /_synapse/admin/v1/registration_tokens/new."""

    def post(self, request: Request) -> Response:
        body = parse_body(NewRegistrationTokenBody, request, allow_empty=True)
        token = body.get("token")
        if token is None:  # ``length`` only counts without a token (as in Synapse)
            length = body.get("length", 16)
            token = "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(length))
        with transaction.atomic():
            created = do_create_registration_token(
                token, body.get("uses_allowed"), body.get("expiry_time")
            )
            self.audit(request, "registration_token.create", created.token)
        return Response(format_token(created))


class RegistrationTokenView(AdminView):
    """GET, PUT and DELETE /_synapse/admin/v1/registration_tokens/{token}."""

    def get(self, request: Request, token: str) -> Response:
        return Response(format_token(_token_or_404(token)))

    def put(self, request: Request, token: str) -> Response:
        body = parse_body(UpdateRegistrationTokenBody, request)
        changes: dict[str, int | None] = {}
        if "uses_allowed" in body:
            changes["uses_allowed"] = body["uses_allowed"]
        if "expiry_time" in body:
            changes["expiry_ts"] = body["expiry_time"]
        with transaction.atomic():
            row = do_update_registration_token(_token_or_404(token), changes)
            self.audit(request, "registration_token.modify", token, **changes)
        return Response(format_token(row))

    def delete(self, request: Request, token: str) -> Response:
        with transaction.atomic():
            if not do_delete_registration_token(token):
                raise NotFound(f"No such registration token: {token}")
            self.audit(request, "registration_token.delete", token)
        return Response({})
