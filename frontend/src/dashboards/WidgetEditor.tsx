// A widget's settings, in a modal dialog (focus kept inside, Escape closes): fields are picked by name, a gauge's
// range follows the field's unit and history unless it was set, the position can be typed.

import { zodResolver } from "@hookform/resolvers/zod";
import { useEffect, useMemo, useState } from "react";
import { Controller, type Control, useForm, useWatch } from "react-hook-form";
import { z } from "zod/mini";

import { Dialog } from "../components/Dialog";
import { FieldPicker, useFieldChoices } from "../components/FieldPicker";
import { useMetricsEnabled } from "../components/MetricsOff";
import { useFields, useSeries } from "../live/fields";
import { gaugeRange } from "../widgets/ranges";
import {
  clampLayout, fieldList, isReferenceType, RANGES, validateWidgetConfig, type Widget, widgetLabel,
} from "../widgets/model";

/** A gauge whose range is still the default takes one from its field (unit, the last day's values). */
function useGaugeDefaults(widget: Widget, onChange: (w: Widget) => void) {
  const c = widget.config;
  const resource = widget.type === "gauge" ? String(c.resource ?? "") : "";
  const ids = useMemo(() => (resource ? [resource] : []), [resource]);
  const { fields } = useFields(ids);
  const metrics = useMetricsEnabled() === true;
  const { series, loading } = useSeries(metrics ? ids : [], "-24h", "1h", "mean");
  const field = fields[resource.replace(/^field:/, "")];
  const untouched = (Number(c.min ?? 0) === 0 && Number(c.max ?? 100) === 100) || c.rangeFromField === true;
  const history = field ? series[field.id] : undefined;
  const range = field && !loading ? gaugeRange(field.unit, (history ?? []).map((p) => p.value)
    .concat(typeof field.current?.value === "number" ? [field.current.value] : [])) : null;
  useEffect(() => {
    if (!range || !untouched || (Number(c.min) === range.min && Number(c.max) === range.max)) return;
    onChange({ ...widget, config: { ...c, min: range.min, max: range.max, rangeFromField: true } });
  }); // runs after each render; changes only while the range is the default or was set from the field
}

/** Every setting of the dialog: typed as text, ticked, fields picked by name (FieldPicker), a table's rows and a
 * chart's fields as lists. */
const LAYOUT_KEYS = ["x", "y", "w", "h"] as const;
const CONFIG_KEYS = ["onPayload", "offPayload", "payload", "min", "max", "step", "duration", "window", "rgbFormat",
  "resource", "power", "brightness", "rgb"] as const;
const TableRow = z.object({ label: z.string(), resource: z.string() });
export const WidgetSettingsSchema = z.object({
  title: z.string(), showTitle: z.boolean(), static: z.boolean(),
  onPayload: z.string(), offPayload: z.string(), payload: z.string(), min: z.string(), max: z.string(),
  step: z.string(), duration: z.string(), window: z.string(), rgbFormat: z.string(),
  resource: z.string(), power: z.string(), brightness: z.string(), rgb: z.string(),
  items: z.array(TableRow), resources: z.array(z.string()), warnFrom: z.string(), alarmFrom: z.string(),
  x: z.string(), y: z.string(), w: z.string(), h: z.string(),
});
export type WidgetSettings = z.infer<typeof WidgetSettingsSchema>;

const asText = (value: unknown) => (value === undefined || value === null ? "" : String(value));
const thresholdsOf = (c: Record<string, unknown>): number[] =>
  (Array.isArray(c.thresholds) ? c.thresholds.map(Number).filter(Number.isFinite) : []).sort((a, b) => a - b);

/** The inputs' values for a widget as it is. */
export function widgetSettings(widget: Widget): WidgetSettings {
  const c = widget.config;
  return {
    title: widget.title, showTitle: widget.showTitle, static: widget.static,
    ...Object.fromEntries(CONFIG_KEYS.map((key) => [key, asText(c[key])])) as Record<(typeof CONFIG_KEYS)[number], string>,
    duration: asText(c.duration) || "-1h", rgbFormat: asText(c.rgbFormat) || "hex",
    items: (Array.isArray(c.items) ? c.items : []).map((row: { label?: unknown; resource?: unknown }) => ({
      label: asText(row?.label), resource: asText(row?.resource) })),
    resources: fieldList(c.resources),
    warnFrom: asText(thresholdsOf(c)[0]), alarmFrom: asText(thresholdsOf(c)[1]),
    ...Object.fromEntries(LAYOUT_KEYS.map((key) => [key, String(widget.layout[key])])) as Record<(typeof LAYOUT_KEYS)[number], string>,
  };
}

/** The widget after one input changed (only that key is written: a key never touched stays absent). */
export function applySetting(widget: Widget, name: keyof WidgetSettings, values: WidgetSettings): Widget {
  if (name === "title" || name === "showTitle" || name === "static") return { ...widget, [name]: values[name] };
  if (name === "warnFrom" || name === "alarmFrom") {
    const thresholds = [values.warnFrom, values.alarmFrom].filter((t) => t.trim() !== "").map(Number);
    return { ...widget, config: { ...widget.config, thresholds } };
  }
  if ((LAYOUT_KEYS as readonly string[]).includes(name)) {
    return { ...widget, layout: clampLayout({ ...widget.layout, [name]: Number(values[name]) }) };
  }
  const config = { ...widget.config, [name]: values[name] };
  if (name === "min" || name === "max") delete config.rangeFromField; // set by hand: keep it
  return { ...widget, config };
}

export function WidgetEditor({ widget, onChange, onClose, problems }: {
  widget: Widget; onChange: (w: Widget) => void; onClose: () => void; problems: Record<string, string>;
}) {
  const c = widget.config;
  const errors = { ...validateWidgetConfig(widget.type, c).errors, ...problems };
  useGaugeDefaults(widget, onChange);
  // The typed and ticked inputs through react-hook-form (its values follow the widget, e.g. a gauge's range from its
  // field); each edit is written back to the widget, key by key.
  const form = useForm<WidgetSettings>({ resolver: zodResolver(WidgetSettingsSchema), values: widgetSettings(widget),
    mode: "onChange" });
  useEffect(() => form.subscribe({ formState: { values: true }, callback: ({ name, values }) => {
    if (name && name in values) onChange(applySetting(widget, name as keyof WidgetSettings, values));
  } }), [form, widget, onChange]);
  const numberInput = (key: string, label: string) => (
    <label>
      {label}
      <input type="number" aria-label={label} {...form.register(key as keyof WidgetSettings)}
        aria-invalid={errors[key] ? true : undefined} />
      {errors[key] && <span className="error-inline">{errors[key]}</span>}
    </label>
  );
  const items = useWatch({ control: form.control, name: "items" });
  const setItems = (next: WidgetSettings["items"]) => form.setValue("items", next, { shouldDirty: true });
  const picker = (label: string, key: "resource" | "power" | "brightness" | "rgb") => (
    <PickedField control={form.control} name={key} label={label} invalid={errors[key]} />
  );
  return (
    <Dialog title={`${widgetLabel(widget.type)} widget`} label="widget settings" onClose={onClose}>
      <label>
        Title
        <input aria-label="widget title" {...form.register("title")} />
      </label>
      <div className="row">
        <label className="check">
          <input type="checkbox" {...form.register("showTitle")} /> Show title
        </label>
        <label className="check">
          <input type="checkbox" {...form.register("static")} /> Fixed position
        </label>
      </div>
      {isReferenceType(widget.type) && (
        <div className="reference-config">
          <p className="muted">A MyController v2 widget: its settings are kept exactly as they were sent (title and
            position can change here).</p>
          <pre aria-label="widget settings as sent">{JSON.stringify(c, null, 2)}</pre>
        </div>
      )}
      {["switch", "button", "slider", "gauge"].includes(widget.type) && picker("Field", "resource")}
      {widget.type === "switch" && (
        <div className="row">
          <label>
            On payload <input aria-label="on payload" {...form.register("onPayload")} />
          </label>
          <label>
            Off payload <input aria-label="off payload" {...form.register("offPayload")} />
          </label>
        </div>
      )}
      {widget.type === "button" && (
        <label>
          Payload <input aria-label="payload" {...form.register("payload")} />
        </label>
      )}
      {["slider", "gauge"].includes(widget.type) && (
        <div className="row">{numberInput("min", "Min")}{numberInput("max", "Max")}
          {widget.type === "slider" && numberInput("step", "Step")}</div>
      )}
      {widget.type === "gauge" && (
        <div className="row">{numberInput("warnFrom", "Amber from")}{numberInput("alarmFrom", "Red from")}</div>
      )}
      {widget.type === "gauge" && c.rangeFromField === true && (
        <p className="muted">Range from the field's unit and its last day; type another to keep yours.</p>
      )}
      {widget.type === "line_chart" && (
        <>
          <Controller control={form.control} name="resources" render={({ field }) => (
            <ChartFields value={field.value} onChange={field.onChange} error={errors.resources} />)} />
          <label>
            Range
            <select aria-label="chart range" {...form.register("duration")}>
              {RANGES.map((r) => <option key={r.value} value={r.value}>{r.label}</option>)}
            </select>
          </label>
          <label>
            Window (none: raw points) <input aria-label="chart window" placeholder="none or 5m" {...form.register("window")} />
            {errors.window && <span className="error-inline">{errors.window}</span>}
          </label>
        </>
      )}
      {widget.type === "light" && (
        <>
          {picker("Power field (on/off)", "power")}
          {picker("Brightness field", "brightness")}
          {picker("Colour field", "rgb")}
          <label>
            Colour format
            <select aria-label="colour format" {...form.register("rgbFormat")}>
              <option value="hex">#rrggbb</option>
              <option value="csv">r,g,b</option>
            </select>
          </label>
        </>
      )}
      {widget.type === "key_value_table" && (
        <div className="kv-rows">
          {items.map((row, i) => (
            <div className="row" key={i}>
              <input aria-label={`row ${i + 1} label`} placeholder="label" value={row.label}
                onChange={(e) => setItems(items.map((r, j) => (j === i ? { ...r, label: e.target.value } : r)))} />
              <FieldPicker label={`row ${i + 1} field`} value={row.resource}
                invalid={errors[`items.${i}.resource`]}
                onChange={(v) => setItems(items.map((r, j) => (j === i ? { ...r, resource: v } : r)))} />
              <button type="button" aria-label={`remove row ${i + 1}`}
                onClick={() => setItems(items.filter((_, j) => j !== i))}>✕</button>
            </div>
          ))}
          <button type="button" onClick={() => setItems([...items, { label: "", resource: "" }])}>Add row</button>
          {errors.items && <div className="error-inline">{errors.items}</div>}
        </div>
      )}
      <fieldset className="row layout-inputs">
        <legend>Position (12 columns)</legend>
        {LAYOUT_KEYS.map((key) => (
          <label key={key}>
            {key}
            <input type="number" aria-label={`layout ${key}`} {...form.register(key)} />
          </label>
        ))}
      </fieldset>
      <div className="actions">
        <button type="button" className="primary" onClick={onClose}>Done</button>
      </div>
    </Dialog>
  );
}

/** A field picked by name, held by the dialog's form. */
function PickedField({ control, name, label, invalid }: {
  control: Control<WidgetSettings>; name: "resource" | "power" | "brightness" | "rgb"; label: string; invalid?: string;
}) {
  return (
    <Controller control={control} name={name} render={({ field }) => (
      <FieldPicker label={label} value={field.value} onChange={field.onChange} invalid={invalid}
        placeholder="type a name, e.g. living room" />)} />
  );
}

/** The fields of a line chart: each by name, removable; a picker adds one. */
function ChartFields({ value, onChange, error }: { value: string[]; onChange: (v: string[]) => void; error?: string }) {
  const choices = useFieldChoices();
  const [text, setText] = useState("");
  const name = (id: string) => choices.find((c) => c.id === id.replace(/^field:/, ""))?.label ?? id;
  return (
    <fieldset className="chart-fields">
      <legend>Fields</legend>
      <ul className="chips">
        {value.map((id) => (
          <li key={id} className="chip">
            {name(id)}
            <button type="button" aria-label={`remove ${name(id)}`} onClick={() => onChange(value.filter((v) => v !== id))}>✕</button>
          </li>
        ))}
      </ul>
      <FieldPicker label="Add a field" value={text} invalid={error} onChange={(v) => {
        const picked = choices.find((c) => c.id === v.replace(/^field:/, ""));
        if (picked && !value.some((id) => id.replace(/^field:/, "") === picked.id)) {
          onChange([...value, picked.id]);
          setText("");
        } else setText(v);
      }} />
    </fieldset>
  );
}
