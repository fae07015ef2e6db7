"""Request bodies of the rooms endpoints."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from matrixhs.http import (
    JsonObjectField,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
    StringListField,
)


class StateEventField(serializers.Field):
    """An initial_state entry: {type, state_key?, content}."""

    default_error_messages = {"invalid": "Each initial_state entry needs type and content."}

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("type"), str)
            or not isinstance(data.get("content"), dict)
            or not isinstance(data.get("state_key", ""), str)
        ):
            self.fail("invalid")
        return {
            "type": data["type"],
            "state_key": data.get("state_key", ""),
            "content": data["content"],
        }

    def to_representation(self, value: Any) -> Any:
        return value


class CreateRoomBody(serializers.Serializer):
    visibility = serializers.ChoiceField(choices=["public", "private"], required=False)
    room_alias_name = StrictCharField(required=False, trim_whitespace=False)
    name = StrictCharField(required=False, allow_blank=True, trim_whitespace=False)
    topic = StrictCharField(required=False, allow_blank=True, trim_whitespace=False)
    invite = StringListField(required=False)
    invite_3pid = serializers.ListField(child=JsonObjectField(), required=False)
    room_version = StrictCharField(required=False)
    creation_content = JsonObjectField(required=False)
    initial_state = serializers.ListField(child=StateEventField(), required=False)
    preset = serializers.ChoiceField(
        choices=["private_chat", "public_chat", "trusted_private_chat"], required=False
    )
    is_direct = StrictBooleanField(required=False)
    power_level_content_override = JsonObjectField(required=False)


class ReasonBody(serializers.Serializer):
    reason = StrictCharField(required=False, allow_blank=True, trim_whitespace=False)


class TargetBody(ReasonBody):
    user_id = StrictCharField()


class InviteBody(TargetBody):
    is_direct = StrictBooleanField(required=False, default=False)


class AliasBody(serializers.Serializer):
    room_id = StrictCharField()


class VisibilityBody(serializers.Serializer):
    visibility = serializers.ChoiceField(choices=["public", "private"])


class ReceiptBody(serializers.Serializer):
    thread_id = StrictCharField(required=False)


class ReadMarkersBody(serializers.Serializer):
    pass


class TypingBody(serializers.Serializer):
    typing = StrictBooleanField()
    timeout = StrictIntegerField(required=False, min_value=0)


class ReportBody(serializers.Serializer):
    reason = StrictCharField(required=False, allow_blank=True, trim_whitespace=False)
    score = StrictIntegerField(required=False, min_value=-100, max_value=0)


class UpgradeRoomBody(serializers.Serializer):
    new_version = StrictCharField()


class PublicRoomsBody(serializers.Serializer):
    limit = StrictIntegerField(required=False, min_value=0)
    since = StrictCharField(required=False)
    filter = JsonObjectField(required=False)
    include_all_networks = StrictBooleanField(required=False)
    third_party_instance_id = StrictCharField(required=False)


class UserDirectorySearchBody(serializers.Serializer):
    search_term = StrictCharField(allow_blank=True, trim_whitespace=False)
    limit = StrictIntegerField(required=False, min_value=0)


class SearchEventContextBody(serializers.Serializer):
    before_limit = StrictIntegerField(required=False, min_value=0)
    after_limit = StrictIntegerField(required=False, min_value=0)
    include_profile = StrictBooleanField(required=False)


class SearchGroupBody(serializers.Serializer):
    key = serializers.ChoiceField(choices=["room_id", "sender"])


class SearchGroupingsBody(serializers.Serializer):
    group_by = serializers.ListField(child=SearchGroupBody(), required=False)


class RoomEventsCriteriaBody(serializers.Serializer):
    search_term = StrictCharField(allow_blank=True, trim_whitespace=False)
    keys = serializers.ListField(
        child=serializers.ChoiceField(choices=["content.body", "content.name", "content.topic"]),
        required=False,
    )
    filter = JsonObjectField(required=False)
    order_by = serializers.ChoiceField(choices=["recent", "rank"], required=False)
    event_context = SearchEventContextBody(required=False)
    include_state = StrictBooleanField(required=False)
    groupings = SearchGroupingsBody(required=False)


class SearchCategoriesBody(serializers.Serializer):
    room_events = RoomEventsCriteriaBody(required=False)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - {"room_events"})
            if unknown:
                raise serializers.ValidationError(f"Unknown search category {unknown[0]!r}")
        return super().to_internal_value(data)


class SearchBody(serializers.Serializer):
    search_categories = SearchCategoriesBody()
