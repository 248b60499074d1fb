import { describe, expect, it } from "vitest";

import { timeRange } from "./chartRange";

describe("a chart's time axis", () => {
  it("shows at least five minutes (or the chart's whole span) of a few seconds of data, ending at its last point", () => {
    expect(timeRange(1000, 1008, 3600)).toEqual([708, 1008]);
    expect(timeRange(1000, 1008, 60)).toEqual([948, 1008]);
    expect(timeRange(1000, 5000, 3600)).toEqual([1000, 5000]); // long enough: the data's own span
  });

  it("puts one instant at the end of the chart's span", () => {
    expect(timeRange(1000, 1000, 3600)).toEqual([1000 - 3600, 1000 + 72]);
  });
});
