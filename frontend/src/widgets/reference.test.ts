import { describe, expect, it } from "vitest";

import fixture from "../../../tests/fixtures/reference/console_calls.json";
import { fitLayouts, isReferenceType, normalizeDashboard, overlaps, validateDashboard, widgetLabel } from "./model";
import { referenceChart, referenceImage, referenceLight, referenceSelection, referenceUtilization } from "./reference";

type Call = { route: string; body?: { widgets?: Array<{ type: string; config: Record<string, unknown> }> } };
const calls = (fixture as unknown as { calls: Call[] }).calls; // the reference console's own calls
const reference = calls.find((c) => c.route === "POST /api/dashboard" && c.body?.widgets?.length)!.body!;

describe("MyController v2 widgets", () => {
  it("are kept with their config as sent, through the editor's normalising and checks", () => {
    const normal = normalizeDashboard(reference as never);
    expect(normal.widgets.map((w) => w.type)).toEqual(reference.widgets!.map((w) => w.type));
    const checked = validateDashboard(normal);
    expect(checked.errors).toEqual({});
    expect(checked.value.widgets.map((w) => w.config)).toEqual(reference.widgets!.map((w) => w.config));
    expect(isReferenceType("widget_charts_panel") && !isReferenceType("line_chart")).toBe(true);
    expect(widgetLabel("widget_control_panel")).toBe("Control panel (MyController v2)");
    expect(widgetLabel("widget_clock")).toBe("Clock (MyController v2)");
  });

  it("laid out on the reference's wider grid, fit these 12 columns side by side, none over another", () => {
    const layouts = normalizeDashboard(reference as never).widgets.map((w) => w.layout);
    expect(layouts.slice(0, 3).map((l) => [l.x, l.w])).toEqual([[0, 7], [7, 3], [10, 2]]);
    expect(layouts.every((a, i) => layouts.every((b, j) => i === j || !overlaps(a, b)))).toBe(true);
    expect(fitLayouts([{ x: 0, y: 0, w: 24, h: 8 }, { x: 24, y: 0, w: 12, h: 6 }]).map((l) => [l.x, l.w]))
      .toEqual([[0, 8], [8, 4]]); // the v2 export's own
    expect(fitLayouts([{ x: 3, y: 1, w: 6, h: 2 }])).toEqual([{ x: 3, y: 1, w: 6, h: 2 }]); // ours: untouched
  });

  it("read a charts or control panel's fields by filters, or by quick ids", () => {
    const [chart, control] = reference.widgets!;
    expect(referenceSelection(chart.config.resource)).toEqual({
      ids: [], filter: [{ k: "metricType", o: "eq", v: "gauge_float" }], limit: 5 });
    expect(referenceSelection(control.config.resource)?.limit).toBe(10);
    expect(referenceSelection({ quickIds: ["field:gw.1.1.V_TEMP", "node:gw.1"] })?.ids).toEqual(["gw.1.1.V_TEMP"]);
    expect(referenceSelection({ type: "node", filters: { a: 1 } })).toBeNull();
    expect(referenceChart(chart.config)).toEqual({ duration: "-6h", window: "5m", fn: "mean" });
    expect(referenceChart({})).toEqual({ duration: "-1h", window: "", fn: "mean" });
  });

  it("read a light, a utilization and an image panel", () => {
    const byType = Object.fromEntries(reference.widgets!.map((w) => [w.type, w.config]));
    expect(referenceLight(byType.widget_light_panel)).toEqual({ power: "gw1.1.1.V_STATUS", brightness: "", rgb: "" });
    expect(referenceUtilization(byType.widget_utilization_panel)).toEqual({
      resource: "field:gw1.1.2.V_TEMP", min: 0, max: 100, unit: "°C" });
    expect(referenceImage(byType.widget_image_panel, "http://127.0.0.1:8000")).toEqual({
      url: "https://example.com/cam.jpg", inline: false }); // the console's pages load no foreign images: linked
    expect(referenceImage({ imageURL: "/files/cam.jpg" }, "http://h")).toEqual({ url: "http://h/files/cam.jpg", inline: true });
    expect(referenceImage({ imageURL: "javascript:alert(1)" }, "http://h")).toBeNull();
  });
});
