/**
 * Alerts: a webhook (Slack-compatible JSON, `{"text": …}`, which Slack, Mattermost, Rocket.Chat
 * and Microsoft Teams' incoming webhooks accept) and email over SMTP. Which results alert —
 * once per failing check until it recovers — is decided by the caller (quality.ts).
 */
import nodemailer, { type Transporter } from "nodemailer";
import type { Config } from "../config/index.js";
import type { CheckResult } from "./model.js";

export type AlertConfig = Pick<
  Config,
  "alert_webhook_url" | "alert_smtp_url" | "alert_email_to" | "alert_email_from"
>;

export interface Alert {
  subject: string;
  text: string;
}

export class Alerter {
  readonly #config: AlertConfig;
  #transport: Transporter | null = null;

  constructor(config: AlertConfig) {
    this.#config = config;
  }

  /** Whether any channel is configured. */
  get enabled(): boolean {
    return this.#config.alert_webhook_url !== "" || this.#emailReady();
  }

  /** Sends to every configured channel; returns what went wrong (empty when all were told). */
  async send(alert: Alert): Promise<string[]> {
    const problems: string[] = [];
    const { alert_webhook_url: url } = this.#config;
    if (url) {
      try {
        const response = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ text: `*${alert.subject}*\n${alert.text}` }),
          signal: AbortSignal.timeout(10_000),
        });
        await response.body?.cancel();
        if (!response.ok) problems.push(`alert webhook ${url} answered ${response.status}`);
      } catch (error) {
        problems.push(`alert webhook ${url} failed: ${(error as Error).message}`);
      }
    }
    if (this.#emailReady()) {
      try {
        this.#transport ??= nodemailer.createTransport(this.#config.alert_smtp_url);
        await this.#transport.sendMail({
          from: this.#config.alert_email_from || "sluice@localhost",
          to: this.#config.alert_email_to,
          subject: alert.subject,
          text: alert.text,
        });
      } catch (error) {
        problems.push(`alert email to ${this.#config.alert_email_to} failed: ${(error as Error).message}`);
      }
    }
    return problems;
  }

  close(): void {
    this.#transport?.close();
  }

  #emailReady(): boolean {
    return this.#config.alert_smtp_url !== "" && this.#config.alert_email_to !== "";
  }
}

/** The alert for a check that started failing (or could not run). */
export function failureAlert(result: CheckResult): Alert {
  const what = result.status === "error" ? "could not run" : "failed";
  const lines = [
    `${result.message}`,
    "",
    `table: ${result.table}`,
    `check: ${result.check} (${result.kind})`,
  ];
  lines.push(`severity: ${result.severity}`, `at: ${result.ranAt} (after ${result.trigger})`);
  if (result.sample && result.sample.rows.length > 0) {
    lines.push("", `e.g. ${result.sample.columns.join(" | ")}`);
    for (const row of result.sample.rows) lines.push(`     ${row.map(cell).join(" | ")}`);
  }
  return {
    subject: `[${result.severity}] Sluice check ${what}: ${result.table} ${result.check}`,
    text: lines.join("\n"),
  };
}

/** The message once a check that alerted passes again. */
export function recoveryAlert(result: CheckResult, since: string): Alert {
  return {
    subject: `[recovered] Sluice check passes again: ${result.table} ${result.check}`,
    text: [
      result.message,
      "",
      `table: ${result.table}`,
      `check: ${result.check} (${result.kind})`,
      `failing since: ${since}`,
      `recovered at: ${result.ranAt}`,
    ].join("\n"),
  };
}

const cell = (value: unknown): string =>
  value === null || value === undefined
    ? "NULL"
    : typeof value === "object"
      ? JSON.stringify(value)
      : String(value);
