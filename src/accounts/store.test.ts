import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Authenticator, CSRF_HEADER, parseCookies, SESSION_COOKIE, sessionCookie } from "./auth.js";
import { AccountStore } from "./store.js";

describe("AccountStore", () => {
  let dir: string;
  let now = Date.parse("2026-11-25T10:00:00Z");
  let store: AccountStore;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "sluice-accounts-"));
    store = new AccountStore(join(dir, "app.db"), { now: () => now });
  });
  after(async () => {
    store.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("the first start creates an admin with a one-time link that works once", () => {
    const first = store.firstStartLink();
    assert.ok(first);
    assert.equal(first.user.username, "admin");
    assert.equal(first.user.role, "admin");
    // Until the admin signs in, every start prints a fresh link (the old one still works once).
    const again = store.firstStartLink();
    assert.ok(again);
    assert.notEqual(again.linkToken, first.linkToken);
    const user = store.consumeLink(first.linkToken);
    assert.equal(user.id, first.user.id);
    assert.throws(() => store.consumeLink(first.linkToken), /already used/);
    assert.throws(() => store.consumeLink("made-up"), /not valid/);
    store.createSession(user.id);
    assert.equal(store.firstStartLink(), null, "no link once the admin has signed in");
  });

  test("invite links expire", () => {
    const { linkToken } = store.createUser("late@example.com", "viewer");
    now += 8 * 24 * 3_600_000;
    assert.throws(() => store.consumeLink(linkToken), /expired/);
  });

  test("passwords are checked with scrypt and need 8 characters", () => {
    const { user } = store.createUser("ann@example.com", "editor");
    assert.throws(() => store.setPassword(user.id, "short"), /at least 8 characters/);
    store.setPassword(user.id, "correct horse");
    assert.equal(store.checkPassword("ann@example.com", "correct horse")?.id, user.id);
    assert.equal(store.checkPassword("ANN@example.com", "correct horse")?.id, user.id, "names ignore case");
    assert.equal(store.checkPassword("ann@example.com", "wrong horse!"), null);
    const stored = store.db.prepare("SELECT password_hash FROM users WHERE id = ?").get(user.id) as {
      password_hash: string;
    };
    assert.match(stored.password_hash, /^scrypt\$16384\$8\$1\$/);
    assert.ok(!stored.password_hash.includes("correct horse"));
  });

  test("an API token's role is capped by its owner's, now and later", () => {
    const { user } = store.createUser("bob", "editor");
    assert.throws(
      () => store.createToken(user, "too much", "admin"),
      /editor cannot create a token with role admin/,
    );
    const { secret, token } = store.createToken(user, "ci", "editor");
    assert.equal(token.role, "editor");
    assert.equal(store.tokenPrincipal(secret)?.role, "editor");
    store.updateUser(user.id, { role: "viewer" });
    assert.equal(store.tokenPrincipal(secret)?.role, "viewer", "demoting the owner demotes the token");
    store.updateUser(user.id, { disabled: true });
    assert.equal(store.tokenPrincipal(secret), null, "a disabled owner's tokens stop working");
    const raw = store.db.prepare("SELECT hash FROM api_tokens WHERE id = ?").get(token.id) as {
      hash: string;
    };
    assert.notEqual(raw.hash, secret, "only the token's hash is stored");
  });

  test("the last active admin cannot be demoted, disabled or deleted", () => {
    const admin = store.userByName("admin");
    assert.ok(admin);
    assert.throws(() => store.updateUser(admin.id, { role: "viewer" }), /last active admin/);
    assert.throws(() => store.updateUser(admin.id, { disabled: true }), /last active admin/);
    assert.throws(() => store.deleteUser(admin.id), /last active admin/);
    const { user: second } = store.createUser("root2", "admin");
    store.updateUser(admin.id, { role: "editor" });
    assert.equal(store.user(admin.id)?.role, "editor");
    store.updateUser(admin.id, { role: "admin" });
    store.deleteUser(second.id);
  });

  test("the query history keeps the latest 200 entries per user", () => {
    const { user } = store.createUser("historian", "viewer");
    for (let index = 0; index < 205; index++)
      store.recordQuery(user.id, { sql: `select ${index}`, ok: true, ms: 1, rows: 1, error: null });
    const history = store.history(user.id, 1000);
    assert.equal(history.length, 200);
    assert.equal(history[0]?.sql, "select 204");
  });

  test("forgetValues replaces a forgotten user's ids in every user's query history, and nothing else", () => {
    const { user: analyst } = store.createUser("analyst", "editor");
    const { user: other } = store.createUser("other-analyst", "viewer");
    const entry = (sql: string, error: string | null = null) => ({
      sql,
      ok: error === null,
      ms: 1,
      rows: 1,
      error,
    });
    store.recordQuery(analyst.id, entry("select * from events where user_id = 'forget-me@example.com'"));
    store.recordQuery(analyst.id, entry("select count(*) from events where user_id = '42' or event = '142'"));
    store.recordQuery(
      other.id,
      entry(
        "select * from events where anonymous_id like '%anon-77%'",
        "Conversion Error: 'anon-77' is not INT",
      ),
    );
    store.recordQuery(other.id, entry("select 1"));

    assert.equal(store.forgetValues(["forget-me@example.com", "anon-77", "42"]), 3);
    assert.deepEqual(
      store.history(analyst.id).map((found) => found.sql),
      [
        "select count(*) from events where user_id = '(forgotten)' or event = '142'",
        "select * from events where user_id = '(forgotten)'",
      ],
    );
    assert.deepEqual(
      store.history(other.id).map((found) => [found.sql, found.error]),
      [
        ["select 1", null],
        [
          "select * from events where anonymous_id like '%(forgotten)%'",
          "Conversion Error: '(forgotten)' is not INT",
        ],
      ],
    );
    assert.equal(
      store.forgetValues(["forget-me@example.com", "anon-77", "42"]),
      0,
      "forgetting again changes nothing",
    );
  });

  test("the authenticator tells sessions, tokens and the admin token apart, and wants the CSRF header", () => {
    const auth = new Authenticator(store, "configured-admin");
    const { user } = store.createUser("carol", "viewer");
    const session = store.createSession(user.id);
    const cookie = `${SESSION_COOKIE}=${encodeURIComponent(session)}`;
    assert.deepEqual(Object.keys(auth.identify("GET", { cookie })), ["principal"]);
    assert.deepEqual(auth.identify("POST", { cookie }), {
      status: 403,
      error: `requests that change something need the ${CSRF_HEADER}: 1 header when signed in by cookie`,
    });
    assert.ok("principal" in auth.identify("POST", { cookie, [CSRF_HEADER]: "1" }));
    assert.match(
      String((auth.require("POST", { cookie, [CSRF_HEADER]: "1" }, "editor") as { error: string }).error),
      /needs the editor role.*you are a viewer/,
    );
    assert.equal(
      (auth.identify("GET", { authorization: "Bearer configured-admin" }) as { principal: { via: string } })
        .principal.via,
      "admin-token",
    );
    assert.deepEqual(auth.identify("GET", { authorization: "Bearer nope" }), {
      status: 401,
      error: "unknown or revoked API token",
    });
    assert.equal((auth.identify("GET", {}) as { status: number }).status, 401);
    store.endSession(session);
    assert.match(
      String((auth.identify("GET", { cookie }) as { error: string }).error),
      /expired or was ended/,
    );
  });

  test("cookies are parsed and set HttpOnly, SameSite=Lax", () => {
    assert.deepEqual(
      [...parseCookies("a=1; sluice_session=x%2By; bad=%E0")],
      [
        ["a", "1"],
        ["sluice_session", "x+y"],
      ],
    );
    assert.equal(
      sessionCookie("s", true),
      "sluice_session=s; Max-Age=1209600; Path=/; HttpOnly; SameSite=Lax; Secure",
    );
  });
});
