import { describe, expect, it } from "vitest";

import { fieldLabel, fieldParts, fieldWord } from "./names";

const lamp = { id: "sim.1.3.V_STATUS", gatewayId: "sim", nodeId: "1", sourceId: "3", fieldId: "V_STATUS", name: "V_STATUS" };

describe("names people gave", () => {
  it("shows a field by its node's and source's names and a word for it", () => {
    expect(fieldLabel(lamp, { id: "sim.1", name: "Living room" }, { id: "sim.1.3", name: "Ceiling light" }))
      .toBe("Living room · Ceiling light · status");
    expect(fieldLabel(lamp, undefined, { id: "sim.1.3", name: "Ceiling light" }, false)).toBe("Ceiling light · status");
  });

  it("falls back to ids where nothing is named, and says a thing once", () => {
    expect(fieldLabel(lamp)).toBe("1 · 3 · status");
    const temp = { ...lamp, id: "sim.1.1.V_TEMP", sourceId: "1", fieldId: "V_TEMP", name: "V_TEMP" };
    expect(fieldLabel(temp, { id: "sim.1", name: "Kitchen" }, { id: "sim.1.1", name: "Temperature" }))
      .toBe("Kitchen · Temperature");
  });

  it("keeps a name its user gave the field", () => {
    expect(fieldWord({ fieldId: "V_STATUS", name: "night mode" })).toBe("night mode");
    expect(fieldWord({ fieldId: "V_HVAC_SPEED", name: "" })).toBe("hvac speed");
  });

  it("reads field ids with or without the quick id prefix", () => {
    expect(fieldParts("field:sim.1.3.V_STATUS")).toMatchObject({ gatewayId: "sim", nodeId: "1", fieldId: "V_STATUS" });
    expect(fieldParts("sim.1.3")).toBeNull();
  });
});
