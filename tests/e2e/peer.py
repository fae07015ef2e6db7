"""A pretend homeserver for end-to-end tests and benchmarks: ``localhost:<port>`` over
HTTPS on 127.0.0.1 (a certificate the server under test trusts), with its own signing
key. It serves its keys, records the messages it is sent (with the time each first
arrived, and the transaction IDs), can hold incoming transactions back (a peer that
hangs), joins rooms through make_join/send_join and sends signed transactions, as any
server does."""

from __future__ import annotations

import json
import secrets
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from matrixhs.protocol.events import auth_event_ids, prev_event_ids
from matrixhs.protocol.hashing import compute_event_id
from matrixhs.protocol.room_versions import get_room_version
from matrixhs.protocol.signing import (
    build_pdu,
    encode_verify_key,
    generate_signing_key,
    key_id,
    sign_json,
    verify_key_of,
)
from tests.e2e.server import free_port


def self_signed_certificate(directory: Path) -> Path:
    """``tls.crt`` / ``tls.key`` for localhost and 127.0.0.1 in ``directory``, the
    certificate its own CA (``ca.crt``, the same file): what a server under test and
    pretend peers share on loopback. Returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(directory / "tls.key"),
            "-out",
            str(directory / "tls.crt"),
        ],
        check=True,
        capture_output=True,
    )
    (directory / "ca.crt").write_bytes((directory / "tls.crt").read_bytes())
    return directory


class Peer:
    """A pretend homeserver ``localhost:<port>``: serves its keys, records the messages
    it is sent (with the time each first arrived), and sends signed requests."""

    def __init__(self, certs: Path) -> None:
        self.port = free_port()
        self.name = f"localhost:{self.port}"
        self.key = generate_signing_key("bench")
        self.certs = certs
        self.received: dict[str, float] = {}  # message body -> arrival time
        self.transactions: list[str] = []  # IDs of the transactions received, in order
        #: While set, incoming transactions wait for ``release`` and are then refused.
        self.hold = threading.Event()
        self.release = threading.Event()
        self.held = threading.Event()
        self.lock = threading.Lock()
        self.http = httpx.Client(verify=ssl.create_default_context(cafile=certs / "ca.crt"))
        self.room_state: dict[tuple[str, str], str] = {}
        self.tip: tuple[str, int] = ("", 0)  # (event ID, depth) of our last event
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certs / "tls.crt", certs / "tls.key")
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.http.close()

    def user(self, localpart: str = "peer") -> str:
        return f"@{localpart}:{self.name}"

    def _keys(self) -> dict[str, Any]:
        verify = verify_key_of(self.key)
        body = {
            "server_name": self.name,
            "valid_until_ts": int(time.time() * 1000) + 3_600_000,
            "verify_keys": {key_id(self.key): {"key": encode_verify_key(verify)}},
            "old_verify_keys": {},
        }
        return sign_json(body, self.name, self.key)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.startswith("/_matrix/key/v2/server"):
                    self._answer(200, peer._keys())
                else:
                    self._answer(404, {"errcode": "M_UNRECOGNIZED", "error": "Not here"})

            def do_PUT(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.startswith("/_matrix/federation/v1/send/"):
                    self._answer(404, {"errcode": "M_UNRECOGNIZED", "error": "Not here"})
                    return
                if peer.hold.is_set():
                    with peer.lock:
                        peer.transactions.append(self.path.rsplit("/", 1)[-1])
                    peer.held.set()
                    peer.release.wait(60)
                    self._answer(503, {"errcode": "M_UNKNOWN", "error": "Held back"})
                    return
                now = time.perf_counter()
                with peer.lock:
                    peer.transactions.append(self.path.rsplit("/", 1)[-1])
                    for pdu in body.get("pdus", []):
                        text = pdu.get("content", {}).get("body")
                        if pdu.get("type") == "m.room.message" and isinstance(text, str):
                            peer.received.setdefault(text, now)
                self._answer(200, {"pdus": {}})

            do_POST = do_PUT

        return Handler

    def request(self, method: str, destination: str, path: str, body: Any = None) -> Any:
        request: dict[str, Any] = {
            "method": method,
            "uri": path,
            "origin": self.name,
            "destination": destination,
        }
        if body is not None:
            request["content"] = body
        sig = sign_json(request, self.name, self.key)["signatures"][self.name][key_id(self.key)]
        header = (
            f'X-Matrix origin="{self.name}",destination="{destination}",'
            f'key="{key_id(self.key)}",sig="{sig}"'
        )
        answer = self.http.request(
            method,
            f"https://{destination}{path}",
            json=body,
            headers={"Authorization": header},
            timeout=120,
        )
        if answer.status_code != 200:
            raise RuntimeError(f"{method} {path} at {destination}: {answer.text[:300]}")
        return answer.json()

    def join(self, destination: str, room_id: str) -> None:
        """make_join, sign, send_join (v2): our user is in the room, and we know its
        state (for the auth events of what we send)."""
        user = self.user()
        versions = "&".join(f"ver={v}" for v in range(1, 13))
        template = self.request(
            "GET",
            destination,
            f"/_matrix/federation/v1/make_join/{quote(room_id)}/{quote(user)}?{versions}",
        )
        rv = get_room_version(template["room_version"])
        event = template["event"]
        partial = {k: v for k, v in event.items() if k not in ("origin", "hashes", "signatures")}
        partial["prev_events"] = prev_event_ids(event)
        partial["auth_events"] = auth_event_ids(event, rv, include_create=False)
        event_id, pdu = build_pdu(partial, self.name, self.key, rv)
        answer = self.request(
            "PUT",
            destination,
            f"/_matrix/federation/v2/send_join/{quote(room_id)}/{quote(event_id)}",
            pdu,
        )
        self.rv = rv
        self.room_id = room_id
        self.destination = destination
        for state_event in answer["state"]:
            if "state_key" in state_event:
                key = (state_event["type"], state_event["state_key"])
                self.room_state[key] = compute_event_id(state_event, rv)
        self.room_state[("m.room.member", user)] = event_id
        self.tip = (event_id, pdu["depth"])

    def messages(self, texts: list[str]) -> list[tuple[str, dict[str, Any]]]:
        """Signed message events, each following the one before."""
        auth = sorted(
            self.room_state[k]
            for k in (("m.room.power_levels", ""), ("m.room.member", self.user()))
        )
        if not self.rv.room_id_from_create_event:
            auth.append(self.room_state[("m.room.create", "")])
        built = []
        for text in texts:
            prev_id, depth = self.tip
            partial = {
                "type": "m.room.message",
                "sender": self.user(),
                "content": {"msgtype": "m.text", "body": text},
                "room_id": self.room_id,
                "prev_events": [prev_id],
                "auth_events": auth,
                "depth": depth + 1,
                "origin_server_ts": int(time.time() * 1000),
            }
            event_id, pdu = build_pdu(partial, self.name, self.key, self.rv)
            self.tip = (event_id, depth + 1)
            built.append((event_id, pdu))
        return built

    def send_transaction(self, pdus: list[dict[str, Any]]) -> None:
        body = {"origin": self.name, "origin_server_ts": int(time.time() * 1000), "pdus": pdus}
        answer = self.request(
            "PUT", self.destination, f"/_matrix/federation/v1/send/{secrets.token_hex(8)}", body
        )
        errors = {e: r for e, r in answer.get("pdus", {}).items() if r.get("error")}
        if errors:
            raise RuntimeError(f"{self.destination} refused PDUs: {list(errors.items())[:3]}")
