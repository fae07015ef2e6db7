from django.apps import AppConfig


class ServerAdminConfig(AppConfig):
    """The operators' HTTP admin API (Synapse's /_synapse/admin and the spec's admin
    endpoints), its audit log and its room-deletion jobs."""

    name = "serveradmin"
    verbose_name = "Server admin API"
    default_auto_field = "django.db.models.BigAutoField"
