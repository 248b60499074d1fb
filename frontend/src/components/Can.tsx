// Shows its children only to principals whose role allows `need` (see api/roles.ts): buttons and links for work
// the signed-in role cannot do are left out rather than answered 403.

import type { ReactNode } from "react";

import { allows, type Role, useRole } from "../api/roles";

export function Can({ need, children }: { need: Role; children: ReactNode }) {
  const role = useRole();
  return allows(role, need) ? <>{children}</> : null;
}
