"""The operators' Django admin for accounts. Every change goes through accounts.actions."""

from __future__ import annotations

import secrets
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.actions.devices import do_delete_devices
from accounts.actions.registration_tokens import (
    do_create_registration_token,
    do_revoke_registration_token,
)
from accounts.actions.users import (
    do_deactivate_user,
    do_reset_password,
    do_set_admin,
    do_set_locked,
    do_set_suspended,
)
from accounts.models import Device, RegistrationToken, User


class DeviceInline(admin.TabularInline):
    model = Device
    extra = 0
    can_delete = False
    fields = ("device_id", "display_name", "last_seen_ts", "last_seen_ip", "last_seen_user_agent")
    readonly_fields = fields
    show_change_link = True


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = (
        "user_id",
        "displayname",
        "is_active",
        "is_admin",
        "is_guest",
        "locked",
        "suspended",
        "created_ts",
    )
    list_filter = ("is_active", "is_admin", "is_guest", "locked", "suspended")
    search_fields = ("user_id", "localpart", "displayname")
    ordering = ("localpart",)
    fields = (
        "user_id",
        "displayname",
        "avatar_url",
        "is_active",
        "is_admin",
        "is_guest",
        "locked",
        "suspended",
        "erased",
        "created_ts",
    )
    readonly_fields = fields
    inlines = [DeviceInline]
    actions = [
        "deactivate",
        "make_admin",
        "revoke_admin",
        "reset_password",
        "lock",
        "unlock",
        "suspend",
        "unsuspend",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # users are created by registration or `manage.py register_user`

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deactivate instead: a user ID is never reused

    @admin.action(description="Deactivate the selected users (log out everywhere, for good)")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        users = list(queryset.filter(is_active=True))
        for user in users:
            do_deactivate_user(user)
        self.message_user(request, f"Deactivated {len(users)} user(s).")

    @admin.action(description="Make the selected users server admins")
    def make_admin(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset:
            do_set_admin(user, True)

    @admin.action(description="Revoke server admin from the selected users")
    def revoke_admin(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset:
            do_set_admin(user, False)

    @admin.action(description="Lock the selected users (every request refused until unlocked)")
    def lock(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset:
            do_set_locked(user, True)

    @admin.action(description="Unlock the selected users")
    def unlock(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset:
            do_set_locked(user, False)

    @admin.action(description="Suspend the selected users (read-only until reinstated)")
    def suspend(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset:
            do_set_suspended(user, True)

    @admin.action(description="Reinstate the selected suspended users")
    def unsuspend(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset:
            do_set_suspended(user, False)

    @admin.action(description="Reset password (random, shown once; logs out all sessions)")
    def reset_password(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset.filter(is_active=True):
            password = secrets.token_urlsafe(12)
            do_reset_password(user, password)
            self.message_user(
                request, f"New password for {user.user_id}: {password}", messages.WARNING
            )


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ("device_id", "user", "display_name", "last_seen_ts", "last_seen_ip")
    search_fields = ("device_id", "user__user_id", "display_name")
    readonly_fields = (
        "user",
        "device_id",
        "display_name",
        "created_ts",
        "last_seen_ts",
        "last_seen_ip",
        "last_seen_user_agent",
    )
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the "revoke" action ends sessions through accounts.actions

    @admin.action(description="Revoke: delete the devices and log out their sessions")
    def revoke(self, request: HttpRequest, queryset: QuerySet[Device]) -> None:
        count = 0
        for device in queryset.select_related("user"):
            count += do_delete_devices(device.user, [device.device_id])
        self.message_user(request, f"Revoked {count} device(s).")


class RegistrationTokenForm(forms.ModelForm):
    token = forms.CharField(
        required=False, max_length=64, help_text="Leave empty to generate a random token."
    )

    class Meta:
        model = RegistrationToken
        fields = ("token", "uses_allowed", "expiry_ts")


@admin.register(RegistrationToken)
class RegistrationTokenAdmin(admin.ModelAdmin):
    form = RegistrationTokenForm
    list_display = ("token", "uses_allowed", "pending", "completed", "expiry_ts", "created_ts")
    search_fields = ("token",)
    actions = ["revoke"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        return ("token", "uses_allowed", "pending", "completed", "expiry_ts", "created_ts")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: RegistrationToken, form: Any, change: bool
    ) -> None:
        if change:
            return
        created = do_create_registration_token(
            token=form.cleaned_data.get("token") or None,
            uses_allowed=form.cleaned_data.get("uses_allowed"),
            expiry_ts=form.cleaned_data.get("expiry_ts"),
        )
        obj.pk = created.pk
        obj.token = created.token

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[RegistrationToken]) -> None:
        for token in queryset:
            do_revoke_registration_token(token.token)
