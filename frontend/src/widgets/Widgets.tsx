// The widget kinds of a dashboard. Each reads its config (checked by model.ts) and the live fields it names.

import { useEffect, useMemo, useRef, useState } from "react";

import { Chart } from "../components/Chart";
import { formatValue } from "../components/common";
import { Toggle, useSetField } from "../components/FieldControl";
import { MetricsOff, useMetricsEnabled } from "../components/MetricsOff";
import { useFieldLabels } from "../api/names";
import { bareFieldId, type FieldRecord, useFields, useSeries } from "../live/fields";
import { fieldList, fromHex, toHex, type Widget } from "./model";

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

/** A range input that sends once the user lets go (not on every pixel). */
function Slider({ value, min, max, step, onCommit, label, disabled }: {
  value: number; min: number; max: number; step: number; onCommit: (v: number) => void; label: string;
  disabled?: boolean;
}) {
  const [local, setLocal] = useState(value);
  const dragging = useRef(false);
  useEffect(() => {
    if (!dragging.current) setLocal(value);
  }, [value]);
  const commit = () => {
    dragging.current = false;
    if (local !== value) onCommit(local);
  };
  return (
    <span className="slider">
      <input
        type="range"
        aria-label={label}
        min={min}
        max={max}
        step={step}
        value={local}
        disabled={disabled}
        onPointerDown={() => (dragging.current = true)}
        onChange={(e) => setLocal(Number(e.target.value))}
        onPointerUp={commit}
        onKeyUp={commit}
        onBlur={() => dragging.current && commit()}
      />
      <output>{local}</output>
    </span>
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
      <Slider value={num(field.current?.value, 0)} min={num(config.min, 0)} max={num(config.max, 100)}
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
  const { series, error } = useSeries(ids, str(config.duration) || "-1h", window, str(config.function) || "mean");
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
      <Chart series={lines} height={Math.max(80, height)} unit={unit} />
    </div>
  );
}

/** A half-circle gauge drawn in SVG: no chart library needed for one number. */
export function Gauge({ value, min, max, unit }: { value: number | null; min: number; max: number; unit?: string }) {
  const ratio = value === null ? 0 : Math.min(1, Math.max(0, (value - min) / (max - min)));
  const angle = Math.PI * (1 - ratio);
  const x = 50 + 40 * Math.cos(angle);
  const y = 50 - 40 * Math.sin(angle);
  const color = ratio > 0.8 ? "#e4572e" : ratio > 0.6 ? "#f0a202" : "#29a36a";
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
  return (
    <div className="widget-center" data-field={field.id} data-value={String(value)}>
      <Gauge value={Number.isFinite(value) ? value : null} min={num(config.min, 0)} max={num(config.max, 100)}
        unit={str(config.unit) || field.unit} />
    </div>
  );
}

function LightWidget({ config }: { config: Config }) {
  const ids = useMemo(() => [str(config.power), str(config.brightness), str(config.rgb)],
    [config.power, config.brightness, config.rgb]);
  const { fields } = useFields(ids.filter(Boolean));
  const [status, brightness, color] = ids.map((id) => (id ? fields[bareFieldId(id)] : undefined));
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
            label={`light ${status.id}`} disabled={!statusSet.allowed} />
        )}
        {brightness && (
          <Slider value={level} min={num(config.min, 0)} max={num(config.max, 100)} step={1}
            onCommit={(v) => brightnessSet.send(v)} label={`brightness ${brightness.id}`}
            disabled={!brightnessSet.allowed} />
        )}
        {color && (
          <input type="color" aria-label={`colour ${color.id}`} value={hex} disabled={!colorSet.allowed}
            onChange={(e) => colorSet.send(fromHex(e.target.value, config.rgbFormat))} />
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

export function WidgetBody({ widget, height }: { widget: Widget; height: number }) {
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
