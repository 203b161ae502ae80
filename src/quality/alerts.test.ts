import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { SMTPServer } from "smtp-server";
import { tempQuality } from "./test-support.js";

const PROJECT = `
customers:
  checks:
    - { type: missing, column: email }
    - { type: row_count, min: 1, severity: warn }
`;

describe("alerts by webhook and email", () => {
  let ctx: Awaited<ReturnType<typeof tempQuality>>;
  let receiver: Server;
  let smtp: SMTPServer;
  const posts: { text: string }[] = [];
  const mails: string[] = [];
  /** Status codes the webhook answers next (200 once they run out). */
  const answers: number[] = [];

  before(async () => {
    receiver = createServer((request, response) => {
      let body = "";
      request.on("data", (chunk) => {
        body += chunk;
      });
      request.on("end", () => {
        const status = answers.shift() ?? 200;
        if (status === 200) posts.push(JSON.parse(body));
        response.writeHead(status).end();
      });
    });
    receiver.listen(0, "127.0.0.1");
    await once(receiver, "listening");
    smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ["STARTTLS"],
      logger: false,
      onData(stream, _session, callback) {
        let message = "";
        stream.on("data", (chunk) => {
          message += chunk;
        });
        stream.on("end", () => {
          mails.push(message);
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => smtp.listen(0, "127.0.0.1", resolve));
    const smtpPort = (smtp.server.address() as AddressInfo).port;
    ctx = await tempQuality({
      project: { "quality.yml": PROJECT },
      config: {
        alert_webhook_url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/slack`,
        alert_smtp_url: `smtp://127.0.0.1:${smtpPort}`,
        alert_email_to: "data-team@example.com",
        alert_email_from: "sluice@example.com",
      },
    });
  });
  after(async () => {
    await ctx.close();
    receiver.close();
    await new Promise<void>((resolve) => smtp.close(() => resolve()));
  });

  test("a failing check alerts once on each channel until it recovers, then says so once", async () => {
    await ctx.load("customers", "customers.csv", "id,email\n1,a@example.com\n2,\n");
    await ctx.quality.runChecks("customers", { trigger: "load" });
    assert.equal(posts.length, 1);
    assert.match(
      posts[0]?.text ?? "",
      /^\*\[error\] Sluice check failed: customers missing\(email\)\*\n1 of 2 rows \(50%\) has no email/,
    );
    assert.equal(mails.length, 1);
    assert.match(mails[0] ?? "", /To: data-team@example.com/);
    assert.match(mails[0] ?? "", /Subject: \[error\] Sluice check failed: customers missing\(email\)/);

    // Still failing: people were told already.
    await ctx.load("customers", "more.csv", "id,email\n3,\n");
    await ctx.quality.runChecks("customers", { trigger: "load" });
    assert.equal(posts.length, 1);
    assert.equal(mails.length, 1);
    assert.equal(ctx.quality.store.openAlerts().length, 1);

    await ctx.load("customers", "fixed.csv", "id,email\n1,a@example.com\n2,b@example.com\n", {
      mode: "replace",
    });
    await ctx.quality.runChecks("customers", { trigger: "load" });
    assert.equal(posts.length, 2);
    assert.match(
      posts[1]?.text ?? "",
      /^\*\[recovered\] Sluice check passes again: customers missing\(email\)\*/,
    );
    assert.equal(mails.length, 2);
    assert.match(mails[1] ?? "", /Subject: \[recovered\]/);

    await ctx.quality.runChecks("customers", { trigger: "schedule" });
    assert.equal(posts.length, 2);
    assert.equal(mails.length, 2);
    assert.deepEqual(ctx.quality.store.openAlerts(), []);
  });

  test("an alert that could not be delivered is sent again on the next run", async () => {
    await ctx.load("customers", "broken.csv", "id,email\n9,\n", { mode: "replace" });
    answers.push(500);
    const first = await ctx.quality.runChecks("customers", { trigger: "load" });
    assert.match(first.alertProblems.join(), /answered 500/);
    assert.equal(posts.length, 2);
    const second = await ctx.quality.runChecks("customers", { trigger: "load" });
    assert.deepEqual(second.alertProblems, []);
    assert.equal(posts.length, 3);
    assert.match(posts[2]?.text ?? "", /check failed: customers missing\(email\)/);
  });
});
