// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, screen } from "@testing-library/react";
import { useState } from "react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { fakeFetch, renderWithProviders } from "../test/render";
import { Dialog } from "./Dialog";
import { ErrorBoundary } from "./ErrorBoundary";
import { ColourPicker, COLOUR_SETTLE_MS, FieldControl } from "./FieldControl";
import { ResourceTable } from "./ResourceTable";
import type { FieldRecord } from "../live/fields";

const field = (fieldId: string, metricType: FieldRecord["metricType"], value: unknown, unit = ""): FieldRecord => ({
  id: `sim.1.1.${fieldId}`, gatewayId: "sim", nodeId: "1", sourceId: "1", fieldId, name: fieldId, metricType, unit,
  current: { value, timestamp: "2026-01-01T00:00:00Z", isReceived: true, sequence: 1 }, labels: {},
  modifiedOn: null, noChangeSince: null, lastSeen: null,
});

beforeEach(() => {
  sessionStorage.clear();
  sessionStorage.setItem("mc.role", "user"); // the role is known: no profile request
});
afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("FieldControl", () => {
  it("gives a sensor no box to set it", () => {
    renderWithProviders(<FieldControl field={field("V_TEMP", "gauge_float", 21.5, "°C")} label="Living room · Temperature" />);
    expect(screen.getByText("21.5 °C")).toBeTruthy();
    expect(screen.queryByRole("textbox")).toBeNull();
    expect(screen.queryByRole("button", { name: "Set" })).toBeNull();
  });

  it("gives a dimmer a slider over its range, named by the field's name", () => {
    renderWithProviders(<FieldControl field={field("V_PERCENTAGE", "gauge", 40, "%")} label="Table lamp · level" />);
    const slider = screen.getByRole("slider", { name: "set Table lamp · level" }) as HTMLInputElement;
    expect([slider.min, slider.max, slider.value]).toEqual(["0", "100", "40"]);
  });

  it("refuses a value out of range with the range, and sends nothing", () => {
    const { fetch, calls } = fakeFetch(() => ({ sent: 1 }));
    vi.stubGlobal("fetch", fetch);
    const setpoint = { ...field("V_HVAC_SETPOINT_HEAT", "gauge_float", 20, "°C"), labels: { min: "5", max: "30" } };
    // min and max labels make it a slider; a plain number field with a minimum shows the box
    renderWithProviders(<FieldControl field={{ ...setpoint, labels: { min: "5" } }} label="Heating" />);
    fireEvent.change(screen.getByRole("textbox", { name: "new value for Heating" }), { target: { value: "4" } });
    fireEvent.click(screen.getByRole("button", { name: "Set" }));
    expect(screen.getByRole("alert").textContent).toBe("4 is out of range: at least 5");
    expect(calls).toEqual([]);
  });
});

describe("ErrorBoundary", () => {
  function Boom(): never {
    throw new Error("kaput");
  }

  it("shows what failed in place of the page, and lets the rest live", () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const error = vi.spyOn(console, "error").mockImplementation(() => undefined);
    render(<div><p>shell</p><ErrorBoundary what="This widget"><Boom /></ErrorBoundary></div>);
    expect(screen.getByText("shell")).toBeTruthy();
    expect(screen.getByRole("alert").textContent).toContain("This widget could not be shown: kaput");
    warn.mockRestore();
    error.mockRestore();
  });
});

describe("Dialog", () => {
  function Opener() {
    const [open, setOpen] = useState(false);
    return (
      <>
        <button type="button" onClick={() => setOpen(true)}>open</button>
        {open && (
          <Dialog title="Settings" label="widget settings" onClose={() => setOpen(false)}>
            <input aria-label="first" />
            <button type="button">last</button>
          </Dialog>
        )}
      </>
    );
  }

  it("is modal, takes the focus, keeps Tab inside, closes on Escape and gives the focus back", () => {
    render(<Opener />);
    const opener = screen.getByRole("button", { name: "open" });
    opener.focus();
    fireEvent.click(opener);
    const dialog = screen.getByRole("dialog", { name: "widget settings" });
    expect(dialog.getAttribute("aria-modal")).toBe("true");
    expect(document.activeElement).toBe(screen.getByLabelText("first"));
    screen.getByRole("button", { name: "last" }).focus();
    fireEvent.keyDown(dialog, { key: "Tab" });
    expect(document.activeElement).toBe(screen.getByLabelText("first"));
    fireEvent.keyDown(dialog, { key: "Escape" });
    expect(screen.queryByRole("dialog")).toBeNull();
    expect(document.activeElement).toBe(opener);
  });
});

describe("ResourceTable", () => {
  it("says a search names a key the rows do not have, and asks the server nothing", async () => {
    const { fetch, calls } = fakeFetch(() => ({ count: 0, limit: 25, offset: 0, data: [] }));
    vi.stubGlobal("fetch", fetch);
    renderWithProviders(<ResourceTable resource="node" columns={[{ key: "name", label: "Name", render: () => "" }]} />,
      "/nodes?q=state%3Dup");
    expect((await screen.findByRole("alert")).textContent).toContain("state holds state.status");
    await act(async () => undefined);
    expect(calls).toEqual([]);
    expect(screen.getByRole("searchbox", { name: "filter" }).getAttribute("aria-invalid")).toBe("true");
  });

  it("marks the sorted column for screen readers", async () => {
    const { fetch } = fakeFetch(() => ({ count: 1, limit: 25, offset: 0, data: [{ id: "a", name: "A" }] }));
    vi.stubGlobal("fetch", fetch);
    renderWithProviders(<ResourceTable<{ id: string; name: string }> resource="node"
      columns={[{ key: "name", label: "Name", render: (r) => r.name }]} defaultSort={{ f: "name", o: "desc" }} />);
    await screen.findByText("A");
    expect(screen.getByRole("columnheader", { name: /Name/ }).getAttribute("aria-sort")).toBe("descending");
  });
});

describe("ColourPicker", () => {
  it("sends one colour per choice, not one per move, and never the same colour twice", () => {
    vi.useFakeTimers();
    try {
      const sent: string[] = [];
      render(<ColourPicker value="#ffffff" label="colour lamp" onCommit={(hex) => sent.push(hex)} />);
      const input = screen.getByLabelText("colour lamp") as HTMLInputElement;
      for (const hex of ["#ff0000", "#ee1100", "#dd2200", "#cc3300"]) fireEvent.input(input, { target: { value: hex } });
      expect(input.value).toBe("#cc3300"); // the swatch follows the pointer
      expect(sent).toEqual([]);
      fireEvent.change(input, { target: { value: "#cc3300" } }); // released: the native change event
      expect(sent).toEqual(["#cc3300"]);
      act(() => void vi.advanceTimersByTime(COLOUR_SETTLE_MS * 2));
      expect(sent).toEqual(["#cc3300"]); // the settle timer does not send it again
      fireEvent.input(input, { target: { value: "#00ff00" } });
      act(() => void vi.advanceTimersByTime(COLOUR_SETTLE_MS));
      expect(sent).toEqual(["#cc3300", "#00ff00"]); // held still while the picker stays open
    } finally {
      vi.useRealTimers();
    }
  });
});
