from __future__ import annotations

from django.urls import path

from sync import views

# Served under /_matrix/client/v3/ (and r0). /sync itself is routed in matrixhs/asgi.py.
client_patterns = [
    path("user/<str:user_id>/filter", views.FilterCreateView.as_view()),
    path("user/<str:user_id>/filter/<str:filter_id>", views.FilterView.as_view()),
    path("presence/<str:user_id>/status", views.PresenceStatusView.as_view()),
]

# Also under /_matrix/client/v3/: what clients look up at start-up besides /sync.
client_startup_patterns = [
    path("voip/turnServer", views.TurnServerView.as_view()),
    path("thirdparty/protocols", views.ThirdPartyProtocolsView.as_view()),
    path("thirdparty/protocol/<str:protocol>", views.ThirdPartyProtocolView.as_view()),
]
