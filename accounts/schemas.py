"""Request bodies of the accounts endpoints, checked with strict plain serializers."""

from __future__ import annotations

from rest_framework import serializers

from matrixhs.http import (
    JsonObjectField,
    StrictBooleanField,
    StrictCharField,
    StringListField,
)


class RegisterBody(serializers.Serializer):
    auth = JsonObjectField(required=False, allow_null=True)
    username = StrictCharField(required=False, allow_blank=True, trim_whitespace=False)
    password = StrictCharField(required=False, allow_blank=True, trim_whitespace=False)
    token = StrictCharField(required=False, allow_blank=True, trim_whitespace=False)
    device_id = StrictCharField(required=False, trim_whitespace=False)
    initial_device_display_name = StrictCharField(
        required=False, allow_blank=True, trim_whitespace=False
    )
    inhibit_login = StrictBooleanField(required=False, default=False)
    refresh_token = StrictBooleanField(required=False, default=False)


class SharedSecretRegisterBody(serializers.Serializer):
    nonce = StrictCharField(trim_whitespace=False)
    username = StrictCharField(trim_whitespace=False)
    password = StrictCharField(trim_whitespace=False)
    admin = StrictBooleanField(required=False, default=False)
    user_type = StrictCharField(required=False, allow_null=True, default=None)
    displayname = StrictCharField(required=False, allow_null=True, default=None)
    mac = StrictCharField()


class LoginBody(serializers.Serializer):
    type = StrictCharField()
    identifier = JsonObjectField(required=False)
    user = StrictCharField(required=False, trim_whitespace=False)  # deprecated form
    password = StrictCharField(required=False, allow_blank=True, trim_whitespace=False)
    token = StrictCharField(required=False, allow_blank=True, trim_whitespace=False)
    device_id = StrictCharField(required=False, trim_whitespace=False)
    initial_device_display_name = StrictCharField(
        required=False, allow_blank=True, trim_whitespace=False
    )
    refresh_token = StrictBooleanField(required=False, default=False)


class GetLoginTokenBody(serializers.Serializer):
    auth = JsonObjectField(required=False, allow_null=True)


class RefreshBody(serializers.Serializer):
    refresh_token = StrictCharField(trim_whitespace=False)


class ChangePasswordBody(serializers.Serializer):
    auth = JsonObjectField(required=False, allow_null=True)
    new_password = StrictCharField(allow_blank=True, trim_whitespace=False)
    logout_devices = StrictBooleanField(required=False, default=True)


class DeactivateBody(serializers.Serializer):
    auth = JsonObjectField(required=False, allow_null=True)
    erase = StrictBooleanField(required=False, default=False)
    id_server = StrictCharField(required=False)


class DeviceUpdateBody(serializers.Serializer):
    display_name = StrictCharField(required=False, allow_blank=True, trim_whitespace=False)


class DeviceDeleteBody(serializers.Serializer):
    auth = JsonObjectField(required=False, allow_null=True)


class DeleteDevicesBody(serializers.Serializer):
    auth = JsonObjectField(required=False, allow_null=True)
    devices = StringListField()
