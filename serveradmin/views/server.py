"""GET /_synapse/admin/v1/server_version."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from rest_framework.request import Request
from rest_framework.response import Response

from matrixhs.http import MatrixView


def server_version() -> str:
    try:
        return f"matrixhs {version('matrixhs')}"
    except PackageNotFoundError:
        return "matrixhs 0.1.0"


class ServerVersionView(MatrixView):
    """No token needed (as in Synapse: admin UIs ask before their operator logs in)."""

    requires_auth = False

    def get(self, request: Request) -> Response:
        return Response({"server_version": server_version()})
