"""Request bodies of the sync app's endpoints (filters are checked by matrixhs.filters)."""

from __future__ import annotations

from rest_framework import serializers

from matrixhs.http import StrictCharField


class PresenceBody(serializers.Serializer):
    #: Checked against the presence states by sync.presence.
    presence = StrictCharField(allow_blank=True, trim_whitespace=False)
    status_msg = StrictCharField(
        required=False, allow_blank=True, allow_null=True, trim_whitespace=False
    )
