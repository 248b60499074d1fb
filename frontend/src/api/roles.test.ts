import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { getRole, login, setSession } from "./client";
import { allows, asRole, pageRole, rolesUpTo, visibleNav } from "./roles";

describe("roles", () => {
  it("rank viewer below user below admin, and an unknown role is not held back", () => {
    expect(allows("viewer", "viewer")).toBe(true);
    expect(allows("viewer", "user")).toBe(false);
    expect(allows("user", "user")).toBe(true);
    expect(allows("user", "admin")).toBe(false);
    expect(allows("admin", "user")).toBe(true);
    expect(allows(null, "admin")).toBe(true);
    expect(asRole("superuser")).toBeNull();
    expect(asRole("viewer")).toBe("viewer");
  });

  it("give each page the role whose work it is", () => {
    expect(pageRole("/users")).toBe("admin");
    expect(pageRole("/users/alice/")).toBe("admin");
    expect(pageRole("/backup")).toBe("admin");
    expect(pageRole("/settings")).toBe("admin");
    expect(pageRole("/firmware")).toBe("admin");
    expect(pageRole("/tokens")).toBe("user");
    expect(pageRole("/profile")).toBe("viewer");
    expect(pageRole("/userslist")).toBe("viewer");
    expect(pageRole("/gateways/sim")).toBe("viewer");
  });

  it("leave out of the menu what a role cannot open", () => {
    const nav: Array<[string, string]> = [["/dashboards", "Dashboards"], ["/gateways", "Gateways"],
      ["/automation/task", "Tasks"], ["/firmware", "Firmware"], ["/backup", "Backup"], ["/users", "Users"],
      ["/tokens", "Service tokens"], ["/settings", "Settings"]];
    const labels = (role: Parameters<typeof visibleNav>[1]) => visibleNav(nav, role).map(([, label]) => label);
    expect(labels("viewer")).toEqual(["Dashboards", "Gateways", "Tasks"]);
    expect(labels("user")).toEqual(["Dashboards", "Gateways", "Tasks", "Service tokens"]);
    expect(labels("admin")).toEqual(nav.map(([, label]) => label));
    expect(labels(null)).toEqual(nav.map(([, label]) => label)); // not known yet: the server decides
  });

  it("let a service token carry at most its maker's role", () => {
    expect(rolesUpTo("user")).toEqual(["viewer", "user"]);
    expect(rolesUpTo("admin")).toEqual(["viewer", "user", "admin"]);
    expect(rolesUpTo(null)).toEqual(["viewer"]);
  });
});

describe("the session keeps the role the login answered", () => {
  const store = new Map<string, string>();
  beforeEach(() => {
    vi.stubGlobal("sessionStorage", {
      getItem: (key: string) => store.get(key) ?? null,
      setItem: (key: string, value: string) => store.set(key, value),
      removeItem: (key: string) => store.delete(key),
    });
  });
  afterEach(() => {
    store.clear();
    vi.unstubAllGlobals();
  });

  it("stores it at login and forgets it at logout", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => new Response(JSON.stringify({ token: "t", username: "vera",
      role: "viewer" }), { status: 200 })));
    await login("vera", "Lilac-Horizon-Tide-3");
    expect(getRole()).toBe("viewer");
    setSession(null);
    expect(getRole()).toBeNull();
  });
});
