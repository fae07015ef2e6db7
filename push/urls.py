from __future__ import annotations

from django.urls import path

from push import views

RULE = "pushrules/global/<str:kind>/<str:rule_id>"

# Served under /_matrix/client/v3/ (and r0). The spec writes the two listings with a
# trailing slash; clients call both forms. A rule ID with a (decoded) slash reaches
# PushRuleView through <path:...>, which refuses it with 400 rather than an opaque 404.
client_patterns = [
    path("pushrules/", views.PushRulesView.as_view()),
    path("pushrules", views.PushRulesView.as_view()),
    path("pushrules/global/", views.GlobalPushRulesView.as_view()),
    path("pushrules/global", views.GlobalPushRulesView.as_view()),
    path(f"{RULE}/enabled", views.PushRuleEnabledView.as_view()),
    path(f"{RULE}/actions", views.PushRuleActionsView.as_view()),
    path("pushrules/global/<str:kind>/<path:rule_id>", views.PushRuleView.as_view()),
    path("pushers", views.PushersView.as_view()),
    path("pushers/set", views.PusherSetView.as_view()),
    path("notifications", views.NotificationsView.as_view()),
]
