"""Request bodies of the admin API (shapes only; the actions check values)."""

from __future__ import annotations

from rest_framework import serializers

from matrixhs.http import (
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
    StringListField,
)


class UserBody(serializers.Serializer):
    """PUT /_synapse/admin/v2/users/{userId}: every field optional."""

    password = StrictCharField(required=False, allow_blank=True, trim_whitespace=False)
    logout_devices = StrictBooleanField(required=False, default=True)
    displayname = StrictCharField(required=False, allow_null=True, allow_blank=True)
    avatar_url = StrictCharField(required=False, allow_null=True, allow_blank=True)
    admin = StrictBooleanField(required=False)
    deactivated = StrictBooleanField(required=False)
    locked = StrictBooleanField(required=False)
    threepids = serializers.ListField(required=False)
    external_ids = serializers.ListField(required=False)
    user_type = StrictCharField(required=False, allow_null=True)


class DeactivateBody(serializers.Serializer):
    erase = StrictBooleanField(required=False, default=False)


class ResetPasswordBody(serializers.Serializer):
    new_password = StrictCharField(trim_whitespace=False, allow_blank=True)
    logout_devices = StrictBooleanField(required=False, default=True)


class AdminFlagBody(serializers.Serializer):
    admin = StrictBooleanField()


class SuspendBody(serializers.Serializer):
    suspend = StrictBooleanField()


class LockedBody(serializers.Serializer):
    locked = StrictBooleanField()


class SuspendedBody(serializers.Serializer):
    suspended = StrictBooleanField()


class DeviceBody(serializers.Serializer):
    display_name = StrictCharField(required=False, allow_null=True, allow_blank=True)


class DeleteDevicesBody(serializers.Serializer):
    devices = StringListField()


class BlockBody(serializers.Serializer):
    block = StrictBooleanField()


class DeleteRoomBody(serializers.Serializer):
    new_room_user_id = StrictCharField(required=False, allow_null=True)
    room_name = StrictCharField(required=False, allow_null=True, allow_blank=True)
    message = StrictCharField(required=False, allow_null=True, allow_blank=True)
    block = StrictBooleanField(required=False, default=False)
    purge = StrictBooleanField(required=False, default=True)
    force_purge = StrictBooleanField(required=False, default=False)


class NewRegistrationTokenBody(serializers.Serializer):
    token = StrictCharField(required=False, allow_blank=False)
    uses_allowed = StrictIntegerField(required=False, allow_null=True)
    expiry_time = StrictIntegerField(required=False, allow_null=True)
    length = StrictIntegerField(required=False, min_value=1, max_value=64)


class UpdateRegistrationTokenBody(serializers.Serializer):
    uses_allowed = StrictIntegerField(required=False, allow_null=True)
    expiry_time = StrictIntegerField(required=False, allow_null=True)
