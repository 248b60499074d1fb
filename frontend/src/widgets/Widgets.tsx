// The widget kinds of a dashboard. Each reads its config (checked by model.ts) and the live fields it names.

import { useMemo } from "react";

import { LazyChart as Chart } from "../components/LazyChart";
import { formatValue } from "../components/common";
import { ColourPicker, RangeSlider, Toggle, useSetField } from "../components/FieldControl";
import { MetricsOff, useMetricsEnabled } from "../components/MetricsOff";
import { useFieldLabels } from "../api/names";
import { bareFieldId, type FieldRecord, rangeMs, useFields, useSeries } from "../live/fields";
import { useList } from "../api/queries";
import { FieldControl } from "../components/FieldControl";
import { fieldList, fromHex, isReferenceType, toHex, type Widget, widgetLabel } from "./model";
import { savedGaugeRange } from "./ranges";
import {
  type FieldSelection, referenceChart, referenceImage, referenceLight, referenceSelection, referenceUtilization,
} from "./reference";

type Config = Record<string, unknown>;

const str = (v: unknown) => (typeof v === "string" ? v : "");
const num = (v: unknown, d: number) => (typeof v === "number" && Number.isFinite(v) ? v : Number(v) || d);

function Missing({ id }: { id: string }) {
  return <div className="widget-missing">{id ? `field ${id} not found` : "not configured"}</div>;
}

function useField(id: string): FieldRecord | undefined {
  const ids = useMemo(() => (id ? [id] : []), [id]);
  return useFields(ids).fields[bareFieldId(id)];
}

/** The field's name for people ("Living room · Ceiling light · status"), for labels of controls. */
function useFieldName(field: FieldRecord | undefined): string {
  const rows = useMemo(() => (field ? [field] : []), [field]);
  const labels = useFieldLabels(rows);
  return field ? labels[field.id] ?? field.id : "";
}

function SwitchWidget({ config }: { config: Config }) {
  const id = str(config.resource);
  const field = useField(id);
  const { pending, error, send, allowed } = useSetField(field);
  const name = useFieldName(field);
  if (!field) return <Missing id={id} />;
  const on = Boolean(field.current?.value);
  // Explicit on/off payloads (not "toggle"): pressing twice while the echo is on its way still ends as intended.
  const flip = () => send(on ? str(config.offPayload) || "0" : str(config.onPayload) || "1");
  return (
    <div className="widget-switch" data-field={field.id} data-value={String(on)}>
      <Toggle on={on} pending={pending} onClick={flip} label={`switch ${name}`} disabled={!allowed} />
      <span className="widget-switch-state">{pending ? "…" : on ? "ON" : "OFF"}</span>
      {error && <div className="error-inline">{error}</div>}
    </div>
  );
}

function ButtonWidget({ config, title }: { config: Config; title: string }) {
  const id = str(config.resource);
  const field = useField(id);
  const { pending, error, send, allowed } = useSetField(field);
  if (!field) return <Missing id={id} />;
  return (
    <div className="widget-center">
      <button type="button" className="big-button" disabled={pending || !allowed} onClick={() => send(str(config.payload))}>
        {title || str(config.payload)}
      </button>
      <div className="muted">{formatValue(field.current?.value, field.unit)}</div>
      {error && <div className="error-inline">{error}</div>}
    </div>
  );
}

function SliderWidget({ config }: { config: Config }) {
  const id = str(config.resource);
  const field = useField(id);
  const { pending, error, send, allowed } = useSetField(field);
  const name = useFieldName(field);
  if (!field) return <Missing id={id} />;
  return (
    <div className="widget-center">
      <RangeSlider value={num(field.current?.value, 0)} min={num(config.min, 0)} max={num(config.max, 100)}
        step={num(config.step, 1)} onCommit={(v) => send(v)} label={`set ${name}`} disabled={pending || !allowed} />
      {error && <div className="error-inline">{error}</div>}
    </div>
  );
}

/** A line chart of fields, or the notice that the server keeps no metrics (then nothing is queried). */
function LineChartWidget({ config, height }: { config: Config; height: number }) {
  const enabled = useMetricsEnabled();
  if (enabled === false) return <MetricsOff height={Math.max(80, height)} />;
  return enabled ? <LineChartHistory config={config} height={height} /> : null;
}

function LineChartHistory({ config, height }: { config: Config; height: number }) {
  const ids = useMemo(() => fieldList(config.resources), [config.resources]);
  const { fields } = useFields(ids);
  const window = str(config.window) === "none" ? "" : str(config.window);
  const range = str(config.duration) || "-1h";
  const { series, error } = useSeries(ids, range, window, str(config.function) || "mean");
  const rows = useMemo(() => Object.values(fields), [fields]);
  const labels = useFieldLabels(rows); // legends by name: "Living room · Temperature", not "V_TEMP (1)"
  const lines = ids.map((id) => {
    const bare = bareFieldId(id);
    return { name: labels[bare] ?? bare, points: series[bare] ?? [] };
  });
  const unit = str(config.unit) || fields[bareFieldId(ids[0] ?? "")]?.unit;
  return (
    <div className="widget-chart">
      {error && <div className="error-inline">{error}</div>}
      <Chart series={lines} height={Math.max(80, height)} unit={unit} span={-rangeMs(range) / 1000} />
    </div>
  );
}

const GAUGE_COLOURS = { plain: "#2b7bb9", ok: "#29a36a", warn: "#f0a202", alarm: "#e4572e" };

/** The arc's colour: by the thresholds passed (none: plain), or by how full the gauge is when none are. */
export function gaugeColour(value: number | null, ratio: number, thresholds?: number[]): string {
  if (thresholds === undefined) {
    return ratio > 0.8 ? GAUGE_COLOURS.alarm : ratio > 0.6 ? GAUGE_COLOURS.warn : GAUGE_COLOURS.ok;
  }
  if (thresholds.length === 0 || value === null) return GAUGE_COLOURS.plain;
  const [warn, alarm] = [...thresholds].sort((a, b) => a - b);
  return alarm !== undefined && value >= alarm ? GAUGE_COLOURS.alarm : value >= warn ? GAUGE_COLOURS.warn
    : GAUGE_COLOURS.ok;
}

/** A half-circle gauge drawn in SVG: no chart library needed for one number. */
export function Gauge({ value, min, max, unit, thresholds }: {
  value: number | null; min: number; max: number; unit?: string;
  /** Values from which the arc turns amber, then red; none: one plain colour (21 °C is no warning). Left out: by
   * how full it is (a utilization). */
  thresholds?: number[];
}) {
  const ratio = value === null ? 0 : Math.min(1, Math.max(0, (value - min) / (max - min)));
  const angle = Math.PI * (1 - ratio);
  const x = 50 + 40 * Math.cos(angle);
  const y = 50 - 40 * Math.sin(angle);
  const color = gaugeColour(value, ratio, thresholds);
  return (
    <svg className="gauge" viewBox="0 0 100 60" role="img" aria-label={`gauge ${value ?? "no value"}`}>
      <path d="M10 50 A40 40 0 0 1 90 50" fill="none" stroke="#e3e7ec" strokeWidth="9" strokeLinecap="round" />
      {value !== null && (
        <path d={`M10 50 A40 40 0 0 1 ${x.toFixed(2)} ${y.toFixed(2)}`} fill="none" stroke={color} strokeWidth="9"
          strokeLinecap="round" />
      )}
      <text x="50" y="47" textAnchor="middle" className="gauge-value">
        {value === null ? "—" : formatValue(value)}
        {unit ? <tspan className="gauge-unit"> {unit}</tspan> : null}
      </text>
      <text x="10" y="59" textAnchor="middle" className="gauge-limit">{min}</text>
      <text x="90" y="59" textAnchor="middle" className="gauge-limit">{max}</text>
    </svg>
  );
}

function GaugeWidget({ config }: { config: Config }) {
  const id = str(config.resource);
  const field = useField(id);
  if (!field) return <Missing id={id} />;
  const raw = field.current?.value;
  const value = typeof raw === "number" ? raw : raw === null || raw === undefined ? null : Number(raw);
  const unit = str(config.unit) || field.unit;
  const shown = Number.isFinite(value) ? value : null;
  const unset = (key: string) => config[key] === undefined || config[key] === null || config[key] === "";
  const range = unset("min") && unset("max") ? savedGaugeRange(unit, shown) : null;
  return (
    <div className="widget-center" data-field={field.id} data-value={String(value)}>
      <Gauge value={shown} min={range?.min ?? num(config.min, 0)} max={range?.max ?? num(config.max, 100)}
        unit={unit} thresholds={Array.isArray(config.thresholds)
          ? config.thresholds.map(Number).filter(Number.isFinite) : undefined} />
    </div>
  );
}

function LightWidget({ config }: { config: Config }) {
  const ids = useMemo(() => [str(config.power), str(config.brightness), str(config.rgb)],
    [config.power, config.brightness, config.rgb]);
  const { fields } = useFields(ids.filter(Boolean));
  const [status, brightness, color] = ids.map((id) => (id ? fields[bareFieldId(id)] : undefined));
  const rows = useMemo(() => Object.values(fields), [fields]);
  const labels = useFieldLabels(rows); // controls named as people named the fields
  const name = (field: FieldRecord) => labels[field.id] ?? field.id;
  const statusSet = useSetField(status);
  const brightnessSet = useSetField(brightness);
  const colorSet = useSetField(color);
  const on = status ? Boolean(status.current?.value) : num(brightness?.current?.value, 0) > 0;
  const level = num(brightness?.current?.value, 0);
  const hex = toHex(color?.current?.value);
  const error = statusSet.error ?? brightnessSet.error ?? colorSet.error;
  if (!status && !brightness && !color) return <Missing id={ids.find(Boolean) ?? ""} />;
  return (
    <div className="widget-light" data-value={String(on)}>
      <div className="light-bulb" style={{ background: on ? hex : "#d5d9de", opacity: on ? 0.35 + level / 150 : 1 }} />
      <div className="light-controls">
        {status && (
          <Toggle on={on} pending={statusSet.pending} onClick={() => statusSet.send(on ? "0" : "1")}
            label={`light ${name(status)}`} disabled={!statusSet.allowed} />
        )}
        {brightness && (
          <RangeSlider value={level} min={num(config.min, 0)} max={num(config.max, 100)} step={1}
            onCommit={(v) => brightnessSet.send(v)} label={`brightness ${name(brightness)}`}
            disabled={!brightnessSet.allowed} />
        )}
        {color && (
          <ColourPicker label={`colour ${name(color)}`} value={hex} disabled={!colorSet.allowed}
            onCommit={(next) => colorSet.send(fromHex(next, config.rgbFormat))} />
        )}
      </div>
      {error && <div className="error-inline">{error}</div>}
    </div>
  );
}

function KeyValueWidget({ config }: { config: Config }) {
  const rows = useMemo(() => (Array.isArray(config.items) ? config.items : []) as Array<{
    label: string; resource: string; unit?: string;
  }>, [config.items]);
  const ids = useMemo(() => rows.map((r) => r.resource), [rows]);
  const { fields } = useFields(ids);
  return (
    <table className="kv">
      <tbody>
        {rows.map((row, i) => {
          const f = fields[bareFieldId(row.resource)];
          return (
            <tr key={i}>
              <th>{row.label || f?.name || row.resource}</th>
              <td data-field={row.resource}>{f ? formatValue(f.current?.value, row.unit || f.unit) : "—"}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

/** The fields a MyController v2 panel selects: its quick ids, or the first `limit` fields its filters match. */
function useSelectedFields(selection: FieldSelection | null): { ids: string[]; error: string | null; loaded: boolean } {
  const byFilter = Boolean(selection && selection.ids.length === 0);
  const listed = useList<{ id: string }>("field", {
    limit: selection?.limit ?? 1, filter: selection?.filter ?? [], sortBy: [{ f: "name", o: "asc" }],
  }, { enabled: byFilter, live: false });
  const ids = useMemo(() => (selection?.ids.length ? selection.ids : (listed.data?.data ?? []).map((f) => f.id)),
    [selection, listed.data]);
  return { ids, error: listed.error ? String(listed.error.message) : null, loaded: !byFilter || listed.isSuccess };
}

function ChartsPanel({ config, height }: { config: Config; height: number }) {
  const selection = useMemo(() => referenceSelection(config.resource), [config.resource]);
  const { ids, error, loaded } = useSelectedFields(selection);
  const chart = referenceChart(config);
  const resource = (config.resource ?? {}) as Config;
  if (!selection) return <Unsupported what="this charts panel's resource" />;
  if (error) return <div className="error-inline">{error}</div>;
  if (loaded && ids.length === 0) return <div className="widget-missing">no field matches this panel</div>;
  return <LineChartWidget height={height} config={{ resources: ids, duration: chart.duration,
    window: chart.window || "none", function: chart.fn, unit: str(resource.unit) }} />;
}

function ControlPanel({ config }: { config: Config }) {
  const selection = useMemo(() => referenceSelection(config.resource), [config.resource]);
  const { ids, error, loaded } = useSelectedFields(selection);
  const { fields } = useFields(ids);
  const rows = useMemo(() => ids.map((id) => fields[id]).filter(Boolean) as FieldRecord[], [ids, fields]);
  const labels = useFieldLabels(rows);
  if (!selection) return <Unsupported what="this control panel's resource" />;
  if (error) return <div className="error-inline">{error}</div>;
  if (loaded && ids.length === 0) return <div className="widget-missing">no field matches this panel</div>;
  return (
    <ul className="control-panel">
      {rows.map((field) => (
        <li key={field.id} data-field={field.id}>
          <span>{labels[field.id] ?? field.name ?? field.id}</span>
          <FieldControl field={field} compact label={labels[field.id] ?? field.name} />
        </li>
      ))}
    </ul>
  );
}

function ImagePanel({ config, title }: { config: Config; title: string }) {
  const image = referenceImage(config, typeof location === "undefined" ? "http://localhost" : location.origin);
  if (!image) return <div className="widget-missing">no image address</div>;
  if (image.inline) return <img className="widget-image" src={image.url} alt={title || "image"} />;
  // The console's pages load images from their own origin only (its Content-Security-Policy): linked instead.
  return (
    <div className="widget-center">
      <a href={image.url} target="_blank" rel="noreferrer noopener">open the image ({new URL(image.url).host})</a>
    </div>
  );
}

function Unsupported({ what }: { what: string }) {
  return <div className="widget-missing">{what} is kept as it was sent, but this console does not draw it</div>;
}

/** MyController v2's widgets, drawn with this console's: charts, controls, light, utilization (a gauge), image. */
function ReferenceWidget({ widget, height }: { widget: Widget; height: number }) {
  const config = widget.config;
  switch (widget.type) {
    case "widget_empty_panel":
      return <div className="widget-empty" />;
    case "widget_charts_panel":
      return <ChartsPanel config={config} height={height} />;
    case "widget_control_panel":
      return <ControlPanel config={config} />;
    case "widget_light_panel":
      return <LightWidget config={{ ...referenceLight(config), rgbFormat: "hex" }} />;
    case "widget_utilization_panel":
      return <GaugeWidget config={referenceUtilization(config)} />;
    case "widget_image_panel":
      return <ImagePanel config={config} title={widget.title} />;
    default:
      return <Unsupported what={`A ${widgetLabel(widget.type)} widget`} />;
  }
}

export function WidgetBody({ widget, height }: { widget: Widget; height: number }) {
  if (isReferenceType(widget.type)) return <ReferenceWidget widget={widget} height={height} />;
  switch (widget.type) {
    case "switch":
      return <SwitchWidget config={widget.config} />;
    case "button":
      return <ButtonWidget config={widget.config} title={widget.title} />;
    case "slider":
      return <SliderWidget config={widget.config} />;
    case "line_chart":
      return <LineChartWidget config={widget.config} height={height} />;
    case "gauge":
      return <GaugeWidget config={widget.config} />;
    case "light":
      return <LightWidget config={widget.config} />;
    case "key_value_table":
      return <KeyValueWidget config={widget.config} />;
    default:
      return <div className="widget-empty" />;
  }
}
