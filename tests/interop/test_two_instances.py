"""Two instances of this server federating with each other over TLS (certificates from
the shared synapse-pair CA, which both trust): invites, joins by alias, messages both
ways, history from before a join, typing, and a redaction."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from tests.e2e.server import RunningServer, federating_instance
from tests.interop.conftest import PAIR_DATA, PAIR_SCRIPT
from tests.interop.test_synapse import User

pytestmark = [pytest.mark.e2e, pytest.mark.interop]


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RunningServer, RunningServer]]:
    if os.environ.get("INTEROP") != "1":
        pytest.skip("Interop tests run with INTEROP=1 (.ci/run)")
    certs = tmp_path_factory.mktemp("certs")
    subprocess.run(
        [str(PAIR_SCRIPT), "cert", str(certs)],
        check=True,
        capture_output=True,
        env={**os.environ, "SYNAPSE_PAIR_DATA": str(PAIR_DATA)},
    )
    one = federating_instance(tmp_path_factory.mktemp("one"), certs)
    two = federating_instance(tmp_path_factory.mktemp("two"), certs)
    one.start()
    try:
        two.start()
        try:
            yield one, two
        finally:
            two.stop()
    finally:
        one.stop()


def test_two_instances_share_rooms(servers: tuple[RunningServer, RunningServer]) -> None:
    one, two = servers
    ann = User(one.base_url, f"ann{secrets.token_hex(3)}")
    ben = User(two.base_url, f"ben{secrets.token_hex(3)}")

    # A private room of the first server: invite, join, messages both ways.
    room_id = ann.call("POST", "/createRoom", {"preset": "private_chat"})["room_id"]
    ann.call("POST", f"/rooms/{quote(room_id)}/invite", {"user_id": ben.user_id})
    ben.wait_for_membership(room_id, ben.user_id, "invite", section="invite")
    assert ben.join(room_id) == room_id
    ann.wait_for_membership(room_id, ben.user_id, "join")
    ann.send_text(room_id, "hello two")
    ben.wait_for_message(room_id, "hello two")
    event_id = ben.send_text(room_id, "hello one")
    ann.wait_for_message(room_id, "hello one")
    ben.call("PUT", f"/rooms/{quote(room_id)}/redact/{quote(event_id)}/r1", {})
    ann.wait_for(
        "the redaction",
        lambda s, r, e: r == room_id and e.get("type") == "m.room.redaction",
    )
    ann.call(
        "PUT",
        f"/rooms/{quote(room_id)}/typing/{quote(ann.user_id)}",
        {"typing": True, "timeout": 20000},
    )
    ben.wait_for(
        "ann typing",
        lambda s, r, e: (
            s == "ephemeral"
            and e.get("type") == "m.typing"
            and ann.user_id in e["content"]["user_ids"]
        ),
    )

    # A public room of the second server with history, joined by its alias.
    alias_local = f"hall{secrets.token_hex(3)}"
    public = ben.call(
        "POST", "/createRoom", {"preset": "public_chat", "room_alias_name": alias_local}
    )["room_id"]
    texts = [f"earlier {n}" for n in range(15)]
    for text in texts:
        ben.send_text(public, text)
    alias = f"#{alias_local}:{two.server_name}"
    assert ann.join(alias) == public
    assert ann.history(public, page=5) == list(reversed(texts))
