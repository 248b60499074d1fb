import { describe, expect, it } from "vitest";

import { bareFieldId, rangeMs } from "./fields";

describe("field helpers", () => {
  it("turns chart ranges into milliseconds back from now", () => {
    expect(rangeMs("-15m")).toBe(-900_000);
    expect(rangeMs("-24h")).toBe(-86_400_000);
    expect(rangeMs("-7d")).toBe(-604_800_000);
    expect(rangeMs("soon")).toBe(-3_600_000);
  });

  it("takes field ids with or without the quick id prefix", () => {
    expect(bareFieldId("field:sim.1.1.V_TEMP")).toBe("sim.1.1.V_TEMP");
    expect(bareFieldId(" sim.1.1.V_TEMP ")).toBe("sim.1.1.V_TEMP");
  });
});
