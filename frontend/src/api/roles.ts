// Roles in the console: what the signed-in principal may do, so that pages, menu entries and buttons it cannot use
// are not shown. The server decides (it answers 403 below each route's role); this only keeps the console honest.
// viewer < user < admin: a viewer reads and subscribes, a user also changes devices, actions, dashboards and
// automation and has service tokens of their own, an admin also manages users, backups, settings and firmware.

import { useEffect, useState } from "react";

import { api, getRole, onAuthChange, setRole } from "./client";

export type Role = "viewer" | "user" | "admin";
export const ROLES: readonly Role[] = ["viewer", "user", "admin"];
const RANK: Record<Role, number> = { viewer: 0, user: 1, admin: 2 };

export function asRole(value: unknown): Role | null {
  return typeof value === "string" && (ROLES as readonly string[]).includes(value) ? (value as Role) : null;
}

/** Whether `role` may do what `needed` may. An unknown role (not read yet) is not held back: the server decides. */
export function allows(role: Role | null | undefined, needed: Role): boolean {
  return role === null || role === undefined ? true : RANK[role] >= RANK[needed];
}

/** The roles a service token made by `role` may carry (never more than its maker's). */
export function rolesUpTo(role: Role | null | undefined): Role[] {
  return ROLES.filter((candidate) => allows(role ?? "viewer", candidate));
}

/** The least role of each console page (by path prefix); pages not listed are for every role (reading). */
export const PAGE_ROLES: ReadonlyArray<readonly [string, Role]> = [
  ["/firmware", "admin"],
  ["/backup", "admin"],
  ["/users", "admin"],
  ["/settings", "admin"],
  ["/tokens", "user"],
];

export function pageRole(path: string): Role {
  const found = PAGE_ROLES.find(([prefix]) => path === prefix || path.startsWith(`${prefix}/`));
  return found ? found[1] : "viewer";
}

/** The menu entries (`[path, label]`) a role may open. */
export function visibleNav<T extends readonly [string, string]>(nav: readonly T[], role: Role | null): T[] {
  return nav.filter(([path]) => allows(role, pageRole(path)));
}

let asking: Promise<void> | null = null;

/** Ask the profile for the role once (however many components want it), and keep it in the session. */
function askRole(): void {
  asking ??= api<{ role?: string }>("/api/user/profile").then(
    (profile) => {
      const known = asRole(profile.role);
      if (known) setRole(known);
    },
    () => undefined, // not signed in, or the server is away: nothing is hidden, the server still decides
  ).finally(() => {
    asking = null;
  });
}

/** The signed-in principal's role; read from `/api/user/profile` when the session does not know it yet. */
export function useRole(): Role | null {
  const [role, setState] = useState<Role | null>(() => asRole(getRole()));
  useEffect(() => {
    const unsubscribe = onAuthChange(() => setState(asRole(getRole())));
    if (!getRole()) askRole();
    return () => {
      unsubscribe();
    };
  }, []);
  return role;
}
