// Which fields a dashboard's widgets are bound to, and which of those do not exist: a widget bound to a field that
// is not there is refused when the dashboard is saved (it would only ever say "not found"). Pure.

import type { Dashboard } from "./model";

const FIELD_KEYS = ["resource", "power", "brightness", "rgb", "colorTemperature"];

const bare = (id: string) => id.trim().replace(/^field:/, "");

/** The field ids each widget names, by the config key that names them ("resources.0", "items.2.resource"). */
export function widgetBindings(config: Record<string, unknown>): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const key of FIELD_KEYS) {
    const value = config[key];
    if (typeof value === "string" && value.trim() && !value.includes(" ")) out.push([key, bare(value)]);
  }
  const resources = config.resources;
  if (Array.isArray(resources)) resources.forEach((r, i) => typeof r === "string" && r.trim() && out.push([`resources.${i}`, bare(r)]));
  const items = config.items;
  if (Array.isArray(items)) {
    items.forEach((item, i) => {
      const resource = (item as { resource?: unknown } | null)?.resource;
      if (typeof resource === "string" && resource.trim()) out.push([`items.${i}.resource`, bare(resource)]);
    });
  }
  return out;
}

/** Every field id a dashboard names. */
export function dashboardFields(dashboard: Dashboard): string[] {
  return [...new Set(dashboard.widgets.flatMap((w) => widgetBindings(w.config).map(([, id]) => id)))];
}

/** Problems for widgets bound to fields that do not exist, keyed like validateDashboard's ("widgets.1.resource"). */
export function missingBindings(dashboard: Dashboard, existing: ReadonlySet<string>): Record<string, string> {
  const errors: Record<string, string> = {};
  dashboard.widgets.forEach((widget, index) => {
    for (const [key, id] of widgetBindings(widget.config)) {
      if (!existing.has(id)) errors[`widgets.${index}.${key}`] = `${widget.title || widget.type}: there is no field ${id}`;
    }
  });
  return errors;
}
