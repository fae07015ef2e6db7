"""`manage.py serve`: the whole homeserver in the foreground.

Starts the ASGI server on MATRIXHS_BIND and, in the embedded mode (no REDIS_URL), the
background jobs on a thread of this process. The signing key is created on first start.
"""

from __future__ import annotations

import logging
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
        key = get_signing_key()
        mode = "embedded" if settings.EMBEDDED else "scaled"
        self.stdout.write(
            f"matrixhs: server name {settings.MATRIXHS_SERVER_NAME}, {mode} mode, "
            f"database {connection.vendor}, signing key {key_id(key)}, "
            f"listening on http://{host}:{port}"
        )
        runner = None
        if settings.EMBEDDED:
            runner = BackgroundRunner()
            runner.start()
            federation_sender.start()
            push_sender.start()
        try:
            self._run_asgi_server(host, port)
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

    def _run_asgi_server(self, host: str, port: int) -> None:
        from matrixhs.asgi import application

        if settings.MATRIXHS_ASGI_SERVER == "uvicorn":
            import uvicorn

            uvicorn.run(
                application,
                host=host,
                port=port,
                lifespan="off",
                # X-Forwarded-* are read once, by matrixhs.asgi_proxies, from the proxies
                # in MATRIXHS_TRUSTED_PROXIES (uvicorn's default trusts 127.0.0.1 here too).
                proxy_headers=False,
                access_log=False,
                log_level="warning",
            )
            return
        from daphne.endpoints import build_endpoint_description_strings
        from daphne.server import Server

        Server(
            application=application,
            endpoints=build_endpoint_description_strings(host=host, port=port),
            verbosity=0,
        ).run()
