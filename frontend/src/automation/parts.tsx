// Pieces of the automation editors: inputs, a form over an object from its field list, a searchable field picker
// that shows names, a JSON area that reports when it does not parse (the editor then refuses to save), and a
// preview of a template against a field's current value.

import { zodResolver } from "@hookform/resolvers/zod";
import { type ReactNode, useEffect, useId, useMemo, useRef } from "react";
import { useForm } from "react-hook-form";
import { z } from "zod/mini";

import { fieldParts } from "../api/names";
import { FieldPicker } from "../components/FieldPicker";
import { useFields } from "../live/fields";
import { type FormField, inputText, previewTemplate, setFormKey } from "./model";

export function Section({ title, children, hint }: { title: string; children: ReactNode; hint?: ReactNode }) {
  return (
    <fieldset className="section">
      <legend>{title}</legend>
      {hint && <p className="muted section-hint">{hint}</p>}
      {children}
    </fieldset>
  );
}

export function Check({ label, checked, onChange }: { label: string; checked: boolean; onChange: (v: boolean) => void }) {
  return (
    <label className="check">
      <input type="checkbox" checked={checked} onChange={(e) => onChange(e.target.checked)} /> {label}
    </label>
  );
}

export function Text({ label, value, onChange, placeholder, hint, invalid, type = "text" }: {
  label: string; value: unknown; onChange: (v: string) => void; placeholder?: string; hint?: ReactNode; invalid?: string;
  type?: string;
}) {
  const id = useId();
  return (
    <label>
      <span>{label}{hint && <small className="muted"> {hint}</small>}</span>
      <input aria-label={label} type={type} value={value === undefined || value === null ? "" : String(value)}
        placeholder={placeholder} onChange={(e) => onChange(e.target.value)} aria-invalid={invalid ? true : undefined}
        aria-describedby={invalid ? id : undefined} />
      {invalid && <span className="error-inline" id={id} role="alert">{invalid}</span>}
    </label>
  );
}

export function Select({ label, value, options, onChange, labels }: {
  label: string; value: string; options: string[]; onChange: (v: string) => void; labels?: Record<string, string>;
}) {
  return (
    <label>
      {label}
      <select aria-label={label} value={value} onChange={(e) => onChange(e.target.value)}>
        {options.map((o) => <option key={o} value={o}>{labels?.[o] ?? (o === "" ? "(default)" : o)}</option>)}
      </select>
    </label>
  );
}

export function MultiCheck({ label, options, value, onChange, labels }: {
  label: string; options: string[]; value: string[]; onChange: (v: string[]) => void; labels?: Record<string, string>;
}) {
  return (
    <fieldset className="multi">
      <legend>{label}</legend>
      {options.map((o) => (
        <label key={o} className="check">
          <input type="checkbox" aria-label={`${label} ${o}`} checked={value.includes(o)}
            onChange={(e) => onChange(e.target.checked ? [...value, o] : value.filter((v) => v !== o))} />
          {" "}{labels?.[o] ?? o.replace("_", " ")}
        </label>
      ))}
    </fieldset>
  );
}

/** A form over an object, from its field list. */
export function ObjectForm({ fields, value, onChange, prefix, preview }: {
  fields: FormField[]; value: Record<string, unknown>; onChange: (v: Record<string, unknown>) => void; prefix: string;
  /** Context templates are previewed against (the example entity); none: no preview. */
  preview?: Record<string, unknown> | null;
}) {
  if (fields.length === 0) return <p className="muted">Nothing to set.</p>;
  return (
    <div className="object-form">
      {fields.map((field) => {
        const label = `${prefix} ${field.label}`.trim();
        const text = inputText(field, value[field.key]);
        const set = (raw: unknown) => onChange(setFormKey(value, field, raw));
        const hint = field.hint && <small className="muted"> {field.hint}</small>;
        switch (field.kind) {
          case "checkbox":
            return (
              <label key={field.key} className="check">
                <input type="checkbox" aria-label={label} checked={Boolean(value[field.key])}
                  onChange={(e) => set(e.target.checked)} /> {field.label}
              </label>
            );
          case "select":
            return (
              <label key={field.key}>
                <span>{field.label}{hint}</span>
                <select aria-label={label} value={text} onChange={(e) => set(e.target.value)}>
                  {(field.options ?? []).map((o) => <option key={o} value={o}>{o === "" ? "(default)" : o}</option>)}
                </select>
              </label>
            );
          case "field":
            return <FieldPicker key={field.key} label={label} shownLabel={field.label} value={text} quick
              onChange={set} placeholder={field.placeholder} hint={field.hint} />;
          case "textarea":
            return (
              <label key={field.key} className="wide">
                <span>{field.label}{hint}</span>
                <textarea aria-label={label} rows={2} value={text} placeholder={field.placeholder}
                  onChange={(e) => set(e.target.value)} />
                {field.template && preview && text && <TemplatePreview template={text} context={preview} />}
              </label>
            );
          default:
            return (
              <label key={field.key}>
                <span>{field.label}{hint}</span>
                <input aria-label={label} type={field.kind === "password" ? "password" : "text"}
                  inputMode={field.kind === "number" ? "numeric" : undefined} value={text} placeholder={field.placeholder}
                  autoComplete={field.kind === "password" ? "new-password" : undefined}
                  onChange={(e) => set(e.target.value)} />
                {field.template && preview && text.includes("{{") && <TemplatePreview template={text} context={preview} />}
              </label>
            );
        }
      })}
    </div>
  );
}

/** The template rendered against the example context (the chosen field's current value). */
export function TemplatePreview({ template, context }: { template: string; context: Record<string, unknown> }) {
  const { text, exact } = previewTemplate(template, context);
  return (
    <output className="template-preview" aria-label="preview">
      <span className="muted">preview: </span>{text}
      {!exact && <span className="muted"> (… is worked out when it runs)</span>}
    </output>
  );
}

/** The context a task's templates see for the event of a field: entity (the field), event, task. */
export function useTemplateContext(fieldId: string | null, task: { id: string; description?: unknown }) {
  const ids = useMemo(() => (fieldId ? [fieldId] : []), [fieldId]);
  const { fields } = useFields(ids);
  const entity = fieldId ? fields[fieldId.replace(/^field:/, "")] : undefined;
  return useMemo(() => {
    if (!entity) return null;
    return {
      entity, value: entity.current?.value, field: entity,
      event: { type: "updated", entityType: "field", entityId: entity.id, entityQuickId: `field:${entity.id}`, entity },
      task: { id: task.id, description: task.description },
    } as Record<string, unknown>;
  }, [entity, task.id, task.description]);
}

/** What is wrong with a JSON box's text ("" reads as {}), or null when it parses. */
export function jsonProblem(text: string): string | null {
  try {
    JSON.parse(text.trim() || "{}");
    return null;
  } catch (err) {
    return `not valid JSON: ${(err as Error).message}`;
  }
}

/** A JSON box as a form: its one input is the text, which the schema refuses while it does not parse. */
export const JsonTextSchema = z.object({
  text: z.string().check(z.superRefine((text, ctx) => {
    const problem = jsonProblem(text);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  })),
});
type JsonText = z.infer<typeof JsonTextSchema>;

const pretty = (value: unknown) => JSON.stringify(value ?? {}, null, 2);

/**
 * A JSON text area for an advanced view, on react-hook-form with a zod schema (JsonTextSchema): the text is kept as
 * typed while it does not parse, the schema's message is shown at the box, and `onValidity` reports it (the editor
 * refuses to save then, rather than save what the box no longer shows). A change of the value from elsewhere (the
 * form) rewrites the text when the text parses.
 */
export function JsonArea({ label, value, onChange, onValidity, rows = 4, hint }: {
  label: string; value: unknown; onChange: (value: unknown) => void; onValidity: (label: string, error: string | null) => void;
  rows?: number; hint?: ReactNode;
}) {
  const serialized = JSON.stringify(value ?? {});
  const form = useForm<JsonText>({ resolver: zodResolver(JsonTextSchema), defaultValues: { text: pretty(value) },
    mode: "onChange" });
  const error = form.formState.errors.text?.message ?? null;
  const seen = useRef(serialized);
  const syncing = useRef(false);
  useEffect(() => {
    if (seen.current === serialized) return;
    // the value changed from elsewhere: show it, unless the text is being typed (does not parse)
    seen.current = serialized;
    if (jsonProblem(form.getValues("text")) !== null) return;
    syncing.current = true;
    form.setValue("text", JSON.stringify(JSON.parse(serialized), null, 2));
    syncing.current = false;
  }, [serialized, form]);
  // What is typed: reported (onValidity), and sent on (onChange) once it parses.
  useEffect(() => form.subscribe({ name: "text", formState: { values: true }, callback: ({ values }) => {
    if (syncing.current) return;
    const text = values.text;
    const problem = jsonProblem(text);
    onValidity(label, problem);
    if (problem) return;
    const parsed: unknown = JSON.parse(text.trim() || "{}");
    seen.current = JSON.stringify(parsed ?? {});
    onChange(parsed);
  } }), [form, label, onChange, onValidity]);
  const id = useId();
  return (
    <label className="json-area">
      <span>{label}{hint && <small className="muted"> {hint}</small>}</span>
      <textarea aria-label={label} rows={rows} spellCheck={false} aria-invalid={error ? true : undefined}
        aria-describedby={error ? id : undefined} {...form.register("text")} />
      {error && <span className="error-inline" id={id} role="alert">{error}</span>}
    </label>
  );
}

/** The id a field picker holds, as a bare field id when it is one. */
export const pickedField = (value: string) => fieldParts(value)?.id ?? null;

export { FieldPicker };
