"""Request bodies of the push endpoints, checked with strict plain serializers.

A rule's own body (PUT /pushrules/global/{kind}/{ruleId}) depends on its kind and is
checked by push.actions.rules.check_rule.
"""

from __future__ import annotations

from rest_framework import serializers

from matrixhs.http import JsonObjectField, StrictBooleanField, StrictCharField


class PushRuleEnabledBody(serializers.Serializer):
    enabled = StrictBooleanField()


class PushRuleActionsBody(serializers.Serializer):
    #: Checked by push.actions.rules.check_actions.
    actions = serializers.JSONField()


class PusherSetBody(serializers.Serializer):
    pushkey = StrictCharField(trim_whitespace=False)
    kind = StrictCharField(allow_null=True, trim_whitespace=False)
    app_id = StrictCharField(trim_whitespace=False)
    app_display_name = StrictCharField(required=False, allow_blank=True, trim_whitespace=False)
    device_display_name = StrictCharField(required=False, allow_blank=True, trim_whitespace=False)
    profile_tag = StrictCharField(
        required=False, allow_blank=True, allow_null=True, trim_whitespace=False
    )
    lang = StrictCharField(required=False, allow_blank=True, trim_whitespace=False)
    data = JsonObjectField(required=False)
    append = StrictBooleanField(required=False, default=False)
