from __future__ import annotations

from django.urls import path, re_path

from accounts import views

# Served under /_matrix/client/v3/ and, for older clients, /_matrix/client/r0/.
client_patterns = [
    path("register", views.RegisterView.as_view()),
    path("register/available", views.RegisterAvailableView.as_view()),
    path("login", views.LoginView.as_view()),
    path("refresh", views.RefreshView.as_view()),
    path("logout", views.LogoutView.as_view()),
    path("logout/all", views.LogoutAllView.as_view()),
    path("account/whoami", views.WhoamiView.as_view()),
    path("account/password", views.PasswordView.as_view()),
    path("account/deactivate", views.DeactivateView.as_view()),
    path("devices", views.DevicesView.as_view()),
    # Device IDs may hold "/" (a dehydrated device's is a base64 key).
    path("devices/<path:device_id>", views.DeviceView.as_view()),
    path("delete_devices", views.DeleteDevicesView.as_view()),
    path("profile/<str:user_id>", views.ProfileView.as_view()),
    path("profile/<str:user_id>/<str:key>", views.ProfileFieldView.as_view()),
    path("user/<str:user_id>/account_data/<str:data_type>", views.AccountDataView.as_view()),
    path(
        "user/<str:user_id>/rooms/<str:room_id>/account_data/<str:data_type>",
        views.AccountDataView.as_view(),
    ),
    path("user/<str:user_id>/openid/request_token", views.OpenIdRequestTokenView.as_view()),
    path("account/3pid", views.ThreepidsView.as_view()),
    path("account/3pid/add", views.ThreepidAddView.as_view()),
    path("account/3pid/bind", views.ThreepidBindView.as_view()),
    path("account/3pid/delete", views.ThreepidUnbindView.as_view()),
    path("account/3pid/unbind", views.ThreepidUnbindView.as_view()),
    re_path(
        r"^(?:account/3pid|account/password|register)/(?:email|msisdn)/requestToken$",
        views.RequestTokenView.as_view(),
    ),
]

# Served under /_matrix/client/v1/.
client_v1_patterns = [
    path("login/get_token", views.GetLoginTokenView.as_view()),
    re_path(
        r"^register/m\.login\.registration_token/validity$",
        views.RegistrationTokenValidityView.as_view(),
    ),
]

# Served under /_synapse/admin/v1/ (Synapse's admin API; only shared-secret registration).
synapse_admin_v1_patterns = [
    path("register", views.SharedSecretRegisterView.as_view()),
]
