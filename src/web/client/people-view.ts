/** Signing in, the user's settings (password, API tokens) and, for admins, users and invitations. */
import { api, can, type Role } from "./api.js";
import { h } from "./dom.js";
import type { Cleanup, ViewContext } from "./main.js";

const ROLES: Role[] = ["viewer", "editor", "admin"];

export function signinView(navigate: (path: string) => void): HTMLElement {
  const params = new URLSearchParams(location.search);
  const username = h("input#username", { autocomplete: "username", required: true });
  const password = h("input#password", {
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const message = h(
    "div.message",
    null,
    params.get("error") ? h("div.error", { role: "alert" }, params.get("error")) : null,
  );
  const submit = async (event: Event) => {
    event.preventDefault();
    try {
      await api("POST", "/v1/session", { username: username.value, password: password.value });
      location.href = params.get("next") ?? "/";
    } catch (error) {
      message.replaceChildren(h("div.error", { role: "alert" }, (error as Error).message));
    }
  };
  void navigate;
  return h(
    "div.signin",
    null,
    h("h1", null, "Sluice"),
    h(
      "form.form",
      { onsubmit: submit },
      h("label", null, "User name", username),
      h("label", null, "Password", password),
      h("button.primary#signin", { type: "submit" }, "Sign in"),
      message,
    ),
    h(
      "p.hint",
      null,
      "First start? Use the one-time link the server printed. Lost your password? An admin can send you a new link (or run: sluice users login-link NAME).",
    ),
  );
}

interface Token {
  id: number;
  name: string;
  role: Role;
  username: string;
  createdAt: string;
  lastUsedAt: string | null;
}

export async function settingsView({ main, me, query }: ViewContext): Promise<Cleanup> {
  const password = h("input#new-password", { type: "password", autocomplete: "new-password", minLength: 8 });
  const passwordMessage = h("div.message");
  const setPassword = async (event: Event) => {
    event.preventDefault();
    try {
      await api("PUT", "/v1/me/password", { password: password.value });
      passwordMessage.replaceChildren(h("div.ok", null, "Password saved."));
      password.value = "";
    } catch (error) {
      passwordMessage.replaceChildren(h("div.error", { role: "alert" }, (error as Error).message));
    }
  };
  const tokens = h("div#tokens");
  const tokenName = h("input#token-name", { placeholder: "What it is for, e.g. Metabase" });
  const tokenRole = h(
    "select#token-role",
    null,
    ROLES.filter((role) => can(me, role)).map((role) =>
      h("option", { value: role, selected: role === me.role }, role),
    ),
  );
  const tokenMessage = h("div.message");
  const loadTokens = async () => {
    const { tokens: list } = await api<{ tokens: Token[] }>("GET", "/v1/tokens");
    tokens.replaceChildren(
      h(
        "table.list",
        null,
        h(
          "tr",
          null,
          h("th", null, "Name"),
          h("th", null, "Role"),
          h("th", null, "Owner"),
          h("th", null, "Last used"),
          h("th", null, ""),
        ),
        list.map((token) =>
          h(
            "tr",
            null,
            h("td", null, token.name),
            h("td", null, token.role),
            h("td", null, token.username),
            h("td", null, token.lastUsedAt?.slice(0, 16).replace("T", " ") ?? "never"),
            h(
              "td",
              null,
              h(
                "button",
                {
                  onclick: async () => {
                    await api("DELETE", `/v1/tokens/${token.id}`);
                    await loadTokens();
                  },
                },
                "Revoke",
              ),
            ),
          ),
        ),
      ),
    );
  };
  const createToken = async (event: Event) => {
    event.preventDefault();
    try {
      const { secret } = await api<{ secret: string }>("POST", "/v1/tokens", {
        name: tokenName.value,
        role: tokenRole.value,
      });
      tokenMessage.replaceChildren(
        h("div.ok", null, "Copy this token now, it is shown once: ", h("code#token-secret", null, secret)),
      );
      tokenName.value = "";
      void loadTokens();
    } catch (error) {
      tokenMessage.replaceChildren(h("div.error", { role: "alert" }, (error as Error).message));
    }
  };
  const signOut = async () => {
    await api("DELETE", "/v1/session");
    location.href = "/signin";
  };
  main.append(
    h("h1", null, "Your account"),
    query.get("welcome")
      ? h("div.ok", null, "Welcome! Choose a password so you can sign in again later.")
      : "",
    me.user
      ? h(
          "section",
          null,
          h("p", null, `Signed in as ${me.user.username} (${me.role}).`),
          h(
            "form.form.inline",
            { onsubmit: setPassword },
            h("label", null, "New password", password),
            h("button.primary#save-password", null, "Save password"),
            passwordMessage,
          ),
          h("button#signout", { onclick: () => void signOut() }, "Sign out"),
        )
      : h("p", null, "You are using the configured admin token."),
    h("h2", null, "API tokens"),
    h(
      "p.hint",
      null,
      "For scripts and BI tools: send Authorization: Bearer <token>, or use it as the password on the PostgreSQL port.",
    ),
    me.user
      ? h(
          "form.form.inline",
          { onsubmit: createToken },
          tokenName,
          tokenRole,
          h("button.primary#create-token", null, "Create token"),
          tokenMessage,
        )
      : "",
    tokens,
  );
  await loadTokens();
  return undefined;
}

interface User {
  id: number;
  username: string;
  role: Role;
  hasPassword: boolean;
  lastLoginAt: string | null;
  disabled: boolean;
}

export async function usersView({ main, me }: ViewContext): Promise<Cleanup> {
  if (!can(me, "admin")) {
    main.append(h("div.error", null, "Only admins manage users."));
    return undefined;
  }
  const list = h("div#users");
  const message = h("div.message");
  const load = async () => {
    const { users } = await api<{ users: User[] }>("GET", "/v1/users");
    list.replaceChildren(
      h(
        "table.list",
        null,
        h(
          "tr",
          null,
          h("th", null, "User"),
          h("th", null, "Role"),
          h("th", null, "Last sign-in"),
          h("th", null, ""),
        ),
        users.map((user) => {
          const role = h(
            "select",
            null,
            ROLES.map((one) => h("option", { value: one, selected: one === user.role }, one)),
          );
          role.addEventListener(
            "change",
            () => void act(() => api("PATCH", `/v1/users/${user.id}`, { role: role.value })),
          );
          return h(
            "tr",
            { className: user.disabled ? "disabled" : "" },
            h("td", null, user.username),
            h("td", null, role),
            h("td", null, user.lastLoginAt?.slice(0, 16).replace("T", " ") ?? "never"),
            h(
              "td",
              null,
              h(
                "button",
                {
                  onclick: () =>
                    void act(() => api("PATCH", `/v1/users/${user.id}`, { disabled: !user.disabled })),
                },
                user.disabled ? "Enable" : "Disable",
              ),
              h(
                "button",
                {
                  onclick: () =>
                    void act(async () => {
                      const { loginUrl } = await api<{ loginUrl: string }>(
                        "POST",
                        `/v1/users/${user.id}/login-link`,
                      );
                      message.replaceChildren(
                        h(
                          "div.ok",
                          null,
                          `One-time login link for ${user.username}: `,
                          h("code", null, loginUrl),
                        ),
                      );
                    }, false),
                },
                "Login link",
              ),
              h(
                "button",
                {
                  onclick: () => {
                    if (confirm(`Delete ${user.username}? Their API tokens stop working.`)) {
                      void act(() => api("DELETE", `/v1/users/${user.id}`));
                    }
                  },
                },
                "Delete",
              ),
            ),
          );
        }),
      ),
    );
  };
  const act = async (work: () => Promise<unknown>, reload = true) => {
    try {
      if (reload) message.replaceChildren();
      await work();
      if (reload) await load();
    } catch (error) {
      message.replaceChildren(h("div.error", { role: "alert" }, (error as Error).message));
      await load();
    }
  };
  const username = h("input#invite-username", { placeholder: "name or e-mail" });
  const role = h(
    "select#invite-role",
    null,
    ROLES.map((one) => h("option", { value: one }, one)),
  );
  const invite = async (event: Event) => {
    event.preventDefault();
    await act(async () => {
      const { inviteUrl } = await api<{ inviteUrl: string }>("POST", "/v1/users", {
        username: username.value,
        role: role.value,
      });
      await load();
      message.replaceChildren(
        h(
          "div.ok",
          null,
          `Send ${username.value} this invite link (one use, 7 days): `,
          h("code#invite-url", null, inviteUrl),
        ),
      );
      username.value = "";
    }, false);
  };
  main.append(
    h("h1", null, "Users"),
    h("form.form.inline", { onsubmit: invite }, username, role, h("button.primary#invite", null, "Invite")),
    message,
    list,
  );
  await load();
  return undefined;
}
