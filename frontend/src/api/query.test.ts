import { describe, expect, it } from "vitest";

import { buildListQuery, nextSort, pageInfo, parseSearch, searchProblems } from "./query";

describe("buildListQuery", () => {
  it("encodes limit, offset, sortBy and filter as the API reads them", () => {
    const qs = buildListQuery({
      limit: 25,
      offset: 50,
      sortBy: [{ f: "name", o: "desc" }],
      filter: [{ k: "labels.room", o: "eq", v: "kitchen" }],
    });
    const params = new URLSearchParams(qs);
    expect(params.get("limit")).toBe("25");
    expect(params.get("offset")).toBe("50");
    expect(JSON.parse(params.get("sortBy")!)).toEqual([{ f: "name", o: "desc" }]);
    expect(JSON.parse(params.get("filter")!)).toEqual([{ k: "labels.room", o: "eq", v: "kitchen" }]);
  });

  it("leaves out empty parts and filters without a key", () => {
    expect(buildListQuery({ offset: 0, sortBy: [], filter: [{ k: " ", o: "eq", v: 1 }] })).toBe("");
    expect(buildListQuery({ limit: 10 })).toBe("limit=10");
  });
});

describe("parseSearch", () => {
  it("turns free text into an escaped name regex", () => {
    expect(parseSearch("living (room)")).toEqual([{ k: "name", o: "regex", v: "living \\(room\\)" }]);
  });

  it("reads key=value, comparisons and several parts", () => {
    expect(parseSearch("labels.room=kitchen; current.value>=21.5; metricType!=binary")).toEqual([
      { k: "labels.room", o: "eq", v: "kitchen" },
      { k: "current.value", o: "gte", v: 21.5 },
      { k: "metricType", o: "ne", v: "binary" },
    ]);
    expect(parseSearch("")).toEqual([]);
    expect(parseSearch("current.value=true")).toEqual([{ k: "current.value", o: "eq", v: true }]);
  });
});

describe("sorting and paging", () => {
  it("flips the direction on the same column and starts ascending on another", () => {
    expect(nextSort(undefined, "name")).toEqual({ f: "name", o: "asc" });
    expect(nextSort({ f: "name", o: "asc" }, "name")).toEqual({ f: "name", o: "desc" });
    expect(nextSort({ f: "name", o: "desc" }, "id")).toEqual({ f: "id", o: "asc" });
  });

  it("counts pages", () => {
    expect(pageInfo(0, 20, 0)).toEqual({ page: 1, pages: 1 });
    expect(pageInfo(41, 20, 40)).toEqual({ page: 3, pages: 3 });
  });
});

describe("searchProblems", () => {
  const node = { keys: ["id", "name", "gatewayId", "state", "state.status", "state.since", "labels", "others"],
    open: ["labels", "others"] };

  it("accepts names, known keys and keys under labels", () => {
    expect(searchProblems("kitchen", node)).toEqual([]);
    expect(searchProblems("state.status=up; labels.room=kitchen; others.battery_level>20", node)).toEqual([]);
    expect(searchProblems("Name~kit", node)).toEqual([]);
  });

  it("says when a part cannot be read", () => {
    expect(searchProblems("foo>>bar")[0]).toMatch(/two operators/);
    expect(searchProblems("=kitchen")[0]).toMatch(/needs a key/);
    expect(searchProblems("name=")[0]).toMatch(/needs a value/);
    expect(searchProblems("current.value>warm")[0]).toMatch(/compares numbers/);
  });

  it("says when a key is not there, or holds an object", () => {
    expect(searchProblems("state=up", node)[0]).toMatch(/state holds state\.status.*e\.g\. state\.status/);
    expect(searchProblems("colour=red", node)[0]).toMatch(/no key “colour”/);
  });
});
