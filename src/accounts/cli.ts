/**
 * `sluice users list | add | login-link`: manage accounts from the shell, with or without a
 * running server (both open `<data-dir>/app.db`; SQLite's WAL lets them share it). `login-link`
 * is also the way back in for an admin who lost their password.
 */
import { existsSync } from "node:fs";
import { type Command, Option } from "commander";
import { loadConfig } from "../config/index.js";
import { ROLES } from "./roles.js";
import { AccountError, AccountStore, appDbPath, INVITE_LINK_MS, LOGIN_LINK_MS } from "./store.js";

interface UsersCliOptions {
  dataDir?: string;
  config?: string;
  url?: string;
}

/** Prints the first start's one-time login link, while the first admin has not signed in yet. */
export function printFirstLogin(accounts: AccountStore, baseUrl: string): void {
  const first = accounts.firstStartLink();
  if (!first) return;
  console.log(`sluice: sign in as ${first.user.username} (admin) with this one-time link, valid 24 hours:`);
  console.log(`  ${baseUrl}/login/${first.linkToken}`);
}

export function registerUsersCommands(program: Command): void {
  const users = program.command("users").description("manage the web app's accounts (viewer, editor, admin)");
  const common = (command: Command) =>
    command
      .option("--data-dir <dir>", "where data lives (default ./sluice-data, or SLUICE_DATA_DIR)")
      .option("--config <file>", "configuration file (default <data-dir>/sluice.yaml)")
      .option("--url <url>", "the server's address, for links (default http://<host>:<port> of the config)");

  common(users.command("list").description("list users and their roles")).action((options: UsersCliOptions) =>
    withStore(options, (store) => {
      for (const user of store.users()) {
        const state = user.disabled
          ? "disabled"
          : user.lastLoginAt
            ? `last sign-in ${user.lastLoginAt}`
            : "never signed in";
        console.log(`${user.id}\t${user.username}\t${user.role}\t${state}`);
      }
    }),
  );

  common(
    users
      .command("add")
      .description("add a user and print their one-time invite link (valid 7 days)")
      .argument("<username>", "the user's name (an e-mail address works)")
      .addOption(new Option("--role <role>", "what they may do").choices(ROLES).default("viewer")),
  ).action((username: string, options: UsersCliOptions & { role: string }) =>
    withStore(options, (store, baseUrl) => {
      const { user, linkToken } = store.createUser(username, options.role);
      console.log(
        `added ${user.username} (${user.role}); invite link, valid ${INVITE_LINK_MS / 86_400_000} days:`,
      );
      console.log(`  ${baseUrl}/login/${linkToken}`);
    }),
  );

  common(
    users
      .command("login-link")
      .description("print a one-time login link for a user (valid 24 hours), e.g. after a lost password")
      .argument("<username>", "the user's name"),
  ).action((username: string, options: UsersCliOptions) =>
    withStore(options, (store, baseUrl) => {
      const user = store.userByName(username);
      if (!user) throw new AccountError(`no user named "${username}" (see: sluice users list)`);
      console.log(`${baseUrl}/login/${store.issueLink(user.id, "login", LOGIN_LINK_MS)}`);
    }),
  );
}

function withStore(options: UsersCliOptions, work: (store: AccountStore, baseUrl: string) => void): void {
  const config = loadConfig({ configFile: options.config, overrides: { data_dir: options.dataDir } });
  if (!existsSync(config.data_dir)) {
    console.error(`sluice: no Sluice data directory at ${config.data_dir}`);
    process.exit(1);
  }
  const host = config.host.includes(":") ? `[${config.host}]` : config.host;
  const scheme = config.tls_cert ? "https" : "http";
  const baseUrl = (options.url ?? `${scheme}://${host}:${config.port}`).replace(/\/+$/, "");
  const store = new AccountStore(appDbPath(config.data_dir));
  try {
    work(store, baseUrl);
  } catch (error) {
    if (!(error instanceof AccountError)) throw error;
    console.error(`sluice: ${error.message}`);
    process.exitCode = 1;
  } finally {
    store.close();
  }
}
