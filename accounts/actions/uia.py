"""User-Interactive Authentication (spec "User-Interactive Authentication API").

An endpoint protected by UIA calls :func:`check_uia` with the request's ``auth`` dict
and the flows it accepts. Until one flow is complete, :class:`AuthRequired` answers 401
with the flows, the session and the stages done; once complete, the endpoint performs
its operation and calls :func:`finish_uia`. Sessions live in the database, so any
process can carry on a session that another started.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q

from accounts.models import RegistrationToken, UIASession, User
from matrixhs.errors import Codes, Forbidden, JsonDict, MatrixError
from matrixhs.time import now_ms

DUMMY = "m.login.dummy"
PASSWORD = "m.login.password"
REGISTRATION_TOKEN = "m.login.registration_token"


class AuthRequired(MatrixError):
    """The 401 of a UIA step: flows, session, completed, and the failure if there was one."""

    def __init__(
        self, flows: list[list[str]], session: UIASession, failure: MatrixError | None = None
    ) -> None:
        super().__init__(401, failure.errcode if failure else "", failure.msg if failure else "")
        self.flows = flows
        self.session = session
        self.failure = failure

    def body(self) -> JsonDict:
        body: JsonDict = {
            "flows": [{"stages": stages} for stages in self.flows],
            "params": {},
            "session": self.session.session_id,
            "completed": list(self.session.completed),
        }
        if self.failure is not None:
            body.update(errcode=self.failure.errcode, error=self.failure.msg)
        return body


def check_uia(
    auth: Any,
    operation: str,
    flows: list[list[str]],
    user: User | None = None,
    content: JsonDict | None = None,
) -> UIASession:
    """Run one UIA step.

    Args:
        auth: the request's ``auth`` value (None when absent).
        operation: ``"METHOD /path"``; a session is bound to one operation.
        flows: the accepted flows, each a list of stage types.
        user: the authenticated user, whose password ``m.login.password`` checks.
        content: the request's parameters (its body but ``auth``), when they say what the
            operation acts on: the session is then bound to them as well, so that a
            session begun for one request cannot authorise another (spec: the server
            must make sure the request is the same throughout a session).

    Returns:
        The session, once a flow is complete.

    Raises:
        AuthRequired: more stages are needed, or the stage just tried failed.
        MatrixError: ``auth`` is malformed or names an unknown or foreign session.
        Forbidden: the password stage names another user than the authenticated one.
    """
    if auth is not None and not isinstance(auth, dict):
        raise MatrixError(400, Codes.BAD_JSON, "auth must be an object")
    if content is not None:
        operation = f"{operation} {_digest(content)}"
    session = _get_or_create_session(auth, operation, user)
    stage = auth.get("type") if auth else None
    if stage is not None:
        if not any(stage in flow for flow in flows):
            raise AuthRequired(
                flows, session, MatrixError(400, Codes.UNRECOGNIZED, "Unknown stage")
            )
        failure = _run_stage(stage, auth or {}, session, user)
        if failure is not None:
            raise AuthRequired(flows, session, failure)
        if stage not in session.completed:
            session.completed = [*session.completed, stage]
            session.save(update_fields=["completed", "registration_token", "user"])
    if any(all(s in session.completed for s in flow) for flow in flows):
        return session
    raise AuthRequired(flows, session)


def _digest(content: JsonDict) -> str:
    """A digest of the request's parameters (JSON with sorted keys; ``auth`` left out)."""
    params = {key: value for key, value in content.items() if key != "auth"}
    encoded = json.dumps(params, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def _get_or_create_session(auth: JsonDict | None, operation: str, user: User | None) -> UIASession:
    session_id = auth.get("session") if auth else None
    if session_id is None:
        return UIASession.objects.create(
            session_id=secrets.token_urlsafe(24),
            operation=operation,
            user=user,
            created_ts=now_ms(),
        )
    expired_before = now_ms() - settings.MATRIXHS_UIA_SESSION_LIFETIME_MS
    session = UIASession.objects.filter(
        session_id=str(session_id), created_ts__gt=expired_before
    ).first()
    if session is None:
        raise MatrixError(400, Codes.UNKNOWN, "Unknown or expired UIA session")
    if session.operation != operation or (user is not None and session.user_id != user.pk):
        raise Forbidden("Requested operation has changed during the authentication session")
    return session


def _run_stage(
    stage: str, auth: JsonDict, session: UIASession, user: User | None
) -> MatrixError | None:
    if stage == DUMMY:
        return None
    if stage == PASSWORD:
        return _check_password_stage(auth, session, user)
    if stage == REGISTRATION_TOKEN:
        return _check_registration_token_stage(auth, session)
    return MatrixError(400, Codes.UNRECOGNIZED, f"Unknown auth stage {stage}")


def _check_password_stage(
    auth: JsonDict, session: UIASession, user: User | None
) -> MatrixError | None:
    """The password of the authenticated user, or, without one, of the user it names.

    An unauthenticated session is bound to the first user whose password it proved. One
    password hash is checked whatever the outcome (see verify_password).

    Raises:
        Forbidden: naming another user than the authenticated one (403, as other
            servers answer it, not a failed stage).
    """
    from accounts.actions.users import local_user_for_login, verify_password

    password = auth.get("password")
    identifier = auth.get("identifier") or {"type": "m.id.user", "user": auth.get("user")}
    if not isinstance(password, str) or not isinstance(identifier, dict):
        return Forbidden("Invalid password")
    named = identifier.get("user")
    if identifier.get("type") != "m.id.user" or not isinstance(named, str):
        return Forbidden("Invalid password")
    target = user or session.user or local_user_for_login(named)
    correct = verify_password(target, password)
    if user is not None and named not in (user.user_id, user.localpart):
        # Not a failed stage to retry: the request is for someone else's account.
        raise Forbidden("The password stage must name the authenticated user")
    if target is None or named not in (target.user_id, target.localpart):
        return Forbidden("Invalid password")
    if not correct or not target.is_active:
        return Forbidden("Invalid password")
    session.user = target
    return None


def _check_registration_token_stage(auth: JsonDict, session: UIASession) -> MatrixError | None:
    token = auth.get("token")
    if not isinstance(token, str):
        return MatrixError(401, Codes.MISSING_PARAM, "Missing registration token")
    if session.registration_token is not None:
        return None if session.registration_token == token else Forbidden("Invalid token")
    if not reserve_registration_token(token):
        return MatrixError(401, Codes.UNAUTHORIZED, "Invalid registration token")
    session.registration_token = token
    return None


def registration_token_usable() -> Q:
    """Tokens that are neither expired nor used up."""
    return (Q(expiry_ts__isnull=True) | Q(expiry_ts__gt=now_ms())) & (
        Q(uses_allowed__isnull=True) | Q(uses_allowed__gt=F("pending") + F("completed"))
    )


def reserve_registration_token(token: str) -> bool:
    """Count one pending registration on ``token`` if it is usable (one atomic UPDATE)."""
    return bool(
        RegistrationToken.objects.filter(registration_token_usable(), token=token).update(
            pending=F("pending") + 1
        )
    )


def finish_uia(session: UIASession) -> None:
    """The operation succeeded: a token stage becomes a completed use, the session ends."""
    with transaction.atomic():
        if session.registration_token is not None:
            RegistrationToken.objects.filter(token=session.registration_token).update(
                pending=F("pending") - 1, completed=F("completed") + 1
            )
        session.delete()


def purge_expired_sessions() -> int:
    """Delete expired sessions, releasing the registration tokens they held."""
    expired_before = now_ms() - settings.MATRIXHS_UIA_SESSION_LIFETIME_MS
    expired = UIASession.objects.filter(created_ts__lte=expired_before)
    count = 0
    for session in expired.exclude(registration_token__isnull=True).iterator():
        with transaction.atomic():
            if UIASession.objects.filter(pk=session.pk).delete()[0]:
                count += 1
                RegistrationToken.objects.filter(
                    token=session.registration_token, pending__gt=0
                ).update(pending=F("pending") - 1)
    return count + expired.delete()[0]
