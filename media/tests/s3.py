"""A real S3 API server for the tests: moto's standalone server on 127.0.0.1.

One server per test process, started on first use and stopped at exit; the S3 variants
of the API tests point STORAGES["media"] at it.
"""

from __future__ import annotations

import atexit
import socket
import subprocess
import sys
import time
from functools import cache
from pathlib import Path
from typing import Any

BUCKET = "matrixhs-media-test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@cache
def s3_endpoint() -> str:
    """Start the server (once) and create the bucket; its URL."""
    port = _free_port()
    server = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(  # noqa: S603  (our own venv's moto_server, fixed arguments)
        [str(server), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    atexit.register(proc.terminate)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("moto_server did not start") from None
            time.sleep(0.1)
    endpoint = f"http://127.0.0.1:{port}"
    import boto3

    boto3.client("s3", **_client_options(endpoint)).create_bucket(Bucket=BUCKET)
    return endpoint


def _client_options(endpoint: str) -> dict[str, Any]:
    return {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "test",
        "aws_secret_access_key": "test",
    }


def s3_storages(base: dict[str, Any]) -> dict[str, Any]:
    """STORAGES with the media storage on the test S3 server (as settings.py builds it)."""
    from boto3.s3.transfer import TransferConfig

    return {
        **base,
        "media": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": s3_endpoint(),
                "region_name": "us-east-1",
                "access_key": "test",
                "secret_key": "test",
                "file_overwrite": True,
                "default_acl": None,
                "querystring_auth": False,
                "transfer_config": TransferConfig(max_concurrency=2),
            },
        },
    }


class OnS3:
    """Mixin: run a media test class with the media storage on S3."""

    @classmethod
    def setUpClass(cls) -> None:
        from django.conf import settings
        from django.test import override_settings

        cls.enterClassContext(override_settings(STORAGES=s3_storages(settings.STORAGES)))  # type: ignore[attr-defined]
        super().setUpClass()  # type: ignore[misc]
