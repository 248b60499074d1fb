import { describe, expect, it } from "vitest";

import { describeEvent, EventLog, matchesQuery } from "./eventLog";

describe("event log", () => {
  it("keeps the newest events, up to its size", () => {
    const log = new EventLog(2, () => 1000);
    log.add({ type: "created", entityType: "node", entityId: "a" });
    log.add({ type: "updated", entityType: "node", entityId: "b" });
    log.add({ type: "deleted", entityType: "node", entityId: "c" });
    expect(log.snapshot().map((e) => [e.entityId, e.seq, e.at])).toEqual([["c", 3, 1000], ["b", 2, 1000]]);
  });

  it("filters by entity type, event type and text in ids and names", () => {
    const event = { type: "updated" as const, entityType: "node", entityId: "sim.1", entity: { name: "Kitchen" } };
    expect(matchesQuery(event, { entityTypes: [], eventTypes: [], text: "kitch" })).toBe(true);
    expect(matchesQuery(event, { entityTypes: ["field"], eventTypes: [], text: "" })).toBe(false);
    expect(matchesQuery(event, { entityTypes: [], eventTypes: ["deleted"], text: "" })).toBe(false);
    expect(matchesQuery(event, { entityTypes: ["node"], eventTypes: ["updated"], text: "sim.1" })).toBe(true);
  });

  it("says what an event is about in a few words", () => {
    expect(describeEvent({ type: "updated", entityType: "field", entityId: "x",
      entity: { current: { value: 21.5 }, unit: "°C" } })).toBe("21.5 °C");
    expect(describeEvent({ type: "updated", entityType: "node", entityId: "x",
      entity: { state: { status: "down", message: "no heartbeat" } } })).toBe("down: no heartbeat");
    expect(describeEvent({ type: "deleted", entityType: "task", entityId: "t" })).toBe("deleted");
  });
});
