from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class MatrixhsConfig(AppConfig):
    """The project package is also an app: it owns the cross-cutting tables (streams)."""

    name = "matrixhs"
    default_auto_field = "django.db.models.BigAutoField"


class MatrixAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with matrixhs.admin.MatrixAdminSite as ``admin.site``
    (named in INSTALLED_APPS; not this module's default config)."""

    default = False
    default_site = "matrixhs.admin.MatrixAdminSite"
