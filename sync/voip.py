"""TURN credentials for VoIP (spec GET /voip/turnServer).

With a shared secret, the credentials follow the TURN REST API that coturn's
``use-auth-secret`` checks: the username is ``<expiry in seconds>:<user ID>`` and the
password the standard (padded) base64 of its HMAC-SHA1 under the secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from django.conf import settings

from matrixhs.errors import JsonDict


def turn_credentials(user_id: str, now_ms: int) -> JsonDict:
    """The credentials for ``user_id``, or ``{}`` when no TURN server is configured (what
    Synapse answers; clients then call without TURN)."""
    uris: list[str] = settings.MATRIXHS_TURN_URIS
    secret: str = settings.MATRIXHS_TURN_SHARED_SECRET
    ttl: int = settings.MATRIXHS_TURN_TTL
    if not uris or not secret:
        return {}
    username = f"{now_ms // 1000 + ttl}:{user_id}"
    digest = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return {
        "username": username,
        "password": base64.b64encode(digest).decode("ascii"),
        "uris": list(uris),
        "ttl": ttl,
    }
