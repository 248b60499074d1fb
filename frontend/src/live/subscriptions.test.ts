import { describe, expect, it } from "vitest";

import { LiveSocket } from "./socket";
import {
  backoffDelay,
  eventKeys,
  type LiveEvent,
  matchesFilter,
  normalizeFilter,
  parseServerMessage,
  SubscriptionRegistry,
} from "./subscriptions";

const temp: LiveEvent = {
  type: "updated",
  entityType: "field",
  entityId: "sim.1.1.V_TEMP",
  entityQuickId: "field:sim.1.1.V_TEMP",
  entity: { labels: { room: "Kitchen" } },
};

describe("filters", () => {
  it("normalises so equal filters are equal", () => {
    expect(normalizeFilter({ quickIds: ["b", "a", "a"], entityTypes: [], labels: {} })).toEqual({ quickIds: ["a", "b"] });
  });

  it("matches entity types, quick ids, event types and labels", () => {
    expect(matchesFilter({}, temp)).toBe(true);
    expect(matchesFilter({ entityTypes: ["field"], quickIds: ["field:sim.1.1.V_TEMP"] }, temp)).toBe(true);
    expect(matchesFilter({ quickIds: ["field:sim.2.1.V_TEMP"] }, temp)).toBe(false);
    expect(matchesFilter({ eventTypes: ["deleted"] }, temp)).toBe(false);
    expect(matchesFilter({ labels: { room: "Kitchen" } }, temp)).toBe(true);
    expect(matchesFilter({ labels: { room: "hall" } }, temp)).toBe(false);
  });

  it("matches a device by its ancestors' quick ids, as the server does", () => {
    expect(eventKeys(temp)).toEqual(["field:sim.1.1.V_TEMP", "source:sim.1.1", "node:sim.1", "gateway:sim"]);
    expect(matchesFilter({ quickIds: ["node:sim.1"] }, temp)).toBe(true);
    expect(matchesFilter({ quickIds: ["node:sim.2"] }, temp)).toBe(false);
    expect(eventKeys({ type: "updated", entityType: "task", entityId: "t1" })).toEqual(["task:t1"]);
  });
});

describe("SubscriptionRegistry", () => {
  it("shares one server subscription between equal filters and unsubscribes after the last listener", () => {
    const registry = new SubscriptionRegistry();
    const a = registry.subscribe({ quickIds: ["field:x.1.1.V"] }, () => {});
    const b = registry.subscribe({ quickIds: ["field:x.1.1.V"] }, () => {});
    expect(a.messages).toEqual([{ type: "subscribe", id: "s1", filter: { quickIds: ["field:x.1.1.V"] } }]);
    expect(b.messages).toEqual([]);
    expect(a.unsubscribe()).toEqual([]);
    expect(a.unsubscribe()).toEqual([]);
    expect(b.unsubscribe()).toEqual([{ type: "unsubscribe", id: "s1" }]);
    expect(registry.size).toBe(0);
  });

  it("shares one server subscription between filters that differ only in quick ids", () => {
    const registry = new SubscriptionRegistry();
    const got: string[] = [];
    const a = registry.subscribe({ entityTypes: ["field"], quickIds: ["field:sim.1.1.V_TEMP"] }, () => got.push("a"));
    const b = registry.subscribe({ entityTypes: ["field"], quickIds: ["field:sim.2.1.V_TEMP"] }, () => got.push("b"));
    expect(a.messages).toEqual([{ type: "subscribe", id: "s1",
      filter: { entityTypes: ["field"], quickIds: ["field:sim.1.1.V_TEMP"] } }]);
    expect(b.messages).toEqual([{ type: "subscribe", id: "s1",
      filter: { entityTypes: ["field"], quickIds: ["field:sim.1.1.V_TEMP", "field:sim.2.1.V_TEMP"] } }]);
    expect(registry.size).toBe(1);
    registry.dispatch(temp, ["s1"]);
    expect(got).toEqual(["a"]);
    expect(a.unsubscribe()).toEqual([{ type: "subscribe", id: "s1",
      filter: { entityTypes: ["field"], quickIds: ["field:sim.2.1.V_TEMP"] } }]);
    expect(b.unsubscribe()).toEqual([{ type: "unsubscribe", id: "s1" }]);
  });

  it("dispatches by the server's subscription ids, or by matching when there are none", () => {
    const registry = new SubscriptionRegistry();
    const got: string[] = [];
    registry.subscribe({ quickIds: ["field:sim.1.1.V_TEMP"] }, () => got.push("temp"));
    registry.subscribe({ entityTypes: ["node"] }, () => got.push("node"));
    registry.subscribe({ entityTypes: ["field"] }, () => { throw new Error("a bad listener does not stop others"); });
    expect(registry.dispatch(temp, ["s1"])).toBe(1);
    expect(got).toEqual(["temp"]);
    expect(registry.dispatch(temp)).toBe(2); // the throwing field listener counts, the node one is not called
    expect(got).toEqual(["temp", "temp"]);
    expect(registry.resubscribeMessages().map((m) => m.id)).toEqual(["s1", "s2", "s3"]);
  });
});

describe("server messages and backoff", () => {
  it("parses events and ignores everything else", () => {
    const message = JSON.stringify({ type: "event", subscriptions: ["s1"], data: temp });
    expect(parseServerMessage(message)).toEqual({ event: temp, subscriptions: ["s1"] });
    expect(parseServerMessage("not json")).toBeNull();
    expect(parseServerMessage(JSON.stringify({ type: "subscribed", id: "s1" }))).toBeNull();
    expect(parseServerMessage(JSON.stringify({ type: "event", data: { nope: 1 } }))).toBeNull();
  });

  it("backs off from 1 s doubling to 30 s", () => {
    expect(backoffDelay(0, () => 0)).toBe(1000);
    expect(backoffDelay(3, () => 0)).toBe(8000);
    expect(backoffDelay(10, () => 0)).toBe(30000);
    expect(backoffDelay(0, () => 1)).toBe(1200);
  });
});

class FakeSocket {
  static made: FakeSocket[] = [];
  readyState = 0;
  sent: unknown[] = [];
  onopen: ((ev: unknown) => void) | null = null;
  onclose: ((ev: { code?: number }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.made.push(this);
  }
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close() {
    this.readyState = 3;
  }
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  drop(code = 1006) {
    this.readyState = 3;
    this.onclose?.({ code });
  }
}

describe("LiveSocket", () => {
  it("subscribes on open, reconnects with backoff and re-subscribes, and delivers events", () => {
    FakeSocket.made = [];
    const timers: Array<{ fn: () => void; ms: number }> = [];
    const live = new LiveSocket({
      url: () => "ws://h/api/ws?access_token=t",
      createSocket: (url) => new FakeSocket(url),
      setTimer: (fn, ms) => timers.push({ fn, ms }),
      clearTimer: () => {},
    });
    const got: LiveEvent[] = [];
    const unsubscribe = live.subscribe({ quickIds: ["field:sim.1.1.V_TEMP"] }, (e) => got.push(e));
    const first = FakeSocket.made[0];
    expect(first.url).toContain("access_token=t");
    first.open();
    expect(first.sent).toEqual([{ type: "subscribe", id: "s1", filter: { quickIds: ["field:sim.1.1.V_TEMP"] } }]);
    first.onmessage?.({ data: JSON.stringify({ type: "event", subscriptions: ["s1"], data: temp }) });
    expect(got).toHaveLength(1);

    first.drop();
    expect(live.state).toBe("closed");
    expect(timers).toHaveLength(1);
    expect(timers[0].ms).toBeGreaterThanOrEqual(1000);
    timers[0].fn();
    const second = FakeSocket.made[1];
    second.open();
    expect(second.sent).toEqual(first.sent);
    unsubscribe();
    expect(second.sent.at(-1)).toEqual({ type: "unsubscribe", id: "s1" });
    live.stop();
    expect(second.readyState).toBe(3);
  });

  it("tells the app when the server refuses the token (4401)", () => {
    FakeSocket.made = [];
    let refused = 0;
    const live = new LiveSocket({
      url: () => "ws://h/api/ws?access_token=old",
      createSocket: (url) => new FakeSocket(url),
      setTimer: () => 0,
      clearTimer: () => {},
      onUnauthorized: () => (refused += 1),
    });
    live.start();
    FakeSocket.made[0].drop();
    expect(refused).toBe(0);
    live.start();
    live.restart();
    FakeSocket.made.at(-1)!.drop(4401);
    expect(refused).toBe(1);
    live.stop();
  });
});
