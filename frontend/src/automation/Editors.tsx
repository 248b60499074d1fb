// The editors of tasks, schedules, handlers and forward payloads, as forms: entities and fields picked by name,
// conditions as rows, a form per handler type for its settings and for what a task gives it, templates previewed
// against the chosen field's value. Each JSON part stays available as an "advanced" view kept in step with the
// form; a JSON box that does not parse blocks Save (it never saves something other than what is on screen).
// One save path (react-hook-form with a zod schema, components/apiForm.ts): busy while sending (no double submit),
// the problem (an empty id, a JSON view that does not parse, the server's answer) shown once where it belongs.

import { useQueryClient } from "@tanstack/react-query";
import { useCallback, useMemo } from "react";
import type { Path } from "react-hook-form";
import { Link, useLocation, useNavigate, useParams } from "react-router-dom";
import { z } from "zod/mini";

import { ApiError, save } from "../api/client";
import { type Problem, problemOf } from "../api/errors";
import { keys, useList, useOne } from "../api/queries";
import { allows, useRole } from "../api/roles";
import { Card, ErrorBox, formatTime, labelsToText, textToLabels } from "../components/common";
import { useApiForm } from "../components/apiForm";
import { FieldProblem, invalidProps, ProblemBox } from "../components/Form";
import {
  type AutomationKind, blank, blankSpec, DAMPENING_TYPES, ENTITY_TYPES, EVALUATION_TYPES, EVENT_TYPES, EXAMPLES,
  forSave, type HandlerInfo, HANDLER_TYPES, type HandlerType, handlerOutcome, KINDS, OPERATORS, PARAM_FIELDS,
  parameterFor, type Rec, SCHEDULE_TYPES, scheduleSpec, silentHandlers, SPEC_FIELDS, type FormField, taskOutcome,
  taskProblems,
} from "./model";
import {
  Check, FieldPicker, JsonArea, MultiCheck, ObjectForm, Section, Select, TemplatePreview, Text, useTemplateContext,
} from "./parts";

type Obj = Record<string, unknown>;

interface FormProps {
  record: Rec;
  isNew: boolean;
  set: (key: string, value: unknown) => void;
  setRecord: (record: Rec) => void;
  onValidity: (label: string, error: string | null) => void;
  problem: Problem | null;
  handlers: HandlerInfo[];
}

const obj = (value: unknown): Obj => (value && typeof value === "object" && !Array.isArray(value) ? value as Obj : {});

/** The input names a kind's server errors may name (key paths), so the problem is shown at its input. */
function problemNames(kind: AutomationKind): string[] {
  const common = ["id", "description", "labels"];
  switch (kind) {
    case "task":
      return [...common, "eventFilter", "executionInterval", "evaluationConfig", "variables", "dampening",
        "reEnableDuration", "handlers", "handlerParameters"];
    case "schedule":
      return [...common, "type", "spec", "timezone", "validity", "variables", "handlers", "handlerParameters"];
    case "handler":
      return [...common, "type", ...new Set(Object.values(SPEC_FIELDS).flat().map((f) => `spec.${f.key}`)), "spec"];
    case "forwardpayload":
      return [...common, "srcFieldId", "dstFieldId", "template"];
  }
}

export function AutomationEditorPage() {
  const { kind: kindParam = "task", id = "new" } = useParams();
  const kind = kindParam as AutomationKind;
  const info = KINDS[kind];
  const isNew = id === "new";
  const loaded = useOne<Rec>(kind, id, { enabled: Boolean(info) && !isNew });
  if (!info) return <Card title="Not found" page>There is no kind of automation called {kindParam}.</Card>;
  if (!isNew && !loaded.data) {
    if (loaded.isPending) return <Card title={`${info.singular} ${id}`} page><p className="muted">loading…</p></Card>;
    const missing = loaded.error instanceof ApiError && loaded.error.status === 404;
    return (
      <Card title={missing ? `No ${info.singular} ${id}` : `${info.singular} ${id}`} page
        actions={<Link to={`/automation/${kind}`}>all {info.title.toLowerCase()}</Link>}>
        <ErrorBox error={loaded.error ? problemOf(loaded.error).message : null} />
      </Card>
    );
  }
  // The form is keyed by the record: live updates of its state (last run) do not overwrite what is being typed.
  return <EditorForm key={`${kind}/${id}`} kind={kind} isNew={isNew} initial={isNew ? blank(kind) : loaded.data!}
    current={loaded.data} />;
}

/** What the editor's form holds: the record as the forms and JSON views build it, the labels as typed, and the JSON
 * views that do not parse (any blocks Save). */
const EditorSchema = z.object({
  record: z.looseObject({ id: z.string().check(z.trim(), z.minLength(1, "an id is required")) }),
  labels: z.string(),
  invalidJson: z.record(z.string(), z.string()).check(z.refine((bad) => Object.keys(bad).length === 0, {
    error: (issue) => `${Object.keys(issue.input as object).join(", ")}: not valid JSON. Fix it (or undo the change) ` +
      "before saving: nothing was saved.",
  })),
});
type EditorValues = z.infer<typeof EditorSchema>;

/** An id a user might give each kind (the placeholder of its Id input). */
const ID_EXAMPLES: Record<AutomationKind, string> = {
  task: "living-room-too-warm", schedule: "every-morning", handler: "notify-phone", forwardpayload: "mirror-switch",
};

/** Where the problem "a JSON view does not parse" is shown: beside Save (no input of the record). */
const BAD_JSON = "json-blocks-save";

const editorValues = (record: Rec): EditorValues => ({
  record, labels: labelsToText(record.labels as Record<string, string>), invalidJson: {},
});

function EditorForm({ kind, isNew, initial, current }: {
  kind: AutomationKind; isNew: boolean; initial: Rec; current?: Rec;
}) {
  const info = KINDS[kind];
  const navigate = useNavigate();
  const client = useQueryClient();
  const mayEdit = allows(useRole(), "user");
  // A new record is saved, then opened at its own address: "Saved." comes along.
  const location = useLocation();
  const { form, onSubmit, busy, saved, problem, clear } = useApiForm<EditorValues, Rec>({
    schema: EditorSchema,
    defaultValues: editorValues(initial),
    names: Object.fromEntries([...problemNames(kind).map((name) => [`record.${name}`, name]),
      ["invalidJson", BAD_JSON]]) as Partial<Record<Path<EditorValues>, string>>,
    initiallySaved: Boolean((location.state as { saved?: boolean } | null)?.saved),
    submit: (values) => save<Rec>(kind, forSave({ ...values.record as Rec, labels: textToLabels(values.labels) })),
    onDone: (stored, _values, f) => {
      client.setQueryData(keys.one(kind, stored.id), stored);
      void client.invalidateQueries({ queryKey: keys.list(kind) });
      f.reset(editorValues(stored)); // what the server keeps (defaults filled, secrets redacted)
      if (isNew) navigate(`/automation/${kind}/${encodeURIComponent(stored.id)}`, { replace: true, state: { saved: true } });
    },
  });
  const record = form.watch("record") as Rec;
  const invalidJson = form.watch("invalidJson");
  const handlerList = useList<HandlerInfo & { id: string }>("handler", { limit: 0, sortBy: [{ f: "id", o: "asc" }] });
  const handlers = useMemo(() => handlerList.data?.data ?? [], [handlerList.data]);

  const setRecord = (next: Rec) => form.setValue("record", next, { shouldDirty: true });
  const set = (key: string, value: unknown) => {
    if (problem?.at === key) clear(); // the input the problem was at is being fixed
    setRecord({ ...form.getValues("record") as Rec, [key]: value });
  };
  const onValidity = useCallback((label: string, error: string | null) => {
    const next = { ...form.getValues("invalidJson") };
    if (error) next[label] = error;
    else delete next[label];
    form.setValue("invalidJson", next);
  }, [form]);

  const props: FormProps = { record, isNew, set, setRecord, onValidity, problem, handlers };
  const warnings = kind === "task" ? taskProblems(record, handlers)
    : kind === "schedule" ? silentHandlers((record.handlers as string[]) ?? [], obj(record.handlerParameters), handlers)
      : [];
  const title = `${isNew ? "New" : ""} ${info.singular}${isNew ? "" : ` ${initial.id}`}`.trim();
  const badJson = Object.keys(invalidJson);
  return (
    <Card title={title.charAt(0).toUpperCase() + title.slice(1)} page
      actions={<Link to={`/automation/${kind}`}>all {info.title.toLowerCase()}</Link>}>
      {!isNew && current && <LastRun kind={kind} record={current} />}
      <form className="editor" onSubmit={onSubmit} noValidate>
        <div className="row">
          <label>
            Id
            <input aria-label="Id" value={String(record.id)} disabled={!isNew} placeholder={ID_EXAMPLES[kind]}
              onChange={(e) => set("id", e.target.value)} {...invalidProps(problem, "id")} />
            <FieldProblem problem={problem} name="id" />
          </label>
          <Text label="Description" value={record.description} onChange={(v) => set("description", v)} />
          <Check label="Enabled" checked={Boolean(record.enabled)} onChange={(v) => set("enabled", v)} />
        </div>
        {kind === "task" && <TaskForm {...props} />}
        {kind === "schedule" && <ScheduleForm {...props} />}
        {kind === "handler" && <HandlerForm {...props} />}
        {kind === "forwardpayload" && <ForwardForm {...props} />}
        <label>
          Labels <small className="muted">key=value, one a line</small>
          <textarea aria-label="Labels" rows={2} {...form.register("labels")} />
        </label>
        {warnings.length > 0 && (
          <ul className="warn" aria-label="before you save">
            {warnings.map((w) => <li key={w}>{w}</li>)}
          </ul>
        )}
        <ProblemBox problem={problem} />
        {saved && <div className="ok" role="status">Saved.</div>}
        <div className="actions">
          {mayEdit && (
            <button type="submit" className="primary" disabled={busy} aria-busy={busy || undefined}
              aria-describedby={problem?.at === BAD_JSON ? `problem-${BAD_JSON}`
                : badJson.length ? "json-blocks-save" : undefined}>
              {busy ? "Saving…" : "Save"}
            </button>
          )}
          <button type="button" onClick={() => navigate(`/automation/${kind}`)}>Back</button>
          {/* Said once, beside Save: before a save as a hint, after one as the reason nothing was saved. */}
          {problem?.at === BAD_JSON ? <FieldProblem problem={problem} name={BAD_JSON} />
            : badJson.length > 0 && (
              <span id="json-blocks-save" className="error-inline">Fix the JSON of {badJson.join(", ")} to save.</span>
            )}
        </div>
      </form>
    </Card>
  );
}

/** The record's last run, from the server (kept current by events), above the form. */
function LastRun({ kind, record }: { kind: AutomationKind; record: Rec }) {
  const state = obj(record.state);
  const outcome = kind === "handler" ? handlerOutcome(record as unknown as HandlerInfo)
    : kind === "task" ? taskOutcome(state)
      : kind === "schedule" ? (state.lastRun ? { status: state.lastStatus === false && state.message ? "error" : "ok",
        text: String(state.message || "ran") } : { status: "never", text: "not run yet" }) : null;
  if (!outcome) return null;
  const when = (state.lastEvaluation ?? state.lastRun ?? state.since) as string | undefined;
  return (
    <p className={`last-run last-run-${outcome.status}`} data-testid="last-run">
      <strong>Last run:</strong> {when ? formatTime(when) : "never"} — {outcome.text}
    </p>
  );
}

// --------------------------------------------------------------------------------------------- tasks

const VARIABLE_SUGGESTIONS = ["entity.current.value", "entity.previous.value", "entity.state.status", "entity.name",
  "event.type", "entity.others.battery_level"];

function TaskForm({ record: r, set, setRecord, onValidity, problem, handlers }: FormProps) {
  const eventFilter = obj(r.eventFilter) as { eventTypes?: string[]; entityTypes?: string[]; filters?: Obj };
  const filters = obj(eventFilter.filters);
  const setFilter = (changes: Obj) => set("eventFilter", { ...eventFilter, ...changes });
  const evaluation = obj(r.evaluationConfig);
  const rule = obj(evaluation.rule) as { matchAll?: boolean; conditions?: Array<{ variable: string; operator: string;
    value: unknown }> };
  const conditions = rule.conditions ?? [];
  const setRule = (next: Obj) => set("evaluationConfig", { ...evaluation, rule: { ...rule, ...next } });
  const setCondition = (index: number, change: Obj) =>
    setRule({ conditions: conditions.map((c, i) => (i === index ? { ...c, ...change } : c)) });
  const dampening = obj(r.dampening);
  const entityId = typeof filters.id === "string" ? filters.id : "";
  const context = useTemplateContext(entityId || EXAMPLES.entityId, { id: r.id, description: r.description });
  const variableNames = [...VARIABLE_SUGGESTIONS, ...Object.keys(obj(r.variables))];
  return (
    <>
      <Section title="When" hint="The task is evaluated for each event that passes this filter (or at each interval).">
        <div className="row">
          <Check label="On events" checked={Boolean(r.triggerOnEvent)} onChange={(v) => set("triggerOnEvent", v)} />
          <Text label="Or every" hint="(interval)" value={r.executionInterval} placeholder={`e.g. ${EXAMPLES.interval}`}
            onChange={(v) => set("executionInterval", v)} />
        </div>
        <MultiCheck label="Event types" options={EVENT_TYPES} value={eventFilter.eventTypes ?? []}
          onChange={(v) => setFilter({ eventTypes: v })} />
        <MultiCheck label="Entity types" options={ENTITY_TYPES} value={eventFilter.entityTypes ?? []}
          onChange={(v) => setFilter({ entityTypes: v })} />
        <FieldPicker label="Which entity" hint="(optional: its id; empty: every entity of these types)" value={entityId}
          placeholder={`e.g. ${EXAMPLES.entityId} or a name`} onChange={(v) => {
            const next = { ...filters };
            if (v.trim()) next.id = v.trim();
            else delete next.id;
            setFilter({ filters: next });
          }} />
        <details className="advanced">
          <summary>Advanced: event filters as JSON</summary>
          <JsonArea label="Event filters" onValidity={onValidity} rows={3} value={filters}
            hint={`key path in the entity → value, e.g. ${JSON.stringify(EXAMPLES.eventFilters)}`}
            onChange={(v) => setFilter({ filters: obj(v) })} />
        </details>
        <FieldProblem problem={problem} name="eventFilter" />
        <FieldProblem problem={problem} name="executionInterval" />
      </Section>

      <Section title="If" hint="Conditions compare a variable with a value: entity is what the event is about.">
        <div className="row">
          <Select label="Evaluation" value={String(r.evaluationType ?? "rule")} options={EVALUATION_TYPES}
            labels={{ rule: "conditions", expression: "an expression" }} onChange={(v) => set("evaluationType", v)} />
          {r.evaluationType !== "expression" && (
            <Check label="All conditions must hold" checked={Boolean(rule.matchAll)}
              onChange={(v) => setRule({ matchAll: v })} />
          )}
        </div>
        {r.evaluationType === "expression" ? (
          <label>
            Expression
            <textarea aria-label="Expression" rows={2} value={String(evaluation.expression ?? "")}
              placeholder={`e.g. ${EXAMPLES.expression}`}
              onChange={(e) => set("evaluationConfig", { ...evaluation, expression: e.target.value })} />
          </label>
        ) : (
          <>
            <datalist id="condition-variables">{variableNames.map((v) => <option key={v} value={v} />)}</datalist>
            {conditions.map((condition, i) => (
              <div className="row condition" key={i}>
                <input aria-label={`condition ${i + 1} variable`} list="condition-variables"
                  placeholder={`e.g. ${EXAMPLES.condition.variable}`} value={condition.variable}
                  onChange={(e) => setCondition(i, { variable: e.target.value })} />
                <select aria-label={`condition ${i + 1} operator`} value={condition.operator}
                  onChange={(e) => setCondition(i, { operator: e.target.value })}>
                  {OPERATORS.map(([o, label]) => <option key={o} value={o}>{label}</option>)}
                </select>
                <input aria-label={`condition ${i + 1} value`} placeholder={`e.g. ${EXAMPLES.condition.value}`}
                  value={String(condition.value ?? "")}
                  onChange={(e) => setCondition(i, { value: conditionValue(condition.operator, e.target.value) })} />
                <button type="button" aria-label={`remove condition ${i + 1}`}
                  onClick={() => setRule({ conditions: conditions.filter((_, j) => j !== i) })}>✕</button>
              </div>
            ))}
            <button type="button" onClick={() => setRule({ conditions: [...conditions,
              { variable: EXAMPLES.condition.variable, operator: "eq", value: "" }] })}>
              Add condition
            </button>
            {conditions.length === 0 && <p className="muted">No condition: every event that passes the filter fires.</p>}
          </>
        )}
        <details className="advanced">
          <summary>Advanced: variables as JSON</summary>
          <JsonArea label="Variables" onValidity={onValidity} value={r.variables ?? {}} rows={3}
            hint={`name → template, or a resource, e.g. ${JSON.stringify(EXAMPLES.variables)}`}
            onChange={(v) => set("variables", v)} />
        </details>
        <FieldProblem problem={problem} name="evaluationConfig" />
        <FieldProblem problem={problem} name="variables" />
      </Section>

      <Section title="Then" hint="Handlers run when the task fires, each with the parameter for its type.">
        <HandlersPart record={r} set={set} onValidity={onValidity} handlers={handlers} context={context}
          problem={problem} />
      </Section>

      <details className="section advanced">
        <summary>Dampening and re-enable</summary>
        <div className="row">
          <Select label="Dampening" value={String(dampening.type ?? "none")} options={DAMPENING_TYPES}
            onChange={(v) => set("dampening", { ...dampening, type: v })} />
          {["consecutive", "evaluation"].includes(String(dampening.type)) && (
            <Text label="Occurrences" value={dampening.occurrences} placeholder="3"
              onChange={(v) => set("dampening", { ...dampening, occurrences: Number(v) || 0 })} />
          )}
          {dampening.type === "evaluation" && (
            <Text label="Of evaluations" value={dampening.evaluation} placeholder="5"
              onChange={(v) => set("dampening", { ...dampening, evaluation: Number(v) || 0 })} />
          )}
          {dampening.type === "active_duration" && (
            <Text label="Active for" value={dampening.activeDuration} placeholder={`e.g. ${EXAMPLES.duration}`}
              onChange={(v) => set("dampening", { ...dampening, activeDuration: v })} />
          )}
        </div>
        <div className="row">
          <Check label="Ignore duplicates" checked={Boolean(r.ignoreDuplicate)} onChange={(v) => set("ignoreDuplicate", v)} />
          <Check label="Disable after firing" checked={Boolean(r.autoDisable)} onChange={(v) => set("autoDisable", v)} />
          <Check label="Re-enable" checked={Boolean(r.reEnable)} onChange={(v) => setRecord({ ...r, reEnable: v })} />
          {Boolean(r.reEnable) && (
            <Text label="Re-enable after" value={r.reEnableDuration} placeholder={`e.g. ${EXAMPLES.duration}`}
              onChange={(v) => set("reEnableDuration", v)} />
          )}
        </div>
        <FieldProblem problem={problem} name="dampening" />
        <FieldProblem problem={problem} name="reEnableDuration" />
      </details>
    </>
  );
}

/** A condition's value as typed: numbers for comparisons, text otherwise (lists as "a, b"). */
function conditionValue(operator: string, text: string): unknown {
  const trimmed = text.trim();
  if (["gt", "gte", "lt", "lte", "eq", "ne"].includes(operator) && trimmed !== "" && !Number.isNaN(Number(trimmed))
    && /^-?\d/.test(trimmed)) {
    return Number(trimmed);
  }
  return text;
}

/** Handlers to run, and the parameter for each handler type, as a form (JSON in step, as the advanced view). */
function HandlersPart({ record: r, set, onValidity, handlers, context, problem }: {
  record: Rec; set: (key: string, value: unknown) => void; onValidity: FormProps["onValidity"]; handlers: HandlerInfo[];
  context: Record<string, unknown> | null; problem: Problem | null;
}) {
  const chosen = (r.handlers as string[] | undefined) ?? [];
  const parameters = obj(r.handlerParameters);
  const types = [...new Set(chosen.map((id) => handlers.find((h) => h.id === id)?.type).filter(Boolean))] as HandlerType[];
  const labels = Object.fromEntries(handlers.map((h) => [h.id, `${h.id} (${h.type})`]));
  return (
    <>
      {handlers.length === 0 ? (
        <p className="muted">No handlers yet: <Link to="/automation/handler/new">create one</Link>.</p>
      ) : (
        <MultiCheck label="Run handlers" options={handlers.map((h) => h.id)} value={chosen} labels={labels}
          onChange={(v) => set("handlers", v)} />
      )}
      {types.map((type) => {
        const found = parameterFor(parameters, type);
        const name = found && typeof found[1] === "object" ? found[0] : type;
        const value = found && typeof found[1] === "object" ? obj(found[1]) : { type };
        const plain = found && typeof found[1] === "string";
        return (
          <fieldset key={type} className="section param-form" data-handler-type={type}>
            <legend>{type} parameter</legend>
            {plain && <p className="muted">Now the text parameter “{found![0]}” is the message; fill in this form to say
              more.</p>}
            <ObjectForm fields={PARAM_FIELDS[type]} value={value} prefix={type} preview={context}
              onChange={(v) => set("handlerParameters", { ...parameters, [name]: { ...v, type } })} />
          </fieldset>
        );
      })}
      <details className="advanced">
        <summary>Advanced: handler parameters as JSON</summary>
        <JsonArea label="Handler parameters" onValidity={onValidity} value={parameters} rows={4}
          hint={`name → {"type": handler type, …} or a text message, e.g. ${JSON.stringify({ alert:
            EXAMPLES.handlerParameters.webhook })}`}
          onChange={(v) => set("handlerParameters", v)} />
      </details>
      <FieldProblem problem={problem} name="handlers" />
      <FieldProblem problem={problem} name="handlerParameters" />
    </>
  );
}

// --------------------------------------------------------------------------------------------- schedules

const SCHEDULE_FIELDS: Record<string, FormField[]> = {
  repeat: [
    { key: "interval", label: "Every", kind: "text", placeholder: EXAMPLES.scheduleSpecs.repeat.interval,
      hint: "30s, 5m, 1h" },
    { key: "repeatCount", label: "Times", kind: "number", placeholder: "0", hint: "0: no limit" },
  ],
  cron: [{ key: "cronExpression", label: "Cron expression", kind: "text",
    placeholder: EXAMPLES.scheduleSpecs.cron.cronExpression, hint: "second minute hour day month weekday" }],
  simple: [
    { key: "frequency", label: "Frequency", kind: "select", options: ["daily", "weekly", "monthly", "on_date"] },
    { key: "time", label: "At", kind: "text", placeholder: EXAMPLES.scheduleSpecs.simple.time, hint: "HH:MM[:SS]" },
    { key: "dayOfWeek", label: "Days of week", kind: "text", placeholder: "MON-FRI", hint: "weekly: 1,3,5 or MON-FRI" },
    { key: "dateOfMonth", label: "Day of month", kind: "number", placeholder: "1", hint: "monthly" },
    { key: "date", label: "Date", kind: "text", placeholder: "2026-12-24", hint: "on_date" },
  ],
};
const SUN_FIELDS: FormField[] = [
  { key: "frequency", label: "Frequency", kind: "select", options: ["daily", "weekly", "monthly", "on_date"] },
  { key: "offset", label: "Offset", kind: "text", placeholder: EXAMPLES.scheduleSpecs.sunset.offset,
    hint: "before (-) or after" },
  { key: "dayOfWeek", label: "Days of week", kind: "text", placeholder: "MON-FRI", hint: "weekly" },
];

function ScheduleForm({ record: r, set, setRecord, onValidity, problem, handlers }: FormProps) {
  const type = String(r.type);
  const fields = SCHEDULE_FIELDS[type] ?? SUN_FIELDS;
  const context = useTemplateContext(null, { id: r.id, description: r.description });
  return (
    <>
      <Section title="When">
        <div className="row">
          <Select label="Type" value={type} options={[...SCHEDULE_TYPES]}
            onChange={(v) => setRecord({ ...r, type: v, spec: scheduleSpec(v) })} />
          <Text label="Time zone" value={r.timezone} placeholder={`e.g. ${EXAMPLES.timezone}`} hint="empty: the system's"
            onChange={(v) => set("timezone", v)} />
        </div>
        <ObjectForm fields={fields} value={obj(r.spec)} prefix="" onChange={(v) => set("spec", v)} />
        <details className="advanced">
          <summary>Advanced: spec, validity and variables as JSON</summary>
          <JsonArea label="Spec" onValidity={onValidity} value={r.spec} onChange={(v) => set("spec", v)} rows={3} />
          <JsonArea label="Validity" onValidity={onValidity} value={r.validity} onChange={(v) => set("validity", v)}
            rows={4} />
          <JsonArea label="Variables" onValidity={onValidity} value={r.variables} onChange={(v) => set("variables", v)}
            rows={3} hint={`e.g. ${JSON.stringify(EXAMPLES.variables)}`} />
        </details>
        <FieldProblem problem={problem} name="spec" />
        <FieldProblem problem={problem} name="timezone" />
        <FieldProblem problem={problem} name="validity" />
      </Section>
      <Section title="Then">
        <HandlersPart record={r} set={set} onValidity={onValidity} handlers={handlers} context={context}
          problem={problem} />
      </Section>
    </>
  );
}

// --------------------------------------------------------------------------------------------- handlers

function HandlerForm({ record: r, setRecord, set, onValidity, problem }: FormProps) {
  const type = String(r.type) as HandlerType;
  const spec = obj(r.spec);
  return (
    <Section title="Handler">
      <Select label="Type" value={type} options={[...HANDLER_TYPES]}
        onChange={(v) => setRecord({ ...r, type: v, spec: blankSpec(v) })} />
      <ObjectForm fields={SPEC_FIELDS[type] ?? []} value={spec} prefix="" onChange={(v) => set("spec", v)} />
      {(SPEC_FIELDS[type] ?? []).map((f) => <FieldProblem key={f.key} problem={problem} name={`spec.${f.key}`} />)}
      <FieldProblem problem={problem} name="spec" />
      <p className="muted">What each call says (the message, a body, a topic) comes from the task or schedule that runs
        the handler: its “{type} parameter” form.</p>
      <details className="advanced">
        <summary>Advanced: spec as JSON</summary>
        <JsonArea label="Spec" onValidity={onValidity} hint="secrets are never shown again once saved" value={spec}
          rows={6} onChange={(v) => set("spec", v)} />
      </details>
    </Section>
  );
}

// --------------------------------------------------------------------------------------------- forward payloads

function ForwardForm({ record: r, set, problem }: FormProps) {
  const source = String(r.srcFieldId ?? "");
  const context = useTemplateContext(source || null, { id: r.id });
  return (
    <Section title="Forward" hint="Every new value of the source field is sent to the destination field.">
      <div className="row">
        <FieldPicker label="Source field" value={source} quick placeholder={`e.g. ${EXAMPLES.forward.srcFieldId}`}
          onChange={(v) => set("srcFieldId", v)} invalid={problem?.at === "srcFieldId" ? problem.message : undefined} />
        <FieldPicker label="Destination field" value={String(r.dstFieldId ?? "")} quick
          placeholder={`e.g. ${EXAMPLES.forward.dstFieldId}`} onChange={(v) => set("dstFieldId", v)}
          invalid={problem?.at === "dstFieldId" ? problem.message : undefined} />
      </div>
      <label>
        <span>Template <small className="muted">(optional: value, field and event are in scope)</small></span>
        <input aria-label="Template (optional)" value={String(r.template ?? "")}
          placeholder={`e.g. ${EXAMPLES.forward.template}`} onChange={(e) => set("template", e.target.value)} />
        <FieldProblem problem={problem} name="template" />
      </label>
      {Boolean(r.template) && context && <TemplatePreview template={String(r.template)} context={context} />}
    </Section>
  );
}

