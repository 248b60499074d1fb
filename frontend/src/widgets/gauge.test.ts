// @vitest-environment jsdom
import { describe, expect, it } from "vitest";

import { gaugeColour } from "./Widgets";

describe("a gauge's colour", () => {
  it("is plain without thresholds: a room at 21 °C is no warning", () => {
    expect(gaugeColour(21, 0.62, [])).toBe("#2b7bb9");
  });

  it("turns amber, then red, past the thresholds given (in any order)", () => {
    expect(gaugeColour(20, 0.5, [30, 25])).toBe("#29a36a");
    expect(gaugeColour(26, 0.7, [30, 25])).toBe("#f0a202");
    expect(gaugeColour(31, 0.9, [25, 30])).toBe("#e4572e");
    expect(gaugeColour(26, 0.7, [25])).toBe("#f0a202");
  });

  it("a utilization (no thresholds passed at all) by how full it is", () => {
    expect(gaugeColour(50, 0.5)).toBe("#29a36a");
    expect(gaugeColour(90, 0.9)).toBe("#e4572e");
  });
});
