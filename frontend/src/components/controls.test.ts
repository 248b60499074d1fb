import { describe, expect, it } from "vitest";

import { checkValue, controlFor } from "./controls";

const field = (fieldId: string, metricType: string, labels: Record<string, string> = {}) =>
  ({ fieldId, metricType, labels });

describe("controlFor", () => {
  it("gives sensors no control, switches a switch and dimmers a 0–100 slider", () => {
    expect(controlFor(field("V_TEMP", "gauge_float"))).toEqual({ kind: "readonly" });
    expect(controlFor(field("V_TRIPPED", "binary"))).toEqual({ kind: "readonly" });
    expect(controlFor(field("V_STATUS", "binary"))).toEqual({ kind: "switch" });
    expect(controlFor(field("V_PERCENTAGE", "gauge"))).toEqual({ kind: "slider", min: 0, max: 100, step: 1 });
    expect(controlFor(field("Dimmer", "gauge"))).toEqual({ kind: "slider", min: 0, max: 100, step: 1 });
    expect(controlFor(field("CT", "gauge"))).toEqual({ kind: "slider", min: 153, max: 500, step: 1 });
  });

  it("lets labels decide: readonly, settable, min and max", () => {
    expect(controlFor(field("V_STATUS", "binary", { readonly: "true" }))).toEqual({ kind: "readonly" });
    expect(controlFor(field("V_TEMP", "gauge", { settable: "true", min: "5", max: "30" })))
      .toEqual({ kind: "slider", min: 5, max: 30, step: 1 });
    expect(controlFor(field("V_HVAC_SETPOINT_HEAT", "gauge_float"))).toEqual({ kind: "number" });
    expect(controlFor(field("V_TEXT", "string"))).toEqual({ kind: "text" });
  });
});

describe("checkValue", () => {
  const dimmer = controlFor(field("V_PERCENTAGE", "gauge"));

  it("refuses values out of range with the range, and text where a number goes", () => {
    expect(checkValue(dimmer, "150")).toEqual({ ok: false, problem: "150 is out of range: 0–100" });
    expect(checkValue(dimmer, "-5")).toEqual({ ok: false, problem: "-5 is out of range: 0–100" });
    expect(checkValue(dimmer, "bright")).toEqual({ ok: false, problem: "bright is not a number" });
    expect(checkValue(dimmer, "")).toEqual({ ok: false, problem: "type a value" });
    expect(checkValue({ kind: "number", min: 5 }, "4")).toEqual({ ok: false, problem: "4 is out of range: at least 5" });
  });

  it("sends numbers as numbers and text as typed", () => {
    expect(checkValue(dimmer, "40")).toEqual({ ok: true, value: 40 });
    expect(checkValue({ kind: "number" }, "21,5")).toEqual({ ok: true, value: 21.5 });
    expect(checkValue({ kind: "text" }, " hello ")).toEqual({ ok: true, value: "hello" });
  });
});
