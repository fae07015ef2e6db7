"""`manage.py check_deploy`: each check finds what it should, and errors fail the command."""

from __future__ import annotations

import datetime
import io
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.management import CommandError, call_command
from django.test import override_settings

from matrixhs.management.commands.check_deploy import run_checks

GOOD = {
    "MATRIXHS_PUBLIC_BASEURL": "https://matrix.example.org",
    "MATRIXHS_BIND": ("127.0.0.1", 8008),
    "MATRIXHS_SERVER_NAME": "example.org",
    "MATRIXHS_FEDERATION_BIND": None,
    "MATRIXHS_REGISTRATION": "token",
    "MATRIXHS_SECRET_FILES": {},
    "DEBUG": False,
}


def _write_cert(directory: Path, name: str, dns: str) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


@pytest.fixture
def signing_key(tmp_path: Path) -> Path:
    path = tmp_path / "signing.key"
    path.write_text("ed25519 a_key c2VjcmV0")
    path.chmod(0o600)
    return path


def _messages(**overrides: object) -> list[str]:
    with override_settings(**{**GOOD, **overrides}):
        return [f"{f.level}: {f.message}" for f in run_checks()]


def test_a_good_deployment_has_no_findings(signing_key: Path) -> None:
    assert _messages(MATRIXHS_SIGNING_KEY_PATH=signing_key) == []
    out = io.StringIO()
    with override_settings(**GOOD, MATRIXHS_SIGNING_KEY_PATH=signing_key):
        call_command("check_deploy", stdout=out, stderr=io.StringIO())
    assert "look right" in out.getvalue()


def test_public_baseurl_unset_or_plain_http_is_an_error(signing_key: Path) -> None:
    unset = _messages(
        MATRIXHS_SIGNING_KEY_PATH=signing_key, MATRIXHS_PUBLIC_BASEURL="http://127.0.0.1:8008"
    )
    assert len(unset) == 1 and "MATRIXHS_PUBLIC_BASEURL is not set" in unset[0]
    plain = _messages(
        MATRIXHS_SIGNING_KEY_PATH=signing_key, MATRIXHS_PUBLIC_BASEURL="http://matrix.example.org"
    )
    assert plain == ["ERROR: MATRIXHS_PUBLIC_BASEURL=http://matrix.example.org is not https"]


def test_errors_make_the_command_fail(signing_key: Path) -> None:
    err = io.StringIO()
    with (
        override_settings(**{**GOOD, "DEBUG": True}, MATRIXHS_SIGNING_KEY_PATH=signing_key),
        pytest.raises(CommandError),
    ):
        call_command("check_deploy", stdout=io.StringIO(), stderr=err)
    assert "MATRIXHS_DEBUG is on" in err.getvalue()


def test_federation_certificate_checks(tmp_path: Path, signing_key: Path) -> None:
    cert, key = _write_cert(tmp_path, "good", "example.org")
    other_cert, other_key = _write_cert(tmp_path, "other", "elsewhere.org")
    fed = {
        "MATRIXHS_FEDERATION_BIND": ("127.0.0.1", 8448),
        "MATRIXHS_SIGNING_KEY_PATH": signing_key,
    }
    assert _messages(**fed, MATRIXHS_TLS_CERT_FILE=cert, MATRIXHS_TLS_KEY_FILE=key) == []
    mismatched = _messages(**fed, MATRIXHS_TLS_CERT_FILE=cert, MATRIXHS_TLS_KEY_FILE=other_key)
    assert len(mismatched) == 1 and "does not match" in mismatched[0]
    wrong_name = _messages(
        **fed, MATRIXHS_TLS_CERT_FILE=other_cert, MATRIXHS_TLS_KEY_FILE=other_key
    )
    assert len(wrong_name) == 1 and "not the server name example.org" in wrong_name[0]
    missing = _messages(
        **fed, MATRIXHS_TLS_CERT_FILE=str(tmp_path / "nope.crt"), MATRIXHS_TLS_KEY_FILE=key
    )
    assert len(missing) == 1 and "MATRIXHS_TLS_CERT_FILE" in missing[0]
    with_port = _messages(
        **fed,
        MATRIXHS_SERVER_NAME="example.org:8448",
        MATRIXHS_TLS_CERT_FILE=cert,
        MATRIXHS_TLS_KEY_FILE=key,
    )
    assert with_port == []


def test_world_readable_signing_key_is_an_error(signing_key: Path) -> None:
    signing_key.chmod(0o644)
    found = _messages(MATRIXHS_SIGNING_KEY_PATH=signing_key)
    assert len(found) == 1 and found[0].startswith("ERROR: the signing key")
    signing_key.chmod(0o640)
    assert _messages(MATRIXHS_SIGNING_KEY_PATH=signing_key)[0].startswith("WARNING")


def test_open_registration_is_warned(signing_key: Path) -> None:
    found = _messages(MATRIXHS_SIGNING_KEY_PATH=signing_key, MATRIXHS_REGISTRATION="open")
    assert len(found) == 1 and found[0].startswith("WARNING: MATRIXHS_REGISTRATION=open")


def test_secret_files_must_be_readable(tmp_path: Path, signing_key: Path) -> None:
    secret = tmp_path / "turn_secret"
    secret.write_text("s3cret")
    secret.chmod(0o600)
    files = {"MATRIXHS_TURN_SHARED_SECRET": str(secret)}
    assert _messages(MATRIXHS_SIGNING_KEY_PATH=signing_key, MATRIXHS_SECRET_FILES=files) == []
    secret.unlink()
    found = _messages(MATRIXHS_SIGNING_KEY_PATH=signing_key, MATRIXHS_SECRET_FILES=files)
    assert len(found) == 1 and "MATRIXHS_TURN_SHARED_SECRET_FILE" in found[0]
