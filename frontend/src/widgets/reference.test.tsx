// @vitest-environment jsdom
import { cleanup, screen, waitFor } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { fakeFetch, renderWithProviders } from "../test/render";
import type { Widget } from "./model";
import { WidgetBody } from "./Widgets";

const lamp = {
  id: "sim.1.3.V_STATUS", gatewayId: "sim", nodeId: "1", sourceId: "3", fieldId: "V_STATUS", name: "V_STATUS",
  metricType: "binary", unit: "", current: { value: true, timestamp: "2026-01-01T00:00:00Z" }, labels: {},
};

beforeEach(() => {
  sessionStorage.clear();
  sessionStorage.setItem("mc.role", "user");
});
afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

const widget = (type: string, config: Record<string, unknown>): Widget => ({
  id: "w", title: "Lamps", showTitle: true, static: false, type: type as Widget["type"],
  layout: { x: 0, y: 0, w: 4, h: 3 }, config,
});

describe("a MyController v2 widget", () => {
  it("control panel: the fields its filters select, each with the control that fits it, by name", async () => {
    const { fetch, calls } = fakeFetch((url) => {
      if (url.includes("/api/node")) return { count: 1, limit: 0, offset: 0, data: [{ id: "sim.1", name: "Living room" }] };
      if (url.includes("/api/source")) return { count: 1, limit: 0, offset: 0, data: [{ id: "sim.1.3", name: "Ceiling light" }] };
      return { count: 1, limit: 10, offset: 0, data: [lamp] };
    });
    vi.stubGlobal("fetch", fetch);
    renderWithProviders(<WidgetBody height={200} widget={widget("widget_control_panel", {
      type: "switch_toggle", resource: { type: "field", filters: { metricType: "binary" }, nameKey: "name", limit: 10 },
    })} />);
    const toggle = await screen.findByRole("switch", { name: "toggle Living room · Ceiling light · status" });
    expect(toggle.getAttribute("aria-checked")).toBe("true");
    const listed = decodeURIComponent(calls.find((u) => u.includes("/api/field?limit=10"))!);
    expect(listed).toContain('"k":"metricType","o":"eq","v":"binary"');
  });

  it("an image panel with a foreign address is linked (the console loads no foreign images)", () => {
    renderWithProviders(<WidgetBody height={200} widget={widget("widget_image_panel", {
      sourceType: "url", imageURL: "https://example.com/cam.jpg" })} />);
    expect(screen.getByRole("link").getAttribute("href")).toBe("https://example.com/cam.jpg");
  });

  it("one this console does not draw says so, and its config is not touched", async () => {
    renderWithProviders(<WidgetBody height={200} widget={widget("widget_clock_panel", { zone: "UTC" })} />);
    await waitFor(() => expect(screen.getByText(/Clock panel \(MyController v2\) widget is kept as it was sent/)).toBeTruthy());
  });
});
