// Dashboards: the list, and one dashboard's grid of widgets with an editor (add, configure, drag, resize, save).
// Saved as dashboard resources through POST /api/dashboard in the reference's shape.

import { type PointerEvent as ReactPointerEvent, useEffect, useMemo, useRef, useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";

import { api, ApiError, getOne, remove, save } from "../api/client";
import { Can } from "../components/Can";
import { Card, ErrorBox, errorText, useAsync } from "../components/common";
import { type Column, ResourceTable } from "../components/ResourceTable";
import {
  clampLayout,
  type Dashboard,
  emptyDashboard,
  GRID_COLUMNS,
  type Layout,
  newWidget,
  normalizeDashboard,
  RANGES,
  resolveOverlaps,
  validateDashboard,
  validateWidgetConfig,
  type Widget,
  WIDGET_TYPES,
  WIDGETS,
  type WidgetType,
} from "../widgets/model";
import { WidgetBody } from "../widgets/Widgets";

const ROW_HEIGHT = 64;
const GAP = 10;

export function DashboardsPage() {
  const columns: Column<Dashboard>[] = [
    { key: "title", label: "Title", render: (d) => `${d.favorite ? "★ " : ""}${d.title || d.id}` },
    { key: "description", label: "Description", render: (d) => d.description },
    { key: "widgets", label: "Widgets", sortable: false, render: (d) => String(d.widgets?.length ?? 0) },
  ];
  return (
    <Card title="Dashboards" actions={<Can need="user"><Link className="button primary" to="/dashboards/new">New dashboard</Link></Can>}>
      <ResourceTable<Dashboard> resource="dashboard" entityType="dashboard" columns={columns}
        link={(d) => `/dashboards/${encodeURIComponent(d.id)}`} defaultSort={{ f: "title", o: "asc" }} />
    </Card>
  );
}

/** Field ids for the pickers (a datalist; typing any id works too). */
function useFieldIds(): string[] {
  const result = useAsync(
    () => api<{ data: Array<{ id: string }> }>(`/api/field?limit=500&sortBy=${encodeURIComponent('[{"f":"id","o":"asc"}]')}`),
    [],
  );
  return useMemo(() => (result.data?.data ?? []).map((f) => f.id), [result.data]);
}

export function DashboardPage() {
  const { id = "new" } = useParams();
  const navigate = useNavigate();
  const isNew = id === "new";
  const loaded = useAsync<Dashboard | null>(
    async () => (isNew ? null : normalizeDashboard(await getOne<Dashboard>("dashboard", id))),
    [id],
  );
  const [draft, setDraft] = useState<Dashboard | null>(null);
  const [editing, setEditing] = useState(isNew);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [saveError, setSaveError] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const [configuring, setConfiguring] = useState<string | null>(null);
  const [addType, setAddType] = useState<WidgetType>("switch");
  const fieldIds = useFieldIds();

  useEffect(() => {
    if (isNew) {
      setDraft(emptyDashboard());
      setEditing(true);
    } else if (loaded.data) {
      setDraft(loaded.data);
    }
  }, [isNew, loaded.data]);

  // Once problems are shown, they follow the edits (a fixed title stops being reported at once).
  useEffect(() => {
    if (draft) setErrors((shown) => (Object.keys(shown).length ? validateDashboard(draft).errors : shown));
  }, [draft]);

  if (!draft) {
    return (
      <Card title="Dashboard">
        <ErrorBox error={loaded.error} />
        {loaded.loading && <p className="muted">loading…</p>}
      </Card>
    );
  }
  const dashboard = draft;
  const updateWidget = (widgetId: string, change: (w: Widget) => Widget, resolve = false) => {
    setDraft((d) => {
      if (!d) return d;
      const widgets = d.widgets.map((w) => (w.id === widgetId ? change(w) : w));
      return { ...d, widgets: resolve ? resolveOverlaps(widgets, widgetId) : widgets };
    });
  };

  const onSave = async () => {
    const checked = validateDashboard(dashboard);
    setErrors(checked.errors);
    setSaveError(null);
    if (Object.keys(checked.errors).length > 0) return;
    setSaving(true);
    try {
      const stored = await save<Dashboard>("dashboard", checked.value);
      setEditing(false);
      setConfiguring(null);
      if (isNew) navigate(`/dashboards/${encodeURIComponent(checked.value.id)}`, { replace: true });
      else {
        setDraft(normalizeDashboard(stored ?? checked.value));
        loaded.setData(normalizeDashboard(stored ?? checked.value));
      }
    } catch (err) {
      setSaveError(errorText(err));
      if (err instanceof ApiError && err.field) setErrors({ [err.field]: err.message });
    } finally {
      setSaving(false);
    }
  };

  const addWidget = () => {
    const widget = newWidget(addType, dashboard.widgets.map((w) => w.layout));
    setDraft({ ...dashboard, widgets: [...dashboard.widgets, widget] });
    setConfiguring(widget.id);
  };

  const configuringWidget = dashboard.widgets.find((w) => w.id === configuring);
  const ordered = [...dashboard.widgets].sort((a, b) => a.layout.y - b.layout.y || a.layout.x - b.layout.x);

  return (
    <div className="dashboard-page">
      <div className="dashboard-header">
        {editing ? (
          <div className="dashboard-meta">
            {isNew && (
              <label>
                Id <input aria-label="dashboard id" value={dashboard.id}
                  onChange={(e) => setDraft({ ...dashboard, id: e.target.value })} />
              </label>
            )}
            <label>
              Title <input aria-label="dashboard title" value={dashboard.title} placeholder="Living room"
                onChange={(e) => setDraft({ ...dashboard, title: e.target.value })} />
            </label>
            <label>
              Description <input aria-label="dashboard description" value={dashboard.description}
                onChange={(e) => setDraft({ ...dashboard, description: e.target.value })} />
            </label>
            <label className="check">
              <input type="checkbox" checked={dashboard.favorite}
                onChange={(e) => setDraft({ ...dashboard, favorite: e.target.checked })} /> Favourite
            </label>
          </div>
        ) : (
          <h1>
            {dashboard.favorite ? "★ " : ""}
            {dashboard.title}
            {dashboard.description && <small className="muted"> {dashboard.description}</small>}
          </h1>
        )}
        <div className="actions">
          {editing ? (
            <>
              <select aria-label="widget type" value={addType} onChange={(e) => setAddType(e.target.value as WidgetType)}>
                {WIDGET_TYPES.map((t) => <option key={t} value={t}>{WIDGETS[t].label}</option>)}
              </select>
              <button type="button" onClick={addWidget}>Add widget</button>
              <button type="button" className="primary" disabled={saving} onClick={onSave}>
                {saving ? "Saving…" : "Save"}
              </button>
              <button type="button" onClick={() => {
                setErrors({});
                setConfiguring(null);
                if (isNew) navigate("/dashboards");
                else {
                  setDraft(loaded.data ?? dashboard);
                  setEditing(false);
                }
              }}>
                Cancel
              </button>
            </>
          ) : (
            <Can need="user">
              <button type="button" onClick={() => setEditing(true)}>Edit</button>
              <button type="button" onClick={async () => {
                if (!window.confirm(`Delete dashboard ${dashboard.title}?`)) return;
                try {
                  await remove("dashboard", [dashboard.id]);
                  navigate("/dashboards");
                } catch (err) {
                  setSaveError(errorText(err));
                }
              }}>
                Delete
              </button>
            </Can>
          )}
        </div>
      </div>
      <ErrorBox error={saveError} />
      {Object.keys(errors).length > 0 && (
        <ul className="error" role="alert">
          {Object.entries(errors).map(([key, message]) => <li key={key}>{message}</li>)}
        </ul>
      )}
      {dashboard.widgets.length === 0 && (
        <p className="muted">{editing ? "Choose a widget type and press Add widget." : "No widgets yet: press Edit."}</p>
      )}
      <Grid widgets={ordered} editing={editing}
        onMove={(widgetId, layout, done) => updateWidget(widgetId, (w) => ({ ...w, layout }), done)}
        onConfigure={setConfiguring}
        onRemove={(widgetId) => setDraft({ ...dashboard, widgets: dashboard.widgets.filter((w) => w.id !== widgetId) })} />
      {editing && configuringWidget && (
        <WidgetEditor key={configuringWidget.id} widget={configuringWidget} fieldIds={fieldIds}
          onChange={(w) => updateWidget(w.id, () => w, true)} onClose={() => setConfiguring(null)} />
      )}
    </div>
  );
}

/** The phone layout (one column), where dragging on the 12-column grid would mean nothing. */
const narrow = () => typeof window !== "undefined" && window.matchMedia?.("(max-width: 800px)").matches;

interface GridProps {
  widgets: Widget[];
  editing: boolean;
  onMove: (id: string, layout: Layout, done: boolean) => void;
  onConfigure: (id: string) => void;
  onRemove: (id: string) => void;
}

/** A 12-column CSS grid. In edit mode the title bar drags a widget and the corner resizes it (pointer events, so
 * mouse and touch both work); on a phone the grid is one column and widgets stack in reading order. */
function Grid({ widgets, editing, onMove, onConfigure, onRemove }: GridProps) {
  const box = useRef<HTMLDivElement>(null);
  const drag = useRef<{ id: string; mode: "move" | "resize"; x: number; y: number; start: Layout } | null>(null);

  const begin = (event: ReactPointerEvent, widget: Widget, mode: "move" | "resize") => {
    if (!editing || widget.static || narrow()) return; // one column on a phone: positions are typed in instead
    event.preventDefault();
    (event.target as Element).setPointerCapture?.(event.pointerId);
    drag.current = { id: widget.id, mode, x: event.clientX, y: event.clientY, start: widget.layout };
  };
  const moveTo = (event: ReactPointerEvent, done: boolean) => {
    const current = drag.current;
    const element = box.current;
    if (!current || !element) return;
    const column = (element.clientWidth + GAP) / GRID_COLUMNS;
    const dx = Math.round((event.clientX - current.x) / column);
    const dy = Math.round((event.clientY - current.y) / (ROW_HEIGHT + GAP));
    const s = current.start;
    const layout = current.mode === "move"
      ? clampLayout({ ...s, x: s.x + dx, y: s.y + dy })
      : clampLayout({ ...s, w: s.w + dx, h: s.h + dy });
    onMove(current.id, layout, done);
    if (done) drag.current = null;
  };

  return (
    <div className={`grid ${editing ? "editing" : ""}`} ref={box}
      style={{ gridAutoRows: `${ROW_HEIGHT}px`, gap: `${GAP}px` }}
      onPointerMove={(e) => drag.current && moveTo(e, false)}
      onPointerUp={(e) => drag.current && moveTo(e, true)}
      onPointerCancel={() => (drag.current = null)}>
      {widgets.map((widget) => {
        const { x, y, w, h } = widget.layout;
        return (
          <div key={widget.id} className={`widget widget--${widget.type}`} data-widget-id={widget.id}
            data-widget-type={widget.type}
            style={{ gridColumn: `${x + 1} / span ${w}`, gridRow: `${y + 1} / span ${h}`, ["--h" as string]: h }}>
            {(widget.showTitle || editing) && (
              <div className={`widget-title ${editing && !widget.static ? "draggable" : ""}`}
                onPointerDown={(e) => begin(e, widget, "move")}>
                <span>{widget.title || WIDGETS[widget.type].label}</span>
                {editing && (
                  <span className="widget-tools" onPointerDown={(e) => e.stopPropagation()}>
                    <button type="button" aria-label={`configure ${widget.title}`} onClick={() => onConfigure(widget.id)}>⚙</button>
                    <button type="button" aria-label={`remove ${widget.title}`} onClick={() => onRemove(widget.id)}>✕</button>
                  </span>
                )}
              </div>
            )}
            <div className="widget-body">
              <WidgetBody widget={widget} height={h * ROW_HEIGHT + (h - 1) * GAP - 60} />
            </div>
            {editing && !widget.static && (
              <div className="resize-handle" aria-hidden onPointerDown={(e) => begin(e, widget, "resize")} />
            )}
          </div>
        );
      })}
    </div>
  );
}

function FieldInput({ label, value, onChange, fieldIds, error }: {
  label: string; value: string; onChange: (v: string) => void; fieldIds: string[]; error?: string;
}) {
  return (
    <label>
      {label}
      <input list="field-ids" aria-label={label} value={value} placeholder="gateway.node.source.field"
        onChange={(e) => onChange(e.target.value)} />
      {error && <span className="error-inline">{error}</span>}
      <datalist id="field-ids">{fieldIds.map((f) => <option key={f} value={f} />)}</datalist>
    </label>
  );
}

function WidgetEditor({ widget, fieldIds, onChange, onClose }: {
  widget: Widget; fieldIds: string[]; onChange: (w: Widget) => void; onClose: () => void;
}) {
  const c = widget.config;
  const errors = validateWidgetConfig(widget.type, c).errors;
  const set = (key: string, value: unknown) => onChange({ ...widget, config: { ...c, [key]: value } });
  const text = (key: string) => (c[key] === undefined || c[key] === null ? "" : String(c[key]));
  const numberInput = (key: string, label: string) => (
    <label>
      {label}
      <input type="number" aria-label={label} value={text(key)} onChange={(e) => set(key, e.target.value)} />
      {errors[key] && <span className="error-inline">{errors[key]}</span>}
    </label>
  );
  const layout = widget.layout;
  const setLayout = (key: keyof Layout, value: string) =>
    onChange({ ...widget, layout: clampLayout({ ...layout, [key]: Number(value) }) });
  const items = (Array.isArray(c.items) ? c.items : []) as Array<{ label: string; resource: string }>;
  return (
    <div className="dialog-backdrop" onClick={onClose}>
      <div className="dialog" role="dialog" aria-label="widget settings" onClick={(e) => e.stopPropagation()}>
        <h2>{WIDGETS[widget.type].label} widget</h2>
        <label>
          Title
          <input aria-label="widget title" value={widget.title} onChange={(e) => onChange({ ...widget, title: e.target.value })} />
        </label>
        <div className="row">
          <label className="check">
            <input type="checkbox" checked={widget.showTitle}
              onChange={(e) => onChange({ ...widget, showTitle: e.target.checked })} /> Show title
          </label>
          <label className="check">
            <input type="checkbox" checked={widget.static}
              onChange={(e) => onChange({ ...widget, static: e.target.checked })} /> Fixed position
          </label>
        </div>
        {["switch", "button", "slider", "gauge"].includes(widget.type) && (
          <FieldInput label="Field" value={text("resource")} onChange={(v) => set("resource", v)} fieldIds={fieldIds}
            error={errors.resource} />
        )}
        {widget.type === "switch" && (
          <div className="row">
            <label>
              On payload <input aria-label="on payload" value={text("onPayload")} onChange={(e) => set("onPayload", e.target.value)} />
            </label>
            <label>
              Off payload <input aria-label="off payload" value={text("offPayload")}
                onChange={(e) => set("offPayload", e.target.value)} />
            </label>
          </div>
        )}
        {widget.type === "button" && (
          <label>
            Payload <input aria-label="payload" value={text("payload")} onChange={(e) => set("payload", e.target.value)} />
          </label>
        )}
        {["slider", "gauge"].includes(widget.type) && (
          <div className="row">{numberInput("min", "Min")}{numberInput("max", "Max")}
            {widget.type === "slider" && numberInput("step", "Step")}</div>
        )}
        {widget.type === "line_chart" && (
          <>
            <FieldInput label="Fields (comma-separated)"
              value={Array.isArray(c.resources) ? c.resources.join(", ") : text("resources")}
              onChange={(v) => set("resources", v)} fieldIds={fieldIds} error={errors.resources} />
            <label>
              Range
              <select aria-label="chart range" value={text("duration") || "-1h"} onChange={(e) => set("duration", e.target.value)}>
                {RANGES.map((r) => <option key={r.value} value={r.value}>{r.label}</option>)}
              </select>
            </label>
            <label>
              Window (none: raw points) <input aria-label="chart window" value={text("window")} placeholder="none or 5m"
                onChange={(e) => set("window", e.target.value)} />
              {errors.window && <span className="error-inline">{errors.window}</span>}
            </label>
          </>
        )}
        {widget.type === "light" && (
          <>
            <FieldInput label="Power field (on/off)" value={text("power")} onChange={(v) => set("power", v)}
              fieldIds={fieldIds} error={errors.power} />
            <FieldInput label="Brightness field" value={text("brightness")} onChange={(v) => set("brightness", v)}
              fieldIds={fieldIds} error={errors.brightness} />
            <FieldInput label="Colour field" value={text("rgb")} onChange={(v) => set("rgb", v)} fieldIds={fieldIds}
              error={errors.rgb} />
            <label>
              Colour format
              <select aria-label="colour format" value={text("rgbFormat") || "hex"} onChange={(e) => set("rgbFormat", e.target.value)}>
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
                  onChange={(e) => set("items", items.map((r, j) => (j === i ? { ...r, label: e.target.value } : r)))} />
                <input aria-label={`row ${i + 1} field`} list="field-ids" placeholder="field id" value={row.resource}
                  onChange={(e) => set("items", items.map((r, j) => (j === i ? { ...r, resource: e.target.value } : r)))} />
                <button type="button" aria-label={`remove row ${i + 1}`}
                  onClick={() => set("items", items.filter((_, j) => j !== i))}>✕</button>
              </div>
            ))}
            <datalist id="field-ids">{fieldIds.map((f) => <option key={f} value={f} />)}</datalist>
            <button type="button" onClick={() => set("items", [...items, { label: "", resource: "" }])}>Add row</button>
            {Object.entries(errors).filter(([k]) => k.startsWith("items")).map(([k, m]) => (
              <div key={k} className="error-inline">{m}</div>
            ))}
          </div>
        )}
        <fieldset className="row layout-inputs">
          <legend>Position (12 columns)</legend>
          {(["x", "y", "w", "h"] as const).map((key) => (
            <label key={key}>
              {key}
              <input type="number" aria-label={`layout ${key}`} value={layout[key]} onChange={(e) => setLayout(key, e.target.value)} />
            </label>
          ))}
        </fieldset>
        <div className="actions">
          <button type="button" className="primary" onClick={onClose}>Done</button>
        </div>
      </div>
    </div>
  );
}
