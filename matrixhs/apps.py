from django.apps import AppConfig


class MatrixhsConfig(AppConfig):
    """The project package is also an app: it owns the cross-cutting tables (streams)."""

    name = "matrixhs"
    default_auto_field = "django.db.models.BigAutoField"
