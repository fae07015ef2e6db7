"""Accounts: users, devices, tokens, User-Interactive Auth sessions, account data."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models


class UserManager(BaseUserManager["User"]):
    """Django needs a manager here; accounts.actions.do_register_user creates users."""

    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(localpart=username)


class User(AbstractBaseUser):
    """A local Matrix account. Operators with ``is_admin`` may use the Django admin."""

    localpart = models.CharField(max_length=255, unique=True)
    user_id = models.CharField(max_length=255, unique=True)
    displayname = models.CharField(max_length=256, null=True, blank=True)
    avatar_url = models.CharField(max_length=1000, null=True, blank=True)
    #: Extended profile fields other than displayname and avatar_url (spec: m.tz, ...).
    profile_fields = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True, help_text="False once deactivated.")
    is_admin = models.BooleanField(default=False)
    is_guest = models.BooleanField(default=False)
    #: Locked by an operator (spec "Account locking"): every request but logout is refused
    #: with 401 M_USER_LOCKED until unlocked.
    locked = models.BooleanField(default=False)
    #: Suspended by an operator (spec "Account suspension"): read-only until lifted.
    suspended = models.BooleanField(default=False)
    #: Deactivated with erasure: the profile was cleared as well.
    erased = models.BooleanField(default=False)
    created_ts = models.BigIntegerField()

    USERNAME_FIELD = "localpart"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    def __str__(self) -> str:
        return self.user_id

    @property
    def is_staff(self) -> bool:
        return self.is_admin and self.is_active

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return self.is_staff

    def has_module_perms(self, app_label: str) -> bool:
        return self.is_staff


class Device(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="devices")
    device_id = models.CharField(max_length=255)
    display_name = models.CharField(max_length=1000, null=True, blank=True)
    created_ts = models.BigIntegerField()
    last_seen_ts = models.BigIntegerField(null=True, blank=True)
    last_seen_ip = models.CharField(max_length=64, null=True, blank=True)
    last_seen_user_agent = models.CharField(max_length=512, null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "device_id"], name="device_unique_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.device_id}"


class RefreshToken(models.Model):
    """A refresh token. It stays valid until the pair issued from it is first used."""

    token_hash = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="refresh_tokens")
    created_ts = models.BigIntegerField()
    #: The token issued when this one was used; set means "refreshed, awaiting first use".
    next_token = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="previous"
    )


class AccessToken(models.Model):
    token_hash = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="access_tokens")
    device = models.ForeignKey(
        Device, null=True, on_delete=models.CASCADE, related_name="access_tokens"
    )
    created_ts = models.BigIntegerField()
    #: Set for tokens issued with a refresh token.
    expires_ts = models.BigIntegerField(null=True, blank=True)
    refresh_token = models.ForeignKey(
        RefreshToken, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    #: False until first use; the first use retires the refresh token it replaced.
    used = models.BooleanField(default=False)


class OpenIdToken(models.Model):
    """A token a user handed to a third party (an integration manager, a widget) so it
    can learn who they are from GET /_matrix/federation/v1/openid/userinfo; by hash."""

    token_hash = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    expires_ts = models.BigIntegerField(db_index=True)


class LoginToken(models.Model):
    """A single-use, short-lived token for the m.login.token login flow, made by
    POST /login/get_token for a user to sign in a new client with; kept by hash."""

    token_hash = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    expires_ts = models.BigIntegerField(db_index=True)


class RegistrationToken(models.Model):
    """A token that allows registering when MATRIXHS_REGISTRATION=token."""

    token = models.CharField(max_length=64, unique=True)
    uses_allowed = models.PositiveIntegerField(null=True, blank=True)
    #: Registrations that passed the token stage and are not finished yet.
    pending = models.PositiveIntegerField(default=0)
    completed = models.PositiveIntegerField(default=0)
    expiry_ts = models.BigIntegerField(null=True, blank=True)
    created_ts = models.BigIntegerField()

    def __str__(self) -> str:
        return self.token


class UIASession(models.Model):
    """A User-Interactive Auth session: the stages done for one operation."""

    session_id = models.CharField(max_length=64, unique=True)
    #: "METHOD /path" of the operation; the session cannot be used for another.
    operation = models.CharField(max_length=512)
    user = models.ForeignKey(User, null=True, on_delete=models.CASCADE, related_name="+")
    completed = models.JSONField(default=list)
    registration_token = models.CharField(max_length=64, null=True, blank=True)
    created_ts = models.BigIntegerField()


class AccountData(models.Model):
    """Global (room_id "") and per-room account data; stream_id orders it for /sync."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="account_data")
    room_id = models.CharField(max_length=255, blank=True, default="")
    type = models.CharField(max_length=255)
    content = models.JSONField()
    stream_id = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "room_id", "type"], name="account_data_unique_type"
            )
        ]
        indexes = [models.Index(fields=["user", "stream_id"], name="account_data_by_stream")]
