// The automation editors' model, pure: blank records, the form fields of each handler type (its spec, and the
// parameters a task or schedule gives it), the checks that find a task that will do nothing, what a handler's last
// run means, and a preview of templates. Every example the forms show comes from examples.json, which a browser
// test sends to the API (so no hint is a task that silently never runs).

import examples from "./examples.json";

export type AutomationKind = "task" | "schedule" | "handler" | "forwardpayload";
export type Rec = Record<string, unknown> & { id: string };

export const KINDS: Record<AutomationKind, { title: string; singular: string; entityType: string }> = {
  task: { title: "Tasks", singular: "task", entityType: "task" },
  schedule: { title: "Schedules", singular: "schedule", entityType: "schedule" },
  handler: { title: "Handlers", singular: "handler", entityType: "handler" },
  forwardpayload: { title: "Forward payloads", singular: "forward payload", entityType: "forward_payload" },
};

export const EXAMPLES = examples;
export const ENTITY_TYPES = ["field", "node", "source", "gateway", "task", "schedule", "handler", "forward_payload"];
export const EVENT_TYPES = ["created", "updated", "deleted", "requested"];
export const OPERATORS: Array<[string, string]> = [
  ["eq", "="], ["ne", "≠"], ["gt", ">"], ["gte", "≥"], ["lt", "<"], ["lte", "≤"], ["in", "in (a, b)"],
  ["nin", "not in (a, b)"], ["range_in", "between [a, b]"], ["range_not_in", "outside [a, b]"], ["exists", "exists"],
  ["regex", "matches (regex)"],
];
export const HANDLER_TYPES = ["webhook", "email", "telegram", "sms", "mqtt", "resource", "noop"] as const;
export type HandlerType = (typeof HANDLER_TYPES)[number];
export const SCHEDULE_TYPES = ["repeat", "cron", "simple", "sunrise", "sunset"] as const;
export const EVALUATION_TYPES = ["rule", "expression"];
export const DAMPENING_TYPES = ["none", "consecutive", "evaluation", "active_duration"];

/** One input of a form over an object (a handler's spec, a handler parameter, a schedule's spec). */
export interface FormField {
  key: string;
  label: string;
  kind: "text" | "textarea" | "list" | "number" | "select" | "checkbox" | "password" | "field";
  placeholder?: string;
  options?: string[];
  hint?: string;
  /** A template: the preview shows it rendered. */
  template?: boolean;
}

const spec = examples.handlerSpecs;
const param = examples.handlerParameters;

/** The handler's own settings, per type (what every call of it uses unless a parameter says otherwise). */
export const SPEC_FIELDS: Record<HandlerType, FormField[]> = {
  webhook: [
    { key: "url", label: "URL", kind: "text", placeholder: spec.webhook.url },
    { key: "method", label: "Method", kind: "select", options: ["POST", "GET", "PUT", "PATCH", "DELETE"] },
    { key: "expectedStatus", label: "Expected status", kind: "number", placeholder: "200" },
    { key: "timeout", label: "Timeout", kind: "text", placeholder: "10s" },
    { key: "username", label: "Username", kind: "text" },
    { key: "password", label: "Password", kind: "password", hint: "never shown again once saved" },
    { key: "insecure", label: "Accept any TLS certificate", kind: "checkbox" },
  ],
  email: [
    { key: "from", label: "From", kind: "text", placeholder: spec.email.from },
    { key: "to", label: "To", kind: "list", placeholder: spec.email.to.join(", "), hint: "comma-separated" },
    { key: "host", label: "SMTP host", kind: "text", placeholder: spec.email.host, hint: "empty: Amazon SES in AWS" },
    { key: "port", label: "Port", kind: "number", placeholder: String(spec.email.port) },
    { key: "username", label: "Username", kind: "text" },
    { key: "password", label: "Password", kind: "password", hint: "never shown again once saved" },
    { key: "tls", label: "TLS", kind: "select", options: ["starttls", "ssl", "none"] },
  ],
  telegram: [
    { key: "token", label: "Bot token", kind: "password", placeholder: spec.telegram.token,
      hint: "never shown again once saved" },
    { key: "chatIds", label: "Chat ids", kind: "list", placeholder: spec.telegram.chatIds.join(", "),
      hint: "comma-separated" },
    { key: "parseMode", label: "Parse mode", kind: "select", options: ["", "Markdown", "MarkdownV2", "HTML"] },
  ],
  sms: [
    { key: "phoneNumbers", label: "Phone numbers", kind: "list", placeholder: spec.sms.phoneNumbers.join(", "),
      hint: "comma-separated" },
    { key: "senderId", label: "Sender id", kind: "text" },
  ],
  mqtt: [
    { key: "broker", label: "Broker", kind: "text", placeholder: spec.mqtt.broker, hint: "empty: the platform's own" },
    { key: "topic", label: "Topic", kind: "text", placeholder: spec.mqtt.topic },
    { key: "qos", label: "QoS", kind: "select", options: ["0", "1", "2"] },
    { key: "username", label: "Username", kind: "text" },
    { key: "password", label: "Password", kind: "password", hint: "never shown again once saved" },
  ],
  resource: [],
  noop: [],
};

/** What a task or schedule gives a handler of each type when it fires (templates rendered first). */
export const PARAM_FIELDS: Record<HandlerType, FormField[]> = {
  webhook: [
    { key: "body", label: "Body", kind: "textarea", placeholder: param.webhook.body, template: true },
    { key: "url", label: "URL", kind: "text", hint: "empty: the handler's" },
    { key: "method", label: "Method", kind: "select", options: ["", "POST", "GET", "PUT", "PATCH", "DELETE"] },
  ],
  email: [
    { key: "to", label: "To", kind: "list", hint: "empty: the handler's" },
    { key: "subject", label: "Subject", kind: "text", placeholder: param.email.subject, template: true },
    { key: "body", label: "Body", kind: "textarea", placeholder: param.email.body, template: true },
  ],
  telegram: [
    { key: "text", label: "Text", kind: "textarea", placeholder: param.telegram.text, template: true },
    { key: "chatIds", label: "Chat ids", kind: "list", hint: "empty: the handler's" },
  ],
  sms: [
    { key: "text", label: "Text", kind: "textarea", placeholder: param.sms.text, template: true },
    { key: "phoneNumbers", label: "Phone numbers", kind: "list", hint: "empty: the handler's" },
  ],
  mqtt: [
    { key: "topic", label: "Topic", kind: "text", placeholder: param.mqtt.topic, hint: "empty: the handler's" },
    { key: "payload", label: "Payload", kind: "textarea", placeholder: param.mqtt.payload, template: true },
    { key: "qos", label: "QoS", kind: "select", options: ["", "0", "1", "2"] },
    { key: "retain", label: "Retain", kind: "checkbox" },
  ],
  resource: [
    { key: "quickId", label: "Target", kind: "field", placeholder: param.resource.quickId,
      hint: "a field (or task:…, schedule:…, node:…)" },
    { key: "payload", label: "Value", kind: "text", placeholder: param.resource.payload,
      hint: "the value, toggle; enable/disable for automation", template: true },
    { key: "delay", label: "After", kind: "text", placeholder: "30s", hint: "optional delay" },
  ],
  noop: [],
};

/** A handler's spec with nothing filled in (examples are placeholders, never values that would be saved). */
export function blankSpec(type: string): Record<string, unknown> {
  switch (type) {
    case "webhook": return { url: "", method: "POST" };
    case "email": return { from: "", to: [], host: "", port: 587, tls: "starttls" };
    case "telegram": return { token: "", chatIds: [] };
    case "sms": return { phoneNumbers: [] };
    case "mqtt": return { broker: "", topic: "", qos: 0 };
    default: return {};
  }
}

/** A schedule's spec to start from, per type (a working example: examples.json). */
export function scheduleSpec(type: string): Record<string, unknown> {
  return { ...((examples.scheduleSpecs as Record<string, Record<string, unknown>>)[type] ?? {}) };
}

export function blank(kind: AutomationKind): Rec {
  switch (kind) {
    case "task":
      return { id: "", description: "", enabled: true, triggerOnEvent: true, ignoreDuplicate: false,
        autoDisable: false, reEnable: false, reEnableDuration: "", executionInterval: "",
        eventFilter: { eventTypes: ["updated"], entityTypes: ["field"], filters: {} }, evaluationType: "rule",
        evaluationConfig: { rule: { matchAll: true, conditions: [] }, expression: "" },
        dampening: { type: "none", occurrences: 0, evaluation: 0, activeDuration: "" },
        variables: {}, handlerParameters: {}, handlers: [], labels: {} };
    case "schedule":
      return { id: "", description: "", enabled: true, type: "repeat", spec: scheduleSpec("repeat"), timezone: "",
        validity: { enabled: false, date: { from: "", to: "" }, time: { from: "", to: "" }, validateTimeEveryday: false },
        variables: {}, handlerParameters: {}, handlers: [], labels: {} };
    case "handler":
      return { id: "", description: "", enabled: true, type: "webhook", spec: blankSpec("webhook"), labels: {} };
    case "forwardpayload":
      return { id: "", description: "", enabled: true, srcFieldId: "", dstFieldId: "", template: "", labels: {} };
  }
}

/** Fields the server owns: not sent back on save. */
export function forSave(record: Rec): Rec {
  const { state: _state, modifiedOn: _modifiedOn, ...rest } = record;
  return rest as Rec;
}

/** A form value as the API wants it: lists from "a, b", numbers from text, empty optional values left out. */
export function formValue(field: FormField, raw: unknown): unknown {
  if (field.kind === "list") {
    const items = Array.isArray(raw) ? raw : String(raw ?? "").split(",");
    return items.map((item) => String(item).trim()).filter(Boolean);
  }
  if (field.kind === "number" || (field.kind === "select" && field.key === "qos")) {
    const text = String(raw ?? "").trim();
    return text === "" ? undefined : Number(text);
  }
  if (field.kind === "checkbox") return Boolean(raw);
  return raw;
}

/** The text an input shows for a value. */
export function inputText(field: FormField, value: unknown): string {
  if (value === undefined || value === null) return "";
  if (field.kind === "list" && Array.isArray(value)) return value.join(", ");
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

/** An object with one key set from a form input; empty optional values are removed (the server's default). */
export function setFormKey(object: Record<string, unknown>, field: FormField, raw: unknown): Record<string, unknown> {
  const value = formValue(field, raw);
  const next = { ...object };
  const empty = value === undefined || value === "" || (Array.isArray(value) && value.length === 0 && field.kind !== "list");
  if (empty && field.kind !== "list") delete next[field.key];
  else next[field.key] = value;
  return next;
}

// --------------------------------------------------------------------------------------------- handler parameters

export interface HandlerInfo {
  id: string;
  type: string;
  description?: string;
  enabled?: boolean;
  state?: { status?: string; message?: string; since?: string };
}

/** The parameter a handler of `type` will use: the typed one, else a plain text one (a message), else none. */
export function parameterFor(parameters: Record<string, unknown>, type: string): [string, unknown] | null {
  const typed = Object.entries(parameters).find(([, v]) => v && typeof v === "object" && (v as { type?: string }).type === type);
  if (typed) return typed;
  if (["webhook", "email", "telegram", "sms", "mqtt"].includes(type)) {
    const text = Object.entries(parameters).find(([, v]) => typeof v === "string");
    if (text) return text;
  }
  return null;
}

/** Handlers a task or schedule names that will make no call, and why (shown before it is saved). */
export function silentHandlers(handlerIds: string[], parameters: Record<string, unknown>,
  handlers: HandlerInfo[]): string[] {
  const problems: string[] = [];
  for (const id of handlerIds) {
    const handler = handlers.find((h) => h.id === id);
    if (!handler) {
      problems.push(`handler ${id} does not exist`);
      continue;
    }
    if (handler.enabled === false) problems.push(`handler ${id} is disabled: it will not run`);
    if (handler.type === "noop") continue;
    if (!parameterFor(parameters, handler.type)) {
      problems.push(`handler ${id} (${handler.type}) gets no ${handler.type} parameter: it would make no call. ` +
        `Fill in its ${handler.type} form below.`);
    }
  }
  return problems;
}

/** What a handler's last run means, in words ("0 calls made" says why; "0 call(s) made" from older servers). */
export function handlerOutcome(handler: HandlerInfo): { status: string; text: string } {
  const state = handler.state ?? {};
  const message = state.message ?? "";
  if (!state.since && !message) return { status: "never", text: "not run yet" };
  if (/^0 call(s|\(s\)) made/.test(message)) {
    return { status: "warn", text: `made no call: the task or schedule that ran it gave no ${handler.type} ` +
      "parameter (add one in its handler form)" };
  }
  return { status: state.status === "error" ? "error" : state.status ?? "ok", text: message || state.status || "" };
}

/** What a task's last evaluation means, in words. */
export function taskOutcome(state: Record<string, unknown> | undefined): { status: string; text: string } {
  const s = (state ?? {}) as { lastEvaluation?: string; lastSuccess?: string; message?: string; lastStatus?: boolean };
  if (!s.lastEvaluation) return { status: "never", text: "not evaluated yet" };
  if (s.message) {
    return { status: /failed|error|cannot|invalid|refused/i.test(s.message) ? "error" : "ok", text: s.message };
  }
  return { status: "ok", text: s.lastStatus ? "conditions held" : "conditions did not hold" };
}

// --------------------------------------------------------------------------------------------- task checks

/** What will keep a task from ever running, found before it is saved. */
export function taskProblems(task: Rec, handlers: HandlerInfo[]): string[] {
  const problems: string[] = [];
  const filter = (task.eventFilter ?? {}) as { filters?: Record<string, unknown>; entityTypes?: string[] };
  for (const key of Object.keys(filter.filters ?? {})) {
    if (/^(entity|event)\./.test(key)) {
      problems.push(`event filter "${key}": filters apply to the entity itself; write "${key.replace(/^(entity|event)\./, "")}"`);
    }
  }
  if (!task.triggerOnEvent && !String(task.executionInterval ?? "").trim()) {
    problems.push("the task has no trigger: choose on events, or an interval");
  }
  const rule = ((task.evaluationConfig as { rule?: { conditions?: Array<{ variable?: string }> } })?.rule ?? {});
  const names = ["entity", "event", "task", ...Object.keys((task.variables ?? {}) as object)];
  (rule.conditions ?? []).forEach((condition, index) => {
    const head = String(condition.variable ?? "").split(".")[0];
    if (!condition.variable) problems.push(`condition ${index + 1}: choose what to compare`);
    else if (task.evaluationType === "rule" && !names.includes(head)) {
      problems.push(`condition ${index + 1}: "${condition.variable}" is not a variable; start with entity (the entity ` +
        `of the event, e.g. entity.current.value), event, task, or one of the task's variables`);
    }
  });
  problems.push(...silentHandlers((task.handlers as string[]) ?? [], (task.handlerParameters ?? {}) as Record<string,
    unknown>, handlers));
  return problems;
}

// --------------------------------------------------------------------------------------------- template preview

const PATH = /^[A-Za-z_][\w]*(\.[\w]+)*$/;

function lookup(context: Record<string, unknown>, path: string): unknown {
  return path.split(".").reduce<unknown>((value, key) =>
    (value && typeof value === "object" ? (value as Record<string, unknown>)[key] : undefined), context);
}

/** A template rendered against a context for a preview: `{{ a.b }}` (with `| round`, `| upper`, `| lower`) is
 * filled in; anything more (expressions, conditions) is marked as computed when it runs. Never evaluates code. */
export function previewTemplate(template: string, context: Record<string, unknown>): { text: string; exact: boolean } {
  let exact = true;
  const text = template.replace(/\{\{\s*(.*?)\s*\}\}/g, (_all, inner: string) => {
    const [expression, ...filters] = inner.split("|").map((part) => part.trim());
    if (!PATH.test(expression)) {
      exact = false;
      return "…";
    }
    let value = lookup(context, expression);
    for (const filter of filters) {
      if (/^round(\(\d*\))?$/.test(filter) && typeof value === "number") {
        const digits = Number(/\((\d+)\)/.exec(filter)?.[1] ?? 0);
        value = Number(value.toFixed(digits));
      } else if (filter === "upper") value = String(value).toUpperCase();
      else if (filter === "lower") value = String(value).toLowerCase();
      else exact = false;
    }
    if (value === undefined) {
      exact = false;
      return `{${expression}?}`;
    }
    return typeof value === "object" ? JSON.stringify(value) : String(value);
  });
  return { text, exact };
}
