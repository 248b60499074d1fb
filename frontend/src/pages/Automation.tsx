// Tasks, schedules, handlers and forward payloads: list pages (enable/disable, delete) and one editor per kind.
// The forms cover the common parts; nested parts (variables, specs, parameters) are JSON areas checked as typed.
// The server validates everything again and names the bad field, which the editor shows.

import { type ReactNode, useEffect, useMemo, useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";

import { ApiError, getOne, list, remove, save, setEnabled } from "../api/client";
import { Can } from "../components/Can";
import { Card, ErrorBox, errorText, formatTime, labelsToText, textToLabels, useAsync } from "../components/common";
import { type Column, ResourceTable } from "../components/ResourceTable";

export type AutomationKind = "task" | "schedule" | "handler" | "forwardpayload";

export const KINDS: Record<AutomationKind, { title: string; singular: string; entityType: string }> = {
  task: { title: "Tasks", singular: "task", entityType: "task" },
  schedule: { title: "Schedules", singular: "schedule", entityType: "schedule" },
  handler: { title: "Handlers", singular: "handler", entityType: "handler" },
  forwardpayload: { title: "Forward payloads", singular: "forward payload", entityType: "forward_payload" },
};

type Rec = Record<string, unknown> & { id: string };

const ENTITY_TYPES = ["gateway", "node", "source", "field", "task", "schedule", "handler", "forward_payload"];
const EVENT_TYPES = ["created", "updated", "deleted", "requested"];
const OPERATORS = ["eq", "ne", "in", "nin", "range_in", "range_not_in", "gt", "lt", "gte", "lte", "exists", "regex"];
const HANDLER_TYPES = ["webhook", "email", "telegram", "sms", "mqtt", "resource", "noop"];
const SCHEDULE_TYPES = ["repeat", "cron", "simple", "sunrise", "sunset"];

const SPEC_TEMPLATES: Record<string, unknown> = {
  webhook: { url: "https://example.org/hook", method: "POST", headers: {}, expectedStatus: 200 },
  email: { from: "mycontroller@example.org", to: ["me@example.org"], host: "smtp.example.org", port: 587 },
  telegram: { token: "", chatIds: [] },
  sms: { phoneNumbers: [] },
  mqtt: { broker: "tcp://127.0.0.1:1883", topic: "mycontroller/out", qos: 0 },
  resource: {},
  noop: {},
  repeat: { interval: "1m", repeatCount: 0 },
  cron: { expression: "0 */5 * * * *" },
  simple: { frequency: "daily", time: "07:30:00" },
  sunrise: { frequency: "daily", offset: "0m" },
  sunset: { frequency: "daily", offset: "-30m" },
};

export function AutomationListPage() {
  const { kind = "task" } = useParams();
  const info = KINDS[kind as AutomationKind];
  const [error, setError] = useState<string | null>(null);
  if (!info) return <Card title="Not found">Unknown kind {kind}</Card>;
  const columns: Column<Rec>[] = [
    { key: "id", label: "Id", render: (r) => r.id },
    { key: "description", label: "Description", render: (r) => String(r.description ?? "") },
    { key: "enabled", label: "Enabled", render: (r) => (r.enabled ? "yes" : "no") },
    ...(kind === "handler" || kind === "schedule"
      ? [{ key: "type", label: "Type", render: (r: Rec) => String(r.type ?? "") }] : []),
    ...(kind === "forwardpayload"
      ? [{ key: "srcFieldId", label: "From", render: (r: Rec) => String(r.srcFieldId ?? "") },
        { key: "dstFieldId", label: "To", render: (r: Rec) => String(r.dstFieldId ?? "") }] : []),
    ...(kind === "task" ? [{ key: "state.lastEvaluation", label: "Last evaluation",
      render: (r: Rec) => formatTime((r.state as Record<string, unknown> | undefined)?.lastEvaluation) }] : []),
  ];
  const act = async (fn: () => Promise<unknown>) => {
    setError(null);
    try {
      await fn();
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <Card title={info.title} actions={<Can need="user"><Link className="button primary" to={`/automation/${kind}/new`}>New {info.singular}</Link></Can>}>
      <ErrorBox error={error} />
      <ResourceTable<Rec> key={kind} resource={kind} entityType={info.entityType} columns={columns}
        link={(r) => `/automation/${kind}/${encodeURIComponent(r.id)}`} defaultSort={{ f: "id", o: "asc" }}
        actions={(r) => (
          <Can need="user">
            <button type="button" onClick={() => act(() => setEnabled(kind, [r.id], !r.enabled))}>
              {r.enabled ? "Disable" : "Enable"}
            </button>
            <button type="button" onClick={() => window.confirm(`Delete ${r.id}?`) && act(() => remove(kind, [r.id]))}>
              Delete
            </button>
          </Can>
        )} />
    </Card>
  );
}

/** A JSON text area: keeps the text while it does not parse and reports the parse error instead. */
function JsonArea({ label, value, onChange, rows = 4, hint }: {
  label: string; value: unknown; onChange: (value: unknown) => void; rows?: number; hint?: string;
}) {
  const [text, setText] = useState(() => JSON.stringify(value ?? {}, null, 2));
  const [error, setError] = useState<string | null>(null);
  const serialized = JSON.stringify(value ?? {});
  useEffect(() => {
    try {
      if (JSON.stringify(JSON.parse(text)) === serialized) return;
    } catch {
      // the user is typing; leave the text alone
      return;
    }
    setText(JSON.stringify(value ?? {}, null, 2));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [serialized]);
  return (
    <label className="json-area">
      {label}
      {hint && <small className="muted"> {hint}</small>}
      <textarea aria-label={label} rows={rows} spellCheck={false} value={text} onChange={(e) => {
        setText(e.target.value);
        try {
          onChange(JSON.parse(e.target.value || "{}"));
          setError(null);
        } catch (err) {
          setError((err as Error).message);
        }
      }} />
      {error && <span className="error-inline">JSON: {error}</span>}
    </label>
  );
}

function Check({ label, checked, onChange }: { label: string; checked: boolean; onChange: (v: boolean) => void }) {
  return (
    <label className="check">
      <input type="checkbox" aria-label={label} checked={checked} onChange={(e) => onChange(e.target.checked)} /> {label}
    </label>
  );
}

function Text({ label, value, onChange, placeholder, list: listId }: {
  label: string; value: unknown; onChange: (v: string) => void; placeholder?: string; list?: string;
}) {
  return (
    <label>
      {label}
      <input aria-label={label} value={value === undefined || value === null ? "" : String(value)} placeholder={placeholder}
        list={listId} onChange={(e) => onChange(e.target.value)} />
    </label>
  );
}

function Select({ label, value, options, onChange }: {
  label: string; value: string; options: string[]; onChange: (v: string) => void;
}) {
  return (
    <label>
      {label}
      <select aria-label={label} value={value} onChange={(e) => onChange(e.target.value)}>
        {options.map((o) => <option key={o} value={o}>{o}</option>)}
      </select>
    </label>
  );
}

function MultiCheck({ label, options, value, onChange }: {
  label: string; options: string[]; value: string[]; onChange: (v: string[]) => void;
}) {
  return (
    <fieldset className="multi">
      <legend>{label}</legend>
      {options.map((o) => (
        <label key={o} className="check">
          <input type="checkbox" aria-label={`${label} ${o}`} checked={value.includes(o)}
            onChange={(e) => onChange(e.target.checked ? [...value, o] : value.filter((v) => v !== o))} /> {o}
        </label>
      ))}
    </fieldset>
  );
}

function Section({ title, children }: { title: string; children: ReactNode }) {
  return (
    <fieldset className="section">
      <legend>{title}</legend>
      {children}
    </fieldset>
  );
}

function blank(kind: AutomationKind): Rec {
  switch (kind) {
    case "task":
      return { id: "", description: "", enabled: true, triggerOnEvent: true, ignoreDuplicate: false,
        autoDisable: false, reEnable: false, reEnableDuration: "", executionInterval: "",
        eventFilter: { eventTypes: ["updated"], entityTypes: ["field"], filters: {} }, evaluationType: "rule",
        evaluationConfig: { rule: { matchAll: true, conditions: [] }, expression: "" },
        dampening: { type: "none", occurrences: 0, evaluation: 0, activeDuration: "" },
        variables: {}, handlerParameters: {}, handlers: [], labels: {} };
    case "schedule":
      return { id: "", description: "", enabled: true, type: "repeat", spec: SPEC_TEMPLATES.repeat, timezone: "",
        validity: { enabled: false, date: { from: "", to: "" }, time: { from: "", to: "" }, validateTimeEveryday: false },
        variables: {}, handlerParameters: {}, handlers: [], labels: {} };
    case "handler":
      return { id: "", description: "", enabled: true, type: "webhook", spec: SPEC_TEMPLATES.webhook, labels: {} };
    case "forwardpayload":
      return { id: "", description: "", enabled: true, srcFieldId: "", dstFieldId: "", template: "", labels: {} };
  }
}

/** Fields the server owns: not sent back on save. */
function forSave(record: Rec): Rec {
  const { state: _state, modifiedOn: _modifiedOn, ...rest } = record;
  return rest as Rec;
}

export function AutomationEditorPage() {
  const { kind: kindParam = "task", id = "new" } = useParams();
  const kind = kindParam as AutomationKind;
  const info = KINDS[kind];
  const navigate = useNavigate();
  const isNew = id === "new";
  const loaded = useAsync<Rec | null>(async () => (isNew ? null : getOne<Rec>(kind, id)), [kind, id]);
  const [record, setRecord] = useState<Rec | null>(null);
  const [labelsText, setLabelsText] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [badField, setBadField] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);
  const handlers = useAsync(() => list<Rec>("handler", { limit: 0 }), []);
  const fields = useAsync(() => list<Rec>("field", { limit: 500, sortBy: [{ f: "id", o: "asc" }] }), []);
  const handlerIds = useMemo(() => (handlers.data?.data ?? []).map((h) => h.id), [handlers.data]);

  useEffect(() => {
    const base = isNew ? blank(kind) : loaded.data;
    if (base) {
      setRecord(base);
      setLabelsText(labelsToText(base.labels as Record<string, string>));
    }
  }, [isNew, kind, loaded.data]);

  if (!info) return <Card title="Not found">Unknown kind {kindParam}</Card>;
  if (!record) return <Card title={info.title}><ErrorBox error={loaded.error} />{loaded.loading && "loading…"}</Card>;
  const r = record;
  const set = (key: string, value: unknown) => {
    setSaved(false);
    setRecord({ ...r, [key]: value });
  };
  const nested = (key: string) => (r[key] ?? {}) as Record<string, unknown>;
  const setNested = (key: string, sub: string, value: unknown) => set(key, { ...nested(key), [sub]: value });

  const onSave = async () => {
    setError(null);
    setBadField(null);
    if (!String(r.id).trim()) {
      setError("an id is required");
      setBadField("id");
      return;
    }
    try {
      const stored = await save<Rec>(kind, forSave({ ...r, id: String(r.id).trim(), labels: textToLabels(labelsText) }));
      setSaved(true);
      setRecord(stored); // what the server keeps (defaults filled, secrets redacted)
      if (isNew) navigate(`/automation/${kind}/${encodeURIComponent(stored.id)}`, { replace: true });
    } catch (err) {
      setError(errorText(err));
      if (err instanceof ApiError) setBadField(err.field ?? null);
    }
  };

  const rule = ((nested("evaluationConfig").rule ?? { matchAll: true, conditions: [] }) as {
    matchAll: boolean; conditions: Array<{ variable: string; operator: string; value: unknown }>;
  });
  const setRule = (next: typeof rule) => setNested("evaluationConfig", "rule", next);
  const eventFilter = nested("eventFilter") as { eventTypes?: string[]; entityTypes?: string[]; filters?: unknown };
  const dampening = nested("dampening");

  return (
    <Card title={`${isNew ? "New" : "Edit"} ${info.singular}${isNew ? "" : ` ${id}`}`}
      actions={<Link to={`/automation/${kind}`}>all {info.title.toLowerCase()}</Link>}>
      <form className="editor" onSubmit={(e) => {
        e.preventDefault();
        onSave();
      }}>
        <div className="row">
          <label>
            Id
            <input aria-label="Id" value={String(r.id)} disabled={!isNew} onChange={(e) => set("id", e.target.value)}
              className={badField === "id" ? "invalid" : ""} />
          </label>
          <Text label="Description" value={r.description} onChange={(v) => set("description", v)} />
          <Check label="Enabled" checked={Boolean(r.enabled)} onChange={(v) => set("enabled", v)} />
        </div>

        {kind === "task" && (
          <>
            <Section title="Trigger">
              <div className="row">
                <Check label="On events" checked={Boolean(r.triggerOnEvent)} onChange={(v) => set("triggerOnEvent", v)} />
                <Text label="Or every (interval)" value={r.executionInterval} placeholder="e.g. 5m"
                  onChange={(v) => set("executionInterval", v)} />
              </div>
              <MultiCheck label="Event types" options={EVENT_TYPES} value={eventFilter.eventTypes ?? []}
                onChange={(v) => setNested("eventFilter", "eventTypes", v)} />
              <MultiCheck label="Entity types" options={ENTITY_TYPES} value={eventFilter.entityTypes ?? []}
                onChange={(v) => setNested("eventFilter", "entityTypes", v)} />
              <JsonArea label="Event filters" hint='keyPath → value, e.g. {"entity.id": "sim.1.1.V_TEMP"}'
                value={eventFilter.filters ?? {}} onChange={(v) => setNested("eventFilter", "filters", v)} rows={3} />
            </Section>
            <Section title="Rule">
              <div className="row">
                <Select label="Evaluation" value={String(r.evaluationType ?? "rule")} options={["rule", "expression", "webhook"]}
                  onChange={(v) => set("evaluationType", v)} />
                <Check label="All conditions must hold" checked={rule.matchAll}
                  onChange={(v) => setRule({ ...rule, matchAll: v })} />
              </div>
              {rule.conditions.map((condition, i) => (
                <div className="row condition" key={i}>
                  <input aria-label={`condition ${i + 1} variable`} placeholder="variable, e.g. value.current.value"
                    value={condition.variable}
                    onChange={(e) => setRule({ ...rule, conditions: rule.conditions.map((c, j) =>
                      (j === i ? { ...c, variable: e.target.value } : c)) })} />
                  <select aria-label={`condition ${i + 1} operator`} value={condition.operator}
                    onChange={(e) => setRule({ ...rule, conditions: rule.conditions.map((c, j) =>
                      (j === i ? { ...c, operator: e.target.value } : c)) })}>
                    {OPERATORS.map((o) => <option key={o} value={o}>{o}</option>)}
                  </select>
                  <input aria-label={`condition ${i + 1} value`} placeholder="value" value={String(condition.value ?? "")}
                    onChange={(e) => setRule({ ...rule, conditions: rule.conditions.map((c, j) =>
                      (j === i ? { ...c, value: e.target.value } : c)) })} />
                  <button type="button" aria-label={`remove condition ${i + 1}`}
                    onClick={() => setRule({ ...rule, conditions: rule.conditions.filter((_, j) => j !== i) })}>✕</button>
                </div>
              ))}
              <button type="button" onClick={() => setRule({ ...rule,
                conditions: [...rule.conditions, { variable: "", operator: "eq", value: "" }] })}>
                Add condition
              </button>
              {r.evaluationType === "expression" && (
                <label>
                  Expression
                  <textarea aria-label="Expression" rows={3} value={String(nested("evaluationConfig").expression ?? "")}
                    onChange={(e) => setNested("evaluationConfig", "expression", e.target.value)} />
                </label>
              )}
              <JsonArea label="Variables" hint='name → template or {"resourceType", "quickId", "keyPath"}'
                value={r.variables} onChange={(v) => set("variables", v)} rows={3} />
            </Section>
            <Section title="Dampening and re-enable">
              <div className="row">
                <Select label="Dampening" value={String(dampening.type ?? "none")}
                  options={["none", "consecutive", "evaluation", "active_duration"]}
                  onChange={(v) => setNested("dampening", "type", v)} />
                <Text label="Occurrences" value={dampening.occurrences}
                  onChange={(v) => setNested("dampening", "occurrences", Number(v) || 0)} />
                <Text label="Of evaluations" value={dampening.evaluation}
                  onChange={(v) => setNested("dampening", "evaluation", Number(v) || 0)} />
                <Text label="Active duration" value={dampening.activeDuration}
                  onChange={(v) => setNested("dampening", "activeDuration", v)} />
              </div>
              <div className="row">
                <Check label="Ignore duplicates" checked={Boolean(r.ignoreDuplicate)} onChange={(v) => set("ignoreDuplicate", v)} />
                <Check label="Disable after firing" checked={Boolean(r.autoDisable)} onChange={(v) => set("autoDisable", v)} />
                <Check label="Re-enable" checked={Boolean(r.reEnable)} onChange={(v) => set("reEnable", v)} />
                <Text label="Re-enable after" value={r.reEnableDuration} onChange={(v) => set("reEnableDuration", v)} />
              </div>
            </Section>
          </>
        )}

        {kind === "schedule" && (
          <Section title="When">
            <div className="row">
              <Select label="Type" value={String(r.type)} options={SCHEDULE_TYPES}
                onChange={(v) => setRecord({ ...r, type: v, spec: SPEC_TEMPLATES[v] ?? {} })} />
              <Text label="Time zone" value={r.timezone} placeholder="Europe/Berlin" onChange={(v) => set("timezone", v)} />
            </div>
            <JsonArea key={`spec-${String(r.type)}`} label="Spec" value={r.spec} onChange={(v) => set("spec", v)} rows={4} />
            <JsonArea label="Validity" value={r.validity} onChange={(v) => set("validity", v)} rows={4} />
            <JsonArea label="Variables" value={r.variables} onChange={(v) => set("variables", v)} rows={3} />
          </Section>
        )}

        {(kind === "task" || kind === "schedule") && (
          <Section title="Handlers">
            <MultiCheck label="Run handlers" options={handlerIds} value={(r.handlers as string[]) ?? []}
              onChange={(v) => set("handlers", v)} />
            {handlerIds.length === 0 && <p className="muted">No handlers yet: <Link to="/automation/handler/new">create one</Link>.</p>}
            <JsonArea label="Handler parameters" hint='name → {"type": "text", "text": "..."}'
              value={r.handlerParameters} onChange={(v) => set("handlerParameters", v)} rows={3} />
          </Section>
        )}

        {kind === "handler" && (
          <Section title="Handler">
            <Select label="Type" value={String(r.type)} options={HANDLER_TYPES}
              onChange={(v) => setRecord({ ...r, type: v, spec: SPEC_TEMPLATES[v] ?? {} })} />
            <JsonArea key={`spec-${String(r.type)}`} label="Spec" hint="secrets are never shown again once saved"
              value={r.spec} onChange={(v) => set("spec", v)} rows={6} />
          </Section>
        )}

        {kind === "forwardpayload" && (
          <Section title="Forward">
            <div className="row">
              <Text label="Source field" value={r.srcFieldId} list="fp-fields" placeholder="field:gw.1.1.V_STATUS"
                onChange={(v) => set("srcFieldId", v)} />
              <Text label="Destination field" value={r.dstFieldId} list="fp-fields" placeholder="field:gw.2.1.V_STATUS"
                onChange={(v) => set("dstFieldId", v)} />
            </div>
            <datalist id="fp-fields">
              {(fields.data?.data ?? []).map((f) => <option key={f.id} value={`field:${f.id}`} />)}
            </datalist>
            <Text label="Template (optional)" value={r.template} placeholder="{{ value }}" onChange={(v) => set("template", v)} />
          </Section>
        )}

        <label>
          Labels <small className="muted">key=value, one a line</small>
          <textarea aria-label="Labels" rows={2} value={labelsText} onChange={(e) => setLabelsText(e.target.value)} />
        </label>
        <ErrorBox error={error} />
        {saved && <div className="ok" role="status">Saved.</div>}
        <div className="actions">
          <Can need="user"><button type="submit" className="primary">Save</button></Can>
          <button type="button" onClick={() => navigate(`/automation/${kind}`)}>Back</button>
        </div>
      </form>
      {!isNew && r.state !== undefined && (
        <details>
          <summary>State</summary>
          <pre>{JSON.stringify(r.state, null, 2)}</pre>
        </details>
      )}
    </Card>
  );
}
