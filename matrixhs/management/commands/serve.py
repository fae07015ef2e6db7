"""`manage.py serve`: the whole homeserver in the foreground.

Starts the ASGI server on MATRIXHS_BIND and, in the embedded mode (no REDIS_URL), the
background jobs on a thread of this process. The signing key is created on first start.
With MATRIXHS_FEDERATION_BIND set, a second listener with TLS (MATRIXHS_TLS_CERT_FILE,
MATRIXHS_TLS_KEY_FILE) serves the same application to other servers, which reach
``https://<server name>:<port>`` directly; without it, federation is served on
MATRIXHS_BIND, for a TLS proxy in front.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from federation import sender as federation_sender
from federation.keys import get_signing_key, key_id
from matrixhs.background import BackgroundRunner
from push import sender as push_sender

logger = logging.getLogger("matrixhs.serve")


class Command(BaseCommand):
    help = "Run the homeserver (ASGI server, plus background work in the embedded mode)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--bind", help="host:port (default: MATRIXHS_BIND)")

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = settings.MATRIXHS_BIND
        if options.get("bind"):
            host, _, port_text = options["bind"].rpartition(":")
            host, port = host.strip("[]"), int(port_text)
        self._check_migrated()
        federation = self._federation_listener()
        key = get_signing_key()
        mode = "embedded" if settings.EMBEDDED else "scaled"
        self.stdout.write(
            f"matrixhs: server name {settings.MATRIXHS_SERVER_NAME}, {mode} mode, "
            f"database {connection.vendor}, signing key {key_id(key)}, "
            f"listening on http://{host}:{port}"
            + (f", federation on https://{federation[0]}:{federation[1]}" if federation else "")
        )
        if settings.MATRIXHS_METRICS_BIND is not None:
            from prometheus_client import start_http_server

            metrics_host, metrics_port = settings.MATRIXHS_METRICS_BIND
            start_http_server(metrics_port, addr=metrics_host)
            self.stdout.write(f"matrixhs: metrics on http://{metrics_host}:{metrics_port}/metrics")
        runner = None
        if settings.EMBEDDED:
            runner = BackgroundRunner()
            runner.start()
            federation_sender.start()
            push_sender.start()
        try:
            self._run_asgi_server(host, port, federation)
        finally:
            if runner is not None:
                runner.stop()
                federation_sender.stop()
                push_sender.stop()

    def _check_migrated(self) -> None:
        executor = MigrationExecutor(connection)
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            raise CommandError("The database is not up to date: run `manage.py migrate` first.")
        connection.close()

    def _federation_listener(self) -> tuple[str, int] | None:
        bind = settings.MATRIXHS_FEDERATION_BIND
        if bind is None:
            return None
        for name in ("MATRIXHS_TLS_CERT_FILE", "MATRIXHS_TLS_KEY_FILE"):
            path = getattr(settings, name)
            if not path or not Path(path).is_file():
                raise CommandError(f"MATRIXHS_FEDERATION_BIND needs {name} (a readable file)")
        return bind

    def _run_asgi_server(
        self, host: str, port: int, federation: tuple[str, int] | None = None
    ) -> None:
        from matrixhs.asgi import application

        if settings.MATRIXHS_ASGI_SERVER == "uvicorn":
            self._run_uvicorn(application, host, port, federation)
            return
        from daphne.endpoints import build_endpoint_description_strings
        from daphne.server import Server

        endpoints = build_endpoint_description_strings(host=host, port=port)
        if federation is not None:
            fed_host, fed_port = federation
            endpoints.append(
                f"ssl:port={fed_port}:interface={fed_host.replace(':', chr(92) + ':')}"
                f":privateKey={settings.MATRIXHS_TLS_KEY_FILE}"
                f":certKey={settings.MATRIXHS_TLS_CERT_FILE}"
            )
        Server(application=application, endpoints=endpoints, verbosity=0).run()

    @staticmethod
    def _run_uvicorn(
        application: Any, host: str, port: int, federation: tuple[str, int] | None
    ) -> None:
        import asyncio

        import uvicorn

        common: dict[str, Any] = {
            "lifespan": "off",
            # X-Forwarded-* are read once, by matrixhs.asgi_proxies, from the proxies
            # in MATRIXHS_TRUSTED_PROXIES (uvicorn's default trusts 127.0.0.1 here too).
            "proxy_headers": False,
            "access_log": False,
            "log_level": "warning",
        }
        if federation is None:
            uvicorn.run(application, host=host, port=port, **common)
            return
        servers = [
            uvicorn.Server(uvicorn.Config(application, host=host, port=port, **common)),
            uvicorn.Server(
                uvicorn.Config(
                    application,
                    host=federation[0],
                    port=federation[1],
                    ssl_certfile=settings.MATRIXHS_TLS_CERT_FILE,
                    ssl_keyfile=settings.MATRIXHS_TLS_KEY_FILE,
                    **common,
                )
            ),
        ]

        async def serve_both() -> None:
            # Each server installs its signal handlers; the first to stop stops the other.
            tasks = [asyncio.create_task(server.serve()) for server in servers]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for server in servers:
                server.should_exit = True
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run(serve_both())
