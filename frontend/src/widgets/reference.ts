// MyController v2's dashboard widgets (widget_charts_panel, widget_control_panel, widget_light_panel,
// widget_utilization_panel, widget_image_panel, widget_empty_panel), read from their config as the reference stores
// it, for Widgets.tsx to draw with this console's widgets. Pure: no React in here. Their config is never rewritten.

import type { Filter } from "../api/query";
import { RANGES } from "./model";

type Obj = Record<string, unknown>;

const obj = (value: unknown): Obj => (value && typeof value === "object" && !Array.isArray(value) ? value as Obj : {});
const text = (value: unknown) => (typeof value === "string" ? value.trim() : "");
const bare = (id: string) => id.replace(/^field:/, "");

/** Which fields a widget's `resource` names: by quick id(s), or by filters on the field list (at most `limit`). */
export interface FieldSelection {
  ids: string[];
  filter: Filter[];
  limit: number;
}

export const SELECTION_LIMIT = 10;

export function referenceSelection(resource: unknown): FieldSelection | null {
  const r = obj(resource);
  if (r.type !== undefined && r.type !== "field") return null; // nodes, sources…: not drawn
  const limit = Math.min(50, Math.max(1, Number(r.limit) || SELECTION_LIMIT));
  const ids = [text(r.quickId), ...(Array.isArray(r.quickIds) ? r.quickIds.map(text) : [])]
    .filter((id) => id && (!id.includes(":") || id.startsWith("field:"))).map(bare);
  if (ids.length) return { ids: ids.slice(0, limit), filter: [], limit };
  const filters = Object.entries(obj(r.filters));
  if (!filters.length) return null;
  const filter: Filter[] = filters.map(([k, v]) => (Array.isArray(v) ? { k, o: "in", v } : { k, o: "eq", v }));
  return { ids: [], filter, limit };
}

/** A charts panel's history: range, window and function, in this console's terms. */
export function referenceChart(config: unknown): { duration: string; window: string; fn: string } {
  const chart = obj(obj(config).chart);
  const duration = /^-\d+(ms|s|m|h|d|w)$/.test(text(chart.duration)) ? text(chart.duration) : "-1h";
  const interval = text(chart.interval);
  const window = /^(\d+(ms|s|m|h|d|w))+$/.test(interval) ? interval
    : RANGES.find((r) => r.value === duration)?.window ?? "";
  return { duration, window, fn: text(chart.metricFunction) || "mean" };
}

/** A light panel's fields (its fieldIds) as this console's light widget config. */
export function referenceLight(config: unknown): { power: string; brightness: string; rgb: string } {
  const ids = obj(obj(config).fieldIds);
  return { power: text(ids.power), brightness: text(ids.brightness), rgb: text(ids.rgb) };
}

/** A utilization panel as a gauge: the field, its range (0–100 unless the panel says) and unit. */
export function referenceUtilization(config: unknown): { resource: string; min: number; max: number; unit: string } {
  const c = obj(config);
  const r = obj(c.resource);
  const min = Number(c.minimumValue ?? r.minimumValue ?? 0);
  const max = Number(c.maximumValue ?? r.maximumValue ?? 100);
  const range = Number.isFinite(min) && Number.isFinite(max) && max > min ? { min, max } : { min: 0, max: 100 };
  return { resource: text(r.quickId), ...range, unit: text(r.unit) };
}

/** An image panel's picture: shown when this console's pages may load it (same origin or data:), else linked. */
export function referenceImage(config: unknown, origin: string): { url: string; inline: boolean } | null {
  const c = obj(config);
  const url = text(c.imageURL) || text(c.url);
  if (!url) return null;
  if (url.startsWith("data:image/")) return { url, inline: true };
  try {
    const parsed = new URL(url, origin);
    if (!["http:", "https:"].includes(parsed.protocol)) return null;
    return { url: parsed.href, inline: parsed.origin === origin };
  } catch {
    return null;
  }
}
