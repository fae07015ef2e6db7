from django.apps import AppConfig


class E2eeConfig(AppConfig):
    name = "e2ee"
    default_auto_field = "django.db.models.BigAutoField"
