// @vitest-environment jsdom
import { cleanup, fireEvent, screen, waitFor } from "@testing-library/react";
import { useState } from "react";
import { afterEach, describe, expect, it, vi } from "vitest";

import { fakeFetch, renderWithProviders } from "../test/render";
import type { Widget } from "../widgets/model";
import { applySetting, WidgetEditor, widgetSettings, WidgetSettingsSchema } from "./WidgetEditor";

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

const gauge: Widget = {
  id: "w1", title: "Heat", showTitle: true, static: false, type: "gauge",
  layout: { x: 0, y: 0, w: 3, h: 2 }, config: { resource: "field:sim.1.1.V_TEMP", min: 10, max: 30, rangeFromField: true },
};

describe("widget settings (react-hook-form + zod)", () => {
  it("shows a widget's inputs as text, with the selects' defaults", () => {
    const values = widgetSettings(gauge);
    expect(WidgetSettingsSchema.safeParse(values).success).toBe(true);
    expect(values).toMatchObject({ title: "Heat", min: "10", max: "30", payload: "", duration: "-1h", rgbFormat: "hex",
      x: "0", w: "3" });
  });

  it("writes back only the key edited: untouched keys stay absent, a range typed by hand is kept", () => {
    const values = { ...widgetSettings(gauge), min: "0" };
    const edited = applySetting(gauge, "min", values);
    expect(edited.config).toEqual({ resource: "field:sim.1.1.V_TEMP", min: "0", max: 30 });
    expect(applySetting(gauge, "title", { ...values, title: "Heating" }).title).toBe("Heating");
    expect(applySetting(gauge, "static", { ...values, static: true }).static).toBe(true);
  });

  it("writes a gauge's thresholds as the amber and red bounds typed (either may be left empty)", () => {
    const values = { ...widgetSettings(gauge), warnFrom: "25", alarmFrom: "30" };
    expect(applySetting(gauge, "alarmFrom", values).config.thresholds).toEqual([25, 30]);
    expect(applySetting(gauge, "warnFrom", { ...values, alarmFrom: "" }).config.thresholds).toEqual([25]);
    expect(widgetSettings({ ...gauge, config: { ...gauge.config, thresholds: [30, 25] } }))
      .toMatchObject({ warnFrom: "25", alarmFrom: "30" });
  });

  it("keeps the position inside the 12 columns", () => {
    const wide = applySetting(gauge, "w", { ...widgetSettings(gauge), w: "20" });
    expect(wide.layout.w).toBeLessThanOrEqual(12);
    expect(wide.config).toBe(gauge.config);
  });
});

describe("the widget settings dialog", () => {
  it("writes each input back to the widget, and follows the widget", async () => {
    vi.stubGlobal("fetch", fakeFetch(() => ({ count: 0, limit: 0, offset: 0, data: [] })).fetch);
    const seen: Widget[] = [];
    const button: Widget = { ...gauge, type: "button", config: { resource: "", payload: "1" } };
    function Harness() {
      const [widget, setWidget] = useState(button);
      return <WidgetEditor widget={widget} problems={{}} onClose={() => undefined}
        onChange={(w) => { seen.push(w); setWidget(w); }} />;
    }
    renderWithProviders(<Harness />);
    fireEvent.change(screen.getByRole("textbox", { name: "payload" }), { target: { value: "toggle" } });
    await waitFor(() => expect(seen.at(-1)?.config.payload).toBe("toggle"));
    fireEvent.change(screen.getByRole("textbox", { name: "widget title" }), { target: { value: "Bell" } });
    await waitFor(() => expect(seen.at(-1)?.title).toBe("Bell"));
    expect(seen.at(-1)?.config).toEqual({ resource: "", payload: "toggle" });
    fireEvent.change(screen.getByRole("spinbutton", { name: "layout w" }), { target: { value: "40" } });
    await waitFor(() => expect((screen.getByRole("spinbutton", { name: "layout w" }) as HTMLInputElement).value)
      .toBe(String(seen.at(-1)?.layout.w)));
    expect(seen.at(-1)?.layout.w).toBeLessThanOrEqual(12);
  });

  it("holds the picked fields and a table's rows on the form, writing each change back", async () => {
    vi.stubGlobal("fetch", fakeFetch(() => ({ count: 0, limit: 0, offset: 0, data: [] })).fetch);
    const seen: Widget[] = [];
    const table: Widget = { ...gauge, type: "key_value_table", config: { items: [{ label: "Heat", resource: "a" }] } };
    const light: Widget = { ...gauge, id: "w2", type: "light", config: { power: "field:sim.1.3.V_STATUS" } };
    function Harness({ initial }: { initial: Widget }) {
      const [widget, setWidget] = useState(initial);
      return <WidgetEditor widget={widget} problems={{}} onClose={() => undefined}
        onChange={(w) => { seen.push(w); setWidget(w); }} />;
    }
    renderWithProviders(<Harness initial={table} />);
    fireEvent.click(screen.getByRole("button", { name: "Add row" }));
    await waitFor(() => expect(seen.at(-1)?.config.items).toHaveLength(2));
    fireEvent.change(screen.getByRole("textbox", { name: "row 2 label" }), { target: { value: "Hum" } });
    fireEvent.change(screen.getByRole("combobox", { name: "row 2 field" }), { target: { value: "sim.3.2.V_HUM" } });
    await waitFor(() => expect(seen.at(-1)?.config.items).toEqual([{ label: "Heat", resource: "a" },
      { label: "Hum", resource: "sim.3.2.V_HUM" }]));
    fireEvent.click(screen.getByRole("button", { name: "remove row 1" }));
    await waitFor(() => expect(seen.at(-1)?.config.items).toEqual([{ label: "Hum", resource: "sim.3.2.V_HUM" }]));
    cleanup();

    seen.length = 0;
    renderWithProviders(<Harness initial={light} />);
    const brightness = screen.getByRole("combobox", { name: "Brightness field" }) as HTMLInputElement;
    expect((screen.getByRole("combobox", { name: "Power field (on/off)" }) as HTMLInputElement).value)
      .toBe("field:sim.1.3.V_STATUS");
    fireEvent.change(brightness, { target: { value: "sim.1.4.V_PERCENTAGE" } });
    await waitFor(() => expect(seen.at(-1)?.config).toEqual({ power: "field:sim.1.3.V_STATUS",
      brightness: "sim.1.4.V_PERCENTAGE" })); // only the key edited is written
    expect(brightness.value).toBe("sim.1.4.V_PERCENTAGE");
  });
});
