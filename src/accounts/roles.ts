/** Roles, each allowed what the one below it is, and more. */
export const ROLES = ["viewer", "editor", "admin"] as const;
export type Role = (typeof ROLES)[number];

/** What each role adds, for messages and docs. */
export const ROLE_MEANING: Record<Role, string> = {
  viewer: "query and look at charts and dashboards",
  editor: "also create and change charts and dashboards, and load files",
  admin: "also manage users and API tokens of others",
};

export const isRole = (value: unknown): value is Role => ROLES.includes(value as Role);

/** Whether `role` is at least `needed`. */
export const atLeast = (role: Role, needed: Role): boolean => ROLES.indexOf(role) >= ROLES.indexOf(needed);

/** The lower of two roles. */
export const lowerRole = (a: Role, b: Role): Role => (atLeast(a, b) ? b : a);
