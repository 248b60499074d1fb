import { describe, expect, it } from "vitest";

import {
  clampLayout,
  type Dashboard,
  findFreeSpot,
  fromHex,
  newWidget,
  normalizeDashboard,
  resolveOverlaps,
  toHex,
  validateDashboard,
  validateWidgetConfig,
} from "./model";

describe("validateWidgetConfig", () => {
  it("accepts a switch bound to a field (as a quick id) and refuses one without", () => {
    expect(validateWidgetConfig("switch", { resource: "sim.1.3.V_STATUS" })).toEqual({
      value: { resource: "field:sim.1.3.V_STATUS", onPayload: "1", offPayload: "0" },
      errors: {},
    });
    expect(validateWidgetConfig("switch", {}).errors.resource).toBe("choose a field");
    expect(validateWidgetConfig("switch", { resource: "sim.1" }).errors.resource).toMatch(/not a field id/);
    expect(validateWidgetConfig("switch", { resource: "field:sim.1.3.V_STATUS", onPayload: "on" }).value.onPayload)
      .toBe("on");
  });

  it("parses numbers and checks ranges", () => {
    const gauge = validateWidgetConfig("gauge", { resource: "sim.1.1.V_TEMP", min: "-10", max: "40" });
    expect(gauge).toEqual({ value: { resource: "field:sim.1.1.V_TEMP", min: -10, max: 40 }, errors: {} });
    expect(validateWidgetConfig("gauge", { resource: "sim.1.1.V_TEMP", min: 5, max: 5 }).errors.max).toBeDefined();
    expect(validateWidgetConfig("slider", { resource: "sim.1.4.V_PERCENTAGE", step: 0 }).errors.step).toBeDefined();
  });

  it("checks line chart fields, duration and window", () => {
    const ok = validateWidgetConfig("line_chart", { resources: "sim.1.1.V_TEMP, field:sim.2.1.V_TEMP", duration: "-6h" });
    expect(ok.errors).toEqual({});
    expect(ok.value.resources).toEqual(["field:sim.1.1.V_TEMP", "field:sim.2.1.V_TEMP"]);
    expect(ok.value.window).toBe("none");
    const bad = validateWidgetConfig("line_chart", { resources: [], duration: "1h", window: "5 minutes" });
    expect(Object.keys(bad.errors).sort()).toEqual(["duration", "resources", "window"]);
  });

  it("needs at least one light field and valid key-value rows", () => {
    expect(validateWidgetConfig("light", {}).errors.power).toBeDefined();
    const light = validateWidgetConfig("light", { brightness: "sim.1.4.V_PERCENTAGE" });
    expect(light.errors).toEqual({});
    expect(light.value).toMatchObject({ brightness: "field:sim.1.4.V_PERCENTAGE", power: null, rgb: null });
    expect(validateWidgetConfig("key_value_table", { items: [] }).errors.items).toBeDefined();
    const rows = validateWidgetConfig("key_value_table", { items: [{ label: "T", resource: "x" }] });
    expect(rows.errors["items.0.resource"]).toBeDefined();
  });
});

describe("layout", () => {
  it("clamps a layout onto the 12-column grid", () => {
    expect(clampLayout({ x: 11, w: 4, h: 0, y: -2 })).toEqual({ x: 8, w: 4, h: 1, y: 0 });
  });

  it("places a new widget in the first free spot", () => {
    expect(findFreeSpot([], 6, 4)).toEqual({ x: 0, y: 0, w: 6, h: 4 });
    expect(findFreeSpot([{ x: 0, y: 0, w: 6, h: 4 }], 6, 2)).toEqual({ x: 6, y: 0, w: 6, h: 2 });
    expect(findFreeSpot([{ x: 0, y: 0, w: 12, h: 2 }], 3, 2)).toEqual({ x: 0, y: 2, w: 3, h: 2 });
  });

  it("pushes widgets down so none overlap, keeping the moved one", () => {
    const a = newWidget("switch", []);
    const b = { ...newWidget("gauge", []), layout: { x: 0, y: 0, w: 3, h: 3 } };
    const [ra, rb] = resolveOverlaps([a, b], b.id);
    expect(rb.layout).toEqual({ x: 0, y: 0, w: 3, h: 3 });
    expect(ra.layout.y).toBe(3);
  });
});

describe("dashboards", () => {
  it("reports widget problems by index and needs a title", () => {
    const dashboard: Dashboard = {
      id: "home",
      title: " ",
      description: "",
      favorite: false,
      disabled: false,
      labels: {},
      widgets: [newWidget("switch", [])],
    };
    const { errors } = validateDashboard(dashboard);
    expect(errors.title).toBeDefined();
    expect(errors["widgets.0.resource"]).toMatch(/Switch: choose a field/);
  });

  it("fills what a foreign record lacks", () => {
    const d = normalizeDashboard({ id: "x", widgets: [{ type: "nope" } as never] });
    expect(d.title).toBe("x");
    expect(d.widgets[0].type).toBe("empty");
    expect(d.widgets[0].layout).toEqual({ x: 0, y: 0, w: 3, h: 2 });
  });
});

describe("light colours", () => {
  it("reads hex, RGBW hex and r,g,b, and writes the widget's format", () => {
    expect(toHex("FF8800")).toBe("#ff8800");
    expect(toHex("#ff8800ff")).toBe("#ff8800");
    expect(toHex("255, 136, 0")).toBe("#ff8800");
    expect(toHex("nonsense")).toBe("#ffffff");
    expect(fromHex("#FF8800", "hex")).toBe("#ff8800");
    expect(fromHex("#ff8800", "csv")).toBe("255,136,0");
  });
});
