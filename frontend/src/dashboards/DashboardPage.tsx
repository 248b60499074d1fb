// One dashboard: its grid of widgets, and the editor (add, configure, move, resize, save). Saved as a dashboard
// resource (POST /api/dashboard) in the reference's shape, after the checks of widgets/model.ts and one more: every
// field a widget is bound to must exist.

import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";

import { api, ApiError, remove, save } from "../api/client";
import { errorText } from "../api/errors";
import { keys, useOne } from "../api/queries";
import type { Page } from "../api/query";
import { useSubmit } from "../components/apiForm";
import { Can } from "../components/Can";
import { Card, ErrorBox, usePageTitle } from "../components/common";
import { dashboardFields, missingBindings } from "../widgets/bindings";
import {
  type Dashboard, emptyDashboard, newWidget, normalizeDashboard, resolveOverlaps, validateDashboard, type Widget,
  WIDGET_TYPES, WIDGETS, type WidgetType,
} from "../widgets/model";
import { Grid } from "./Grid";
import { WidgetEditor } from "./WidgetEditor";

/** The ids among `ids` that are fields (one request). */
async function existingFields(ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const filter = encodeURIComponent(JSON.stringify([{ k: "id", o: "in", v: ids }]));
  const page = await api<Page<{ id: string }>>(`/api/field?limit=0&filter=${filter}`);
  return new Set(page.data.map((f) => f.id));
}

export function DashboardPage() {
  const { id = "new" } = useParams();
  const isNew = id === "new";
  const loaded = useOne<Dashboard>("dashboard", id, { enabled: !isNew });
  if (!isNew && !loaded.data) {
    if (loaded.isPending) return <Card title="Dashboard" page><p className="muted">loading…</p></Card>;
    const missing = loaded.error instanceof ApiError && loaded.error.status === 404;
    return (
      <Card title={missing ? "Dashboard not found" : "Dashboard"} page actions={<Link to="/dashboards">all dashboards</Link>}>
        <ErrorBox error={loaded.error ? errorText(loaded.error) : null} />
      </Card>
    );
  }
  return <DashboardView key={id} isNew={isNew} stored={isNew ? null : normalizeDashboard(loaded.data!)} />;
}

function DashboardView({ isNew, stored }: { isNew: boolean; stored: Dashboard | null }) {
  const navigate = useNavigate();
  const client = useQueryClient();
  const [draft, setDraft] = useState<Dashboard>(() => stored ?? emptyDashboard());
  const [editing, setEditing] = useState(isNew);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [configuring, setConfiguring] = useState<string | null>(null);
  const [addType, setAddType] = useState<WidgetType>("switch");
  // What is shown: the draft while editing, else the stored dashboard (kept current by the query).
  const dashboard = editing ? draft : stored ?? draft;
  usePageTitle(isNew ? "New dashboard" : editing ? `Editing ${dashboard.title || dashboard.id}` : dashboard.title || dashboard.id);

  const change = (next: Dashboard) => {
    setDraft(next);
    // Once problems are shown, they follow the edits (a fixed title stops being reported at once).
    if (Object.keys(errors).length) setErrors(validateDashboard(next).errors);
  };
  const updateWidget = (widgetId: string, update: (w: Widget) => Widget, resolve = false) => {
    setDraft((d) => {
      const widgets = d.widgets.map((w) => (w.id === widgetId ? update(w) : w));
      return { ...d, widgets: resolve ? resolveOverlaps(widgets, widgetId) : widgets };
    });
  };

  // The one submit path (components/apiForm.ts): one save at a time; problems at the widgets they concern.
  const submit = useSubmit(async (value: Dashboard) => {
    const missing = missingBindings(value, await existingFields(dashboardFields(value)));
    if (Object.keys(missing).length) throw Object.assign(new Error("bound to fields that do not exist"), { missing });
    return normalizeDashboard((await save<Dashboard>("dashboard", value)) ?? value);
  }, {
    onDone: (value) => {
      client.setQueryData(keys.one("dashboard", value.id), value);
      void client.invalidateQueries({ queryKey: keys.list("dashboard") });
      setEditing(false);
      setConfiguring(null);
      setDraft(value);
      if (isNew) navigate(`/dashboards/${encodeURIComponent(value.id)}`, { replace: true });
    },
    onError: (err) => {
      const missing = (err as { missing?: Record<string, string> }).missing;
      if (missing) setErrors(missing);
      else if (err instanceof ApiError && err.field) setErrors({ [err.field]: errorText(err) });
      else return false; // said in the page's error box
      return true;
    },
  });
  const saveError = submit.problem?.message ?? null;

  const onSave = () => {
    if (submit.busy) return;
    const checked = validateDashboard(draft);
    setErrors(checked.errors);
    submit.setProblem(null);
    if (Object.keys(checked.errors).length > 0) return;
    void submit.run(checked.value);
  };

  const addWidget = () => {
    const widget = newWidget(addType, draft.widgets.map((w) => w.layout));
    setDraft({ ...draft, widgets: [...draft.widgets, widget] });
    setConfiguring(widget.id);
  };
  const configuringWidget = draft.widgets.find((w) => w.id === configuring);
  const widgetIndex = draft.widgets.findIndex((w) => w.id === configuring);
  const widgetProblems = Object.fromEntries(Object.entries(errors)
    .filter(([key]) => key.startsWith(`widgets.${widgetIndex}.`))
    .map(([key, message]) => [key.slice(`widgets.${widgetIndex}.`.length), message.replace(/^[^:]*: /, "")]));
  const ordered = [...dashboard.widgets].sort((a, b) => a.layout.y - b.layout.y || a.layout.x - b.layout.x);

  return (
    <div className="dashboard-page">
      <div className="dashboard-header">
        {editing ? (
          <div className="dashboard-meta">
            <h1 className="visually-hidden">{isNew ? "New dashboard" : `Editing ${dashboard.title}`}</h1>
            {isNew && (
              <label>
                Id <input aria-label="dashboard id" value={draft.id} onChange={(e) => change({ ...draft, id: e.target.value })} />
              </label>
            )}
            <label>
              Title <input aria-label="dashboard title" value={draft.title} placeholder="Living room"
                aria-invalid={errors.title ? true : undefined} onChange={(e) => change({ ...draft, title: e.target.value })} />
            </label>
            <label>
              Description <input aria-label="dashboard description" value={draft.description}
                onChange={(e) => change({ ...draft, description: e.target.value })} />
            </label>
            <label className="check">
              <input type="checkbox" checked={draft.favorite}
                onChange={(e) => change({ ...draft, favorite: e.target.checked })} /> Favourite
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
              <button type="button" className="primary" disabled={submit.busy} aria-busy={submit.busy || undefined}
                onClick={onSave}>
                {submit.busy ? "Saving…" : "Save"}
              </button>
              <button type="button" onClick={() => {
                setErrors({});
                setConfiguring(null);
                if (isNew) navigate("/dashboards");
                else {
                  setDraft(stored ?? draft);
                  setEditing(false);
                }
              }}>
                Cancel
              </button>
            </>
          ) : (
            <Can need="user">
              <button type="button" onClick={() => {
                setDraft(stored ?? draft);
                setEditing(true);
              }}>Edit</button>
              <button type="button" onClick={async () => {
                if (!window.confirm(`Delete dashboard ${dashboard.title}?`)) return;
                try {
                  await remove("dashboard", [dashboard.id]);
                  void client.invalidateQueries({ queryKey: keys.list("dashboard") });
                  navigate("/dashboards");
                } catch (err) {
                  submit.setProblem({ message: errorText(err), field: null, at: null });
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
        onRemove={(widgetId) => setDraft({ ...draft, widgets: draft.widgets.filter((w) => w.id !== widgetId) })} />
      {editing && configuringWidget && (
        <WidgetEditor key={configuringWidget.id} widget={configuringWidget} problems={widgetProblems}
          onChange={(w) => updateWidget(w.id, () => w, true)} onClose={() => setConfiguring(null)} />
      )}
    </div>
  );
}
