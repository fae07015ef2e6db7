"""`manage.py check_deploy`: the settings an operator can get wrong, checked before going live.

Prints one line per finding, ERROR or WARNING, and exits non-zero when there is an
error. It reads files and settings only; it starts nothing and connects nowhere.
"""

from __future__ import annotations

import ssl
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


@dataclass(frozen=True)
class Finding:
    level: str  # "ERROR" or "WARNING"
    message: str


def check_public_baseurl() -> list[Finding]:
    url = settings.MATRIXHS_PUBLIC_BASEURL
    host, port = settings.MATRIXHS_BIND
    if url == f"http://{host}:{port}":
        return [Finding("ERROR", "MATRIXHS_PUBLIC_BASEURL is not set: clients are sent to "
                        f"{url}, the listener's own address")]  # fmt: skip
    parts = urlsplit(url)
    if parts.scheme != "https":
        return [Finding("ERROR", f"MATRIXHS_PUBLIC_BASEURL={url} is not https")]
    if not parts.hostname:
        return [Finding("ERROR", f"MATRIXHS_PUBLIC_BASEURL={url} has no host")]
    return []


def _readable(name: str, path: str) -> Finding | None:
    if not path:
        return Finding("ERROR", f"{name} is not set")
    try:
        Path(path).read_bytes()
    except OSError as exc:
        return Finding("ERROR", f"{name}={path} cannot be read: {exc.strerror or exc}")
    return None


def check_federation_tls() -> list[Finding]:
    if settings.MATRIXHS_FEDERATION_BIND is None:
        return []
    cert, key = settings.MATRIXHS_TLS_CERT_FILE, settings.MATRIXHS_TLS_KEY_FILE
    unreadable = [
        f for f in (_readable("MATRIXHS_TLS_CERT_FILE", cert),
                    _readable("MATRIXHS_TLS_KEY_FILE", key)) if f
    ]  # fmt: skip
    if unreadable:
        return unreadable
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
    except (ssl.SSLError, ValueError) as exc:
        return [Finding("ERROR", f"MATRIXHS_TLS_KEY_FILE does not match MATRIXHS_TLS_CERT_FILE "
                        f"(or one is not PEM): {exc}")]  # fmt: skip
    names = _certificate_names(Path(cert).read_bytes())
    host = _host_of(settings.MATRIXHS_SERVER_NAME)
    if not any(_name_matches(pattern, host) for pattern in names):
        covered = ", ".join(names) or "no DNS name"
        return [Finding("ERROR", f"the federation certificate is for {covered}, "
                        f"not the server name {host}")]  # fmt: skip
    return []


def _host_of(server_name: str) -> str:
    if server_name.startswith("["):
        return server_name[1 : server_name.index("]")]
    return server_name.rsplit(":", 1)[0] if server_name.count(":") == 1 else server_name


def _certificate_names(pem: bytes) -> list[str]:
    from cryptography import x509

    certificate = x509.load_pem_x509_certificate(pem)
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return [
        *san.value.get_values_for_type(x509.DNSName),
        *(str(ip) for ip in san.value.get_values_for_type(x509.IPAddress)),
    ]


def _name_matches(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, rest = host.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == host


def check_signing_key() -> list[Finding]:
    path = Path(settings.MATRIXHS_SIGNING_KEY_PATH)
    if not path.exists():
        return []  # made on first start, private (matrixhs.files)
    mode = path.stat().st_mode
    if mode & stat.S_IROTH:
        return [Finding("ERROR", f"the signing key {path} is readable by every user "
                        f"(mode {stat.filemode(mode)}): chmod 600 it")]  # fmt: skip
    if mode & stat.S_IRGRP:
        return [Finding("WARNING", f"the signing key {path} is readable by its group")]
    return []


def check_registration() -> list[Finding]:
    if settings.MATRIXHS_REGISTRATION == "open":
        return [Finding("WARNING", "MATRIXHS_REGISTRATION=open: anyone can make accounts here, "
                        "with no captcha; use token unless that is what you want")]  # fmt: skip
    return []


def check_secret_files() -> list[Finding]:
    findings = []
    for name, path in sorted(settings.MATRIXHS_SECRET_FILES.items()):
        problem = _readable(f"{name}_FILE", path)
        if problem is not None:
            findings.append(problem)
        elif Path(path).stat().st_mode & stat.S_IROTH:
            findings.append(Finding("WARNING", f"{name}_FILE={path} is readable by every user"))
    return findings


def check_debug() -> list[Finding]:
    return [Finding("ERROR", "MATRIXHS_DEBUG is on")] if settings.DEBUG else []


CHECKS = (
    check_public_baseurl,
    check_federation_tls,
    check_signing_key,
    check_registration,
    check_secret_files,
    check_debug,
)


def run_checks() -> list[Finding]:
    return [finding for check in CHECKS for finding in check()]


class Command(BaseCommand):
    help = "Check the deployment settings (public URL, TLS, key permissions, registration)."

    def handle(self, *args: Any, **options: Any) -> None:
        findings = run_checks()
        for finding in findings:
            write = self.stderr.write if finding.level == "ERROR" else self.stdout.write
            write(f"{finding.level}: {finding.message}")
        errors = sum(1 for finding in findings if finding.level == "ERROR")
        if errors:
            raise CommandError(f"{errors} error(s) in the deployment settings")
        self.stdout.write("Deployment settings look right." if not findings else "No errors.")
