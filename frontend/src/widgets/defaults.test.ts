import { describe, expect, it } from "vitest";

import { dashboardFields, missingBindings, widgetBindings } from "./bindings";
import { emptyDashboard, newWidget } from "./model";
import { gaugeRange, niceBound, savedGaugeRange } from "./ranges";

describe("gauge ranges", () => {
  it("come from the unit: a temperature is not 0–100", () => {
    expect(gaugeRange("°C")).toEqual({ min: -10, max: 40 });
    expect(gaugeRange("%")).toEqual({ min: 0, max: 100 });
    expect(gaugeRange("hPa")).toEqual({ min: 950, max: 1050 });
    expect(gaugeRange(undefined)).toEqual({ min: 0, max: 100 });
  });

  it("widen to the values seen, rounded to numbers people read", () => {
    expect(gaugeRange("°C", [18, 47.2])).toEqual({ min: -10, max: 50 });
    expect(gaugeRange("W", [120, 1830])).toEqual({ min: 0, max: 2500 });
    expect(gaugeRange("", [-3, 7])).toEqual({ min: -10, max: 10 });
    expect(niceBound(1830 * 1.25, true)).toBe(2500);
    expect(niceBound(-5.5, false)).toBe(-10);
  });
});

describe("widget bindings", () => {
  it("finds every field a widget names", () => {
    expect(widgetBindings({ resource: "field:sim.1.1.V_TEMP" })).toEqual([["resource", "sim.1.1.V_TEMP"]]);
    expect(widgetBindings({ resources: ["field:a.1.1.X", "b.1.1.Y"], items: [{ resource: "c.1.1.Z" }] }))
      .toEqual([["resources.0", "a.1.1.X"], ["resources.1", "b.1.1.Y"], ["items.0.resource", "c.1.1.Z"]]);
  });

  it("refuses widgets bound to fields that do not exist", () => {
    const dashboard = emptyDashboard();
    const lamp = { ...newWidget("switch", [], "Lamp"), config: { resource: "field:sim.9.9.V_STATUS" } };
    const temp = { ...newWidget("gauge", [], "Now"), config: { resource: "field:sim.1.1.V_TEMP" } };
    dashboard.widgets = [temp, lamp];
    expect(dashboardFields(dashboard)).toEqual(["sim.1.1.V_TEMP", "sim.9.9.V_STATUS"]);
    expect(missingBindings(dashboard, new Set(["sim.1.1.V_TEMP"])))
      .toEqual({ "widgets.1.resource": "Lamp: there is no field sim.9.9.V_STATUS" });
  });
});

describe("a gauge saved without a range", () => {
  it("takes one from a unit it knows, widened by the value; keeps 0–100 for one it does not", () => {
    expect(savedGaugeRange("°C", 21.3)).toEqual({ min: -10, max: 40 });
    expect(savedGaugeRange("°C", 55)).toEqual({ min: -10, max: 100 });
    expect(savedGaugeRange("W", 1800)).toEqual({ min: 0, max: 2500 });
    expect(savedGaugeRange("", 5)).toBeNull();
    expect(savedGaugeRange("furlongs", 5)).toBeNull();
  });
});
