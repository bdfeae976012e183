#!/usr/bin/env node
// Drives a running Portcullis with the real PocketBase JS SDK (the `pocketbase` npm
// package pinned in package.json) and checks that the pocketbase dialect is what the
// SDK expects: the login's record and token, the error the SDK throws, and the
// `pb_auth` cookie its auth store loads.
//
// Usage:
//   node pocketbase-sdk.mjs <base-url> <identity> <password> <email> [secure-cookie]
// or the same through PB_BASE_URL, PB_IDENTITY, PB_PASSWORD, PB_EMAIL and
// PB_SECURE_COOKIE. <identity> is what goes in `username` (a username or an email);
// <email> is the account's; [secure-cookie] ("true", the default, or "false") says
// whether the server sets `Secure` on its cookie.
//
// Prints one line per check; exits 0 when all pass, 1 with a message on the first
// failure, 2 on a usage error.

import assert from "node:assert/strict";
import PocketBase, { ClientResponseError } from "pocketbase";

const [argBase, argIdentity, argPassword, argEmail, argSecure] = process.argv.slice(2);
const base = argBase ?? process.env.PB_BASE_URL;
const identity = argIdentity ?? process.env.PB_IDENTITY;
const password = argPassword ?? process.env.PB_PASSWORD;
const email = argEmail ?? process.env.PB_EMAIL;
const secure = (argSecure ?? process.env.PB_SECURE_COOKIE ?? "true") !== "false";

if (!base || !identity || !password || !email) {
    console.error(
        "usage: node pocketbase-sdk.mjs <base-url> <identity> <password> <email> [secure-cookie]",
    );
    process.exit(2);
}

const loginUrl = `${base.replace(/\/+$/, "")}/auth/login`;
let checks = 0;

function check(what, fn) {
    try {
        fn();
    } catch (error) {
        throw new Error(`${what}: ${error.message}`, { cause: error });
    }
    checks += 1;
    console.log(`ok ${checks} - ${what}`);
}

/** The JSON payload of a JWT. */
function jwtPayload(token) {
    const parts = String(token).split(".");
    assert.equal(parts.length, 3, `not a JWT: ${token}`);
    return JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8"));
}

/** A client that does not cancel one request with the next. */
function client() {
    const pb = new PocketBase(base);
    pb.autoCancellation(false);
    return pb;
}

/** Sends a login through the SDK; resolves to the thrown ClientResponseError. */
async function failingLogin(pb, body) {
    try {
        const result = await pb.send("/auth/login", { method: "POST", body });
        assert.fail(`the login succeeded: ${JSON.stringify(result)}`);
    } catch (error) {
        if (error instanceof assert.AssertionError) throw error;
        return error;
    }
}

async function main() {
    // 1. A login through the SDK: the record and a token.
    const pb = client();
    let setCookie = null;
    pb.afterSend = (response, data) => {
        setCookie = response.headers.get("set-cookie");
        return data;
    };
    const result = await pb.send("/auth/login", {
        method: "POST",
        body: { username: identity, password },
    });
    pb.afterSend = undefined;

    check("the login returns exactly a record and a token", () => {
        assert.deepEqual(Object.keys(result).sort(), ["record", "token"]);
    });
    const { record, token } = result;
    check("the record is the account's users record", () => {
        assert.equal(record.email, email);
        assert.equal(record.collectionId, "_pb_users_auth_");
        assert.equal(record.collectionName, "users");
        assert.equal(typeof record.id, "string");
        assert.ok(record.id.length > 0);
        assert.deepEqual(Object.keys(record), [...Object.keys(record)].sort());
        assert.match(record.created, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z$/);
        assert.match(record.updated, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z$/);
    });
    check("the token is a PocketBase auth-record JWT", () => {
        const claims = jwtPayload(token);
        assert.equal(claims.id, record.id);
        assert.equal(claims.collectionId, "_pb_users_auth_");
        assert.equal(claims.type, "authRecord");
        assert.ok(claims.exp > Date.now() / 1000, `expired: exp ${claims.exp}`);
    });
    pb.authStore.save(token, record);
    check("the SDK's auth store holds it as valid", () => {
        assert.equal(pb.authStore.isValid, true);
        assert.equal(pb.authStore.record.email, email);
    });

    // 2. The pb_auth cookie loads into a fresh auth store.
    check("the login set the pb_auth cookie", () => {
        assert.equal(typeof setCookie, "string", "no Set-Cookie header");
        assert.ok(setCookie.startsWith("pb_auth="), setCookie);
    });
    const fromCookie = client();
    fromCookie.authStore.loadFromCookie(setCookie);
    check("loadFromCookie gives a valid store with the login's token and record", () => {
        assert.equal(fromCookie.authStore.isValid, true);
        assert.equal(fromCookie.authStore.token, token);
        assert.equal(fromCookie.authStore.record?.email, email);
        assert.deepEqual(fromCookie.authStore.record, record);
    });
    check("the cookie's attributes are the SDK's own exportToCookie's", () => {
        const exported = fromCookie.authStore.exportToCookie({ httpOnly: false, secure });
        const attributes = (cookie) => cookie.split("; ").slice(1);
        assert.deepEqual(attributes(setCookie), attributes(exported));
    });

    // 3. The token is a live session's: it authenticates (as a bearer, on authapi).
    const welcome = await fromCookie.send("/auth", {
        method: "POST",
        headers: { Authorization: `Bearer ${fromCookie.authStore.token}` },
    });
    check("the token authenticates", () => {
        assert.equal(welcome.user?.email, email);
    });

    // 4. A wrong password: the SDK throws ClientResponseError 400, whose response is
    //    the serialised ClientResponseError the document specifies.
    const wrong = await failingLogin(client(), {
        username: identity,
        password: `${password} but wrong`,
    });
    check("a wrong password throws ClientResponseError 400", () => {
        assert.ok(wrong instanceof ClientResponseError, String(wrong));
        assert.equal(wrong.status, 400);
        assert.equal(wrong.url, loginUrl);
        assert.equal(wrong.isAbort, false);
    });
    check("its response says Failed to authenticate.", () => {
        assert.deepEqual(wrong.response, {
            url: loginUrl,
            status: 400,
            response: { code: 400, message: "Failed to authenticate.", data: {} },
            isAbort: false,
            originalError: {
                url: loginUrl,
                status: 400,
                data: { code: 400, message: "Failed to authenticate.", data: {} },
            },
            name: "ClientResponseError 400",
            code: 400,
            message: "Failed to authenticate.",
            data: {},
        });
        assert.equal(wrong.response.message, "Failed to authenticate.");
        assert.equal(wrong.message, "Failed to authenticate.");
    });

    // 5. A blank field: the validation error.
    const blank = await failingLogin(client(), { username: identity, password: "" });
    check("a blank password throws ClientResponseError 400 naming the field", () => {
        assert.ok(blank instanceof ClientResponseError, String(blank));
        assert.equal(blank.status, 400);
        assert.equal(blank.response.message, "Something went wrong while processing your request.");
        assert.deepEqual(blank.response.response, {
            code: 400,
            message: "Something went wrong while processing your request.",
            data: blank.response.data,
        });
        assert.deepEqual(blank.response.data, {
            password: { code: "validation_required", message: "Cannot be blank." },
        });
    });

    console.log(`all ${checks} checks passed`);
}

main().catch((error) => {
    // A failed check's message has the assertion's diff; anything else (the server
    // unreachable, an unexpected throw) gets its stack too.
    console.error(`FAIL: ${error?.message ?? error}`);
    if (!(error?.cause instanceof assert.AssertionError)) {
        console.error(error?.stack ?? "");
        if (error?.cause) console.error("caused by:", error.cause);
    }
    process.exit(1);
});
