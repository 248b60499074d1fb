// Dashboards and widgets in the reference's shape ({id, title, ..., widgets[{id, title, showTitle, static, type,
// layout{w,h,x,y}, config}]}), with the checks the editor runs before saving. Pure: no React in here.

export const GRID_COLUMNS = 12;

export type WidgetType =
  | "switch" | "button" | "slider" | "line_chart" | "gauge" | "light" | "key_value_table" | "empty";

export interface Layout {
  w: number;
  h: number;
  x: number;
  y: number;
}

/** MyController v2's widget types (widget_charts_panel, widget_control_panel, …): kept with their config as sent;
 * the common ones are drawn (reference.ts, Widgets.tsx), none is offered for new widgets. */
export type ReferenceType = `widget_${string}`;

export const REFERENCE_TYPE = /^widget_[a-z0-9_]{1,64}$/;

export function isReferenceType(type: unknown): type is ReferenceType {
  return typeof type === "string" && REFERENCE_TYPE.test(type);
}

export interface Widget {
  id: string;
  title: string;
  showTitle: boolean;
  static: boolean;
  type: WidgetType | ReferenceType;
  layout: Layout;
  config: Record<string, unknown>;
}

export interface Dashboard {
  id: string;
  title: string;
  description: string;
  favorite: boolean;
  disabled: boolean;
  labels: Record<string, string>;
  widgets: Widget[];
}

export interface WidgetSpec {
  label: string;
  size: { w: number; h: number };
  defaults: Record<string, unknown>;
}

// Config keys are the API's (chalicelib/api/dashboards.py): fields are named by quick id ("field:gw.1.1.V_TEMP").
export const WIDGETS: Record<WidgetType, WidgetSpec> = {
  switch: { label: "Switch", size: { w: 3, h: 2 }, defaults: { resource: "", onPayload: "1", offPayload: "0" } },
  button: { label: "Button", size: { w: 3, h: 2 }, defaults: { resource: "", payload: "toggle" } },
  slider: { label: "Slider", size: { w: 4, h: 2 }, defaults: { resource: "", min: 0, max: 100, step: 1 } },
  line_chart: {
    label: "Line chart",
    size: { w: 6, h: 4 },
    defaults: { resources: [], duration: "-1h", window: "none", function: "mean" },
  },
  gauge: { label: "Gauge", size: { w: 3, h: 3 }, defaults: { resource: "", min: 0, max: 100 } },
  light: {
    label: "Light",
    size: { w: 4, h: 3 },
    defaults: { power: "", brightness: "", rgb: "", rgbFormat: "hex" },
  },
  key_value_table: { label: "Key-value table", size: { w: 4, h: 3 }, defaults: { items: [] } },
  empty: { label: "Empty", size: { w: 2, h: 2 }, defaults: {} },
};

export const WIDGET_TYPES = Object.keys(WIDGETS) as WidgetType[];

const REFERENCE_LABELS: Record<string, string> = {
  widget_charts_panel: "Charts panel", widget_control_panel: "Control panel", widget_empty_panel: "Empty panel",
  widget_light_panel: "Light panel", widget_utilization_panel: "Utilization panel", widget_image_panel: "Image panel",
};

/** What a widget type is called ("Line chart"; "Charts panel (MyController v2)"). */
export function widgetLabel(type: string): string {
  if (type in WIDGETS) return WIDGETS[type as WidgetType].label;
  const name = REFERENCE_LABELS[type] ?? type.replace(/^widget_/, "").replace(/_/g, " ");
  return `${name.charAt(0).toUpperCase()}${name.slice(1)} (MyController v2)`;
}

export const RANGES: ReadonlyArray<{ value: string; label: string; window: string }> = [
  { value: "-15m", label: "15 minutes", window: "" },
  { value: "-1h", label: "1 hour", window: "" },
  { value: "-6h", label: "6 hours", window: "5m" },
  { value: "-24h", label: "24 hours", window: "15m" },
  { value: "-7d", label: "7 days", window: "1h" },
  { value: "-30d", label: "30 days", window: "6h" },
];

export interface Checked<T> {
  value: T;
  errors: Record<string, string>;
}

const FIELD_ID = /^(field:)?[^\s.:]+\.[^\s.]+\.[^\s.]+\.[^\s.]+$/;
const RANGE = /^-\d+(ms|s|m|h|d|w)$/;
const WINDOW = /^(\d+(ms|s|m|h|d|w))+$/;

/** A field id as the action and metric APIs take it: "field:gw.node.source.field". */
export function fieldQuickId(id: string): string {
  const text = id.trim();
  return text.startsWith("field:") ? text : `field:${text}`;
}

export function isFieldId(value: unknown): value is string {
  return typeof value === "string" && FIELD_ID.test(value.trim());
}

function num(value: unknown, fallback: number): number {
  const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  return typeof n === "number" && Number.isFinite(n) ? n : fallback;
}

function requireField(config: Record<string, unknown>, key: string, errors: Record<string, string>): string {
  const value = typeof config[key] === "string" ? (config[key] as string).trim() : "";
  if (!value) errors[key] = "choose a field";
  else if (!isFieldId(value)) errors[key] = `${value} is not a field id (gateway.node.source.field)`;
  return value ? fieldQuickId(value) : "";
}

function optionalField(config: Record<string, unknown>, key: string, errors: Record<string, string>): string {
  const value = typeof config[key] === "string" ? (config[key] as string).trim() : "";
  if (value && !isFieldId(value)) errors[key] = `${value} is not a field id (gateway.node.source.field)`;
  return value ? fieldQuickId(value) : "";
}

function range(config: Record<string, unknown>, errors: Record<string, string>): { min: number; max: number } {
  const min = num(config.min, 0);
  const max = num(config.max, 100);
  if (!(max > min)) errors.max = "max must be greater than min";
  return { min, max };
}

/** A list of field ids from a list or the comma-separated text an editor holds. */
export function fieldList(value: unknown): string[] {
  const items = Array.isArray(value) ? value : typeof value === "string" ? value.split(",") : [];
  return items.map((item) => String(item).trim()).filter(Boolean);
}

/**
 * The widget's config with defaults filled, numbers parsed and field ids as quick ids, and what is wrong with it
 * (key → message). Keys the API does not know are kept (it allows extras).
 */
export function validateWidgetConfig(type: WidgetType | ReferenceType, config: Record<string, unknown>):
Checked<Record<string, unknown>> {
  const errors: Record<string, string> = {};
  if (isReferenceType(type)) return { value: config, errors }; // the reference's: stored as sent
  const spec = WIDGETS[type];
  if (!spec) return { value: config, errors: { type: `unknown widget type ${String(type)}` } };
  const c = { ...spec.defaults, ...config };
  switch (type) {
    case "switch": {
      const resource = requireField(c, "resource", errors);
      const onPayload = String(c.onPayload ?? "1").trim() || "1";
      const offPayload = String(c.offPayload ?? "0").trim() || "0";
      return { value: { ...c, resource, onPayload, offPayload }, errors };
    }
    case "button": {
      const resource = requireField(c, "resource", errors);
      const payload = String(c.payload ?? "").trim();
      if (!payload) errors.payload = "a payload is required";
      return { value: { ...c, resource, payload }, errors };
    }
    case "slider": {
      const resource = requireField(c, "resource", errors);
      const { min, max } = range(c, errors);
      const step = num(c.step, 1);
      if (!(step > 0)) errors.step = "step must be positive";
      return { value: { ...c, resource, min, max, step }, errors };
    }
    case "gauge": {
      const resource = requireField(c, "resource", errors);
      return { value: { ...c, resource, ...range(c, errors) }, errors };
    }
    case "line_chart": {
      const resources = fieldList(c.resources);
      if (resources.length === 0) errors.resources = "choose at least one field";
      else if (resources.length > 10) errors.resources = "at most 10 fields";
      const bad = resources.find((f) => !isFieldId(f));
      if (bad) errors.resources = `${bad} is not a field id (gateway.node.source.field)`;
      const duration = String(c.duration ?? "-1h").trim();
      if (!RANGE.test(duration)) errors.duration = "range is like -15m, -1h or -7d";
      const window = String(c.window ?? "").trim() || "none";
      if (window !== "none" && !WINDOW.test(window)) errors.window = "window is like 1m or 1h, or none for raw points";
      return { value: { ...c, resources: resources.map(fieldQuickId), duration, window }, errors };
    }
    case "light": {
      const power = optionalField(c, "power", errors);
      const brightness = optionalField(c, "brightness", errors);
      const rgb = optionalField(c, "rgb", errors);
      if (!power && !brightness && !rgb && !c.colorTemperature) {
        errors.power = "choose a power, brightness or colour field";
      }
      const rgbFormat = c.rgbFormat === "csv" ? "csv" : "hex";
      // The API takes null, not "", for a part the light does not have.
      return { value: { ...c, power: power || null, brightness: brightness || null, rgb: rgb || null, rgbFormat },
        errors };
    }
    case "key_value_table": {
      const items = Array.isArray(c.items) ? c.items : [];
      const value = items.map((item, index) => {
        const r = (item && typeof item === "object" ? item : {}) as Record<string, unknown>;
        const resource = String(r.resource ?? "").trim();
        if (!isFieldId(resource)) errors[`items.${index}.resource`] = `row ${index + 1}: not a field id`;
        return { ...r, label: String(r.label ?? "").trim(), resource: resource ? fieldQuickId(resource) : "" };
      });
      if (value.length === 0) errors.items = "add at least one row";
      if (value.length > 50) errors.items = "at most 50 rows";
      return { value: { ...c, items: value }, errors };
    }
    case "empty":
      return { value: { ...c }, errors };
  }
}

/** The layout clamped onto the grid: 1–12 wide, 1–20 high, inside the columns. */
export function clampLayout(layout: Partial<Layout>): Layout {
  const w = Math.min(GRID_COLUMNS, Math.max(1, Math.round(num(layout.w, 3))));
  const h = Math.min(20, Math.max(1, Math.round(num(layout.h, 2))));
  const x = Math.min(GRID_COLUMNS - w, Math.max(0, Math.round(num(layout.x, 0))));
  const y = Math.max(0, Math.round(num(layout.y, 0)));
  return { w, h, x, y };
}

export function overlaps(a: Layout, b: Layout): boolean {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

/** The first free spot (top to bottom, left to right) for a w×h widget among the others. */
export function findFreeSpot(others: Layout[], w: number, h: number): Layout {
  const width = Math.min(GRID_COLUMNS, Math.max(1, w));
  for (let y = 0; y < 1000; y += 1) {
    for (let x = 0; x + width <= GRID_COLUMNS; x += 1) {
      const candidate = { x, y, w: width, h };
      if (!others.some((o) => overlaps(o, candidate))) return candidate;
    }
  }
  return { x: 0, y: Math.max(0, ...others.map((o) => o.y + o.h)), w: width, h };
}

/** Moves widgets down until none overlaps, keeping `fixedId` where the user put it. */
export function resolveOverlaps(widgets: Widget[], fixedId?: string): Widget[] {
  const order = [...widgets].sort((a, b) =>
    a.id === fixedId ? -1 : b.id === fixedId ? 1 : a.layout.y - b.layout.y || a.layout.x - b.layout.x);
  const placed: Widget[] = [];
  for (const widget of order) {
    const layout = { ...widget.layout };
    while (placed.some((p) => overlaps(p.layout, layout))) layout.y += 1;
    placed.push({ ...widget, layout });
  }
  const byId = new Map(placed.map((w) => [w.id, w]));
  return widgets.map((w) => byId.get(w.id) ?? w);
}

export function newId(prefix: string): string {
  const random = Math.random().toString(36).slice(2, 8);
  return `${prefix}_${Date.now().toString(36)}${random}`;
}

export function newWidget(type: WidgetType, others: Layout[], title?: string): Widget {
  const spec = WIDGETS[type];
  return {
    id: newId("w"),
    title: title ?? spec.label,
    showTitle: true,
    static: false,
    type,
    layout: findFreeSpot(others, spec.size.w, spec.size.h),
    config: { ...spec.defaults },
  };
}

/** A dashboard as the API will store it, with its problems; widget errors are keyed "widgets.<i>.<key>". */
export function validateDashboard(dashboard: Dashboard): Checked<Dashboard> {
  const errors: Record<string, string> = {};
  const id = dashboard.id.trim();
  if (!id) errors.id = "an id is required";
  else if (!/^[A-Za-z0-9_:@~-]{1,128}$/.test(id)) errors.id = "id: letters, digits, _ - : @ ~ (up to 128)";
  const title = dashboard.title.trim();
  if (!title) errors.title = "a title is required";
  const seen = new Set<string>();
  const widgets = dashboard.widgets.map((widget, index) => {
    if (seen.has(widget.id)) errors[`widgets.${index}.id`] = `duplicate widget id ${widget.id}`;
    seen.add(widget.id);
    const checked = validateWidgetConfig(widget.type, widget.config);
    for (const [key, message] of Object.entries(checked.errors)) {
      errors[`widgets.${index}.${key}`] = `${widget.title || widgetLabel(widget.type)}: ${message}`;
    }
    return { ...widget, title: widget.title.trim(), layout: clampLayout(widget.layout), config: checked.value };
  });
  return { value: { ...dashboard, id, title, widgets }, errors };
}

export function emptyDashboard(): Dashboard {
  return { id: newId("dash"), title: "", description: "", favorite: false, disabled: false, labels: {}, widgets: [] };
}

/** Layouts made on a wider grid (MyController v2's console lays widgets out on more than 12 columns) fitted to
 * these 12: each widget's left and right edges scaled alike, so that neighbours stay side by side, heights kept. */
export function fitLayouts(layouts: Array<Partial<Layout>>): Layout[] {
  const right = Math.max(GRID_COLUMNS, ...layouts.map((l) => num(l.x, 0) + num(l.w, 1)));
  if (right <= GRID_COLUMNS) return layouts.map(clampLayout);
  const scale = GRID_COLUMNS / right;
  return layouts.map((l) => {
    const x = Math.round(num(l.x, 0) * scale);
    const end = Math.round((num(l.x, 0) + num(l.w, 1)) * scale);
    return clampLayout({ ...l, x, w: Math.max(1, end - x) });
  });
}

/** Fills what an older or foreign record lacks, so the editor can trust the shape. */
export function normalizeDashboard(raw: Partial<Dashboard> & { id: string }): Dashboard {
  const widgets = raw.widgets ?? [];
  const layouts = fitLayouts(widgets.map((w) => w.layout ?? {}));
  return {
    id: raw.id,
    title: raw.title ?? raw.id,
    description: raw.description ?? "",
    favorite: Boolean(raw.favorite),
    disabled: Boolean(raw.disabled),
    labels: raw.labels ?? {},
    widgets: resolveOverlaps(widgets.map((w, i) => ({
      id: w.id || `w${i}`,
      title: w.title ?? "",
      showTitle: w.showTitle ?? true,
      static: Boolean(w.static),
      type: WIDGET_TYPES.includes(w.type as WidgetType) || isReferenceType(w.type) ? w.type : "empty",
      layout: layouts[i],
      config: w.config ?? {},
    }))),
  };
}

/** "ff8800", "#ff8800" (or RGBW "ff8800ff") or "255,136,0" → "#ff8800" for the colour input. */
export function toHex(value: unknown): string {
  const text = String(value ?? "").trim().replace(/^#/, "");
  if (/^[0-9a-fA-F]{6}/.test(text)) return `#${text.slice(0, 6).toLowerCase()}`;
  const parts = text.split(",").map((p) => Number(p.trim()));
  if (parts.length >= 3 && parts.slice(0, 3).every((p) => Number.isInteger(p) && p >= 0 && p <= 255)) {
    return `#${parts.slice(0, 3).map((p) => p.toString(16).padStart(2, "0")).join("")}`;
  }
  return "#ffffff";
}

/** The colour to send: "#rrggbb" (hex) or "r,g,b" (csv), as the widget's rgbFormat says. */
export function fromHex(hex: string, format: unknown): string {
  if (format !== "csv") return hex.toLowerCase();
  const n = Number.parseInt(hex.replace("#", ""), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255].join(",");
}
