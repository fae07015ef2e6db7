"""Request bodies of the E2EE endpoints, checked with strict plain serializers.

Only the top level is checked here; the maps keyed by user, device, key, room or session
IDs are checked by the ``check_*`` functions of e2ee.actions and e2ee.queries.
"""

from __future__ import annotations

from rest_framework import serializers

from matrixhs.http import JsonObjectField, StrictCharField, StrictIntegerField

#: Spec: 10 seconds is the recommended default wait for remote servers.
DEFAULT_TIMEOUT_MS = 10_000


class KeysUploadBody(serializers.Serializer):
    device_keys = JsonObjectField(required=False)
    one_time_keys = JsonObjectField(required=False, allow_null=True)
    fallback_keys = JsonObjectField(required=False, allow_null=True)


class KeysQueryBody(serializers.Serializer):
    device_keys = JsonObjectField()
    timeout = StrictIntegerField(required=False, default=DEFAULT_TIMEOUT_MS, min_value=0)


class KeysClaimBody(serializers.Serializer):
    one_time_keys = JsonObjectField()
    timeout = StrictIntegerField(required=False, default=DEFAULT_TIMEOUT_MS, min_value=0)


class DeviceSigningUploadBody(serializers.Serializer):
    master_key = JsonObjectField(required=False, allow_null=True)
    self_signing_key = JsonObjectField(required=False, allow_null=True)
    user_signing_key = JsonObjectField(required=False, allow_null=True)
    auth = JsonObjectField(required=False, allow_null=True)


class SendToDeviceBody(serializers.Serializer):
    messages = JsonObjectField()


class BackupVersionBody(serializers.Serializer):
    algorithm = StrictCharField()
    auth_data = JsonObjectField()


class BackupVersionUpdateBody(serializers.Serializer):
    algorithm = StrictCharField()
    auth_data = JsonObjectField()
    version = StrictCharField(required=False)


class DehydratedDeviceBody(serializers.Serializer):
    device_id = StrictCharField(allow_blank=True, trim_whitespace=False)
    device_data = JsonObjectField()
    initial_device_display_name = StrictCharField(required=False, allow_null=True, allow_blank=True)
    device_keys = JsonObjectField()
    one_time_keys = JsonObjectField(required=False, allow_null=True)
    fallback_keys = JsonObjectField(required=False, allow_null=True)


class DehydratedDeviceEventsBody(serializers.Serializer):
    next_batch = StrictCharField(
        required=False, allow_null=True, allow_blank=True, trim_whitespace=False
    )
