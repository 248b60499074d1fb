// Names and labels edited where they are shown: the text with a Rename (or Edit labels) button for those who may
// change it; Enter or Save stores it, Escape or Cancel leaves it. Sent on the one submit path (apiForm.ts): one
// busy state, no double submit, the problem said beside the input.

import { type ReactNode, useState } from "react";
import { z } from "zod/mini";

import { allows, useRole } from "../api/roles";
import { useApiForm } from "./apiForm";
import { labelsToText, textToLabels } from "./common";
import { FieldProblem, invalidProps } from "./Form";

const NameSchema = z.object({ value: z.string() });

export function InlineText({ value, label, onSave, children, placeholder, buttonOnly }: {
  value: string; label: string; onSave: (value: string) => Promise<unknown>; children?: ReactNode; placeholder?: string;
  /** Show only the Rename button (the text is shown elsewhere, e.g. in a heading). */
  buttonOnly?: boolean;
}) {
  const may = allows(useRole(), "user");
  const [editing, setEditing] = useState(false);
  if (!editing) {
    return (
      <span className="inline-edit">
        {!buttonOnly && (children ?? value)}
        {may && (
          <button type="button" className="link-button" aria-label={`rename ${label}`} onClick={() => setEditing(true)}>
            Rename
          </button>
        )}
      </span>
    );
  }
  return <InlineTextForm value={value} label={label} placeholder={placeholder} onSave={onSave}
    onClose={() => setEditing(false)} />;
}

function InlineTextForm({ value, label, placeholder, onSave, onClose }: {
  value: string; label: string; placeholder?: string; onSave: (value: string) => Promise<unknown>; onClose: () => void;
}) {
  const { form, onSubmit, busy, problem } = useApiForm({
    schema: NameSchema, defaultValues: { value }, names: ["value"],
    submit: ({ value: text }) => onSave(text.trim()),
    onDone: onClose,
  });
  return (
    <form className="inline-edit editing" onSubmit={(e) => {
      e.stopPropagation();
      void onSubmit(e);
    }} onKeyDown={(e) => e.key === "Escape" && onClose()}>
      <input aria-label={`new name for ${label}`} autoFocus placeholder={placeholder} disabled={busy}
        {...form.register("value")} {...invalidProps(problem ? { ...problem, at: "value" } : null, "value")} />
      <button type="submit" className="primary" disabled={busy}>{busy ? "Saving…" : "Save"}</button>
      <button type="button" onClick={onClose} disabled={busy}>Cancel</button>
      <FieldProblem problem={problem ? { ...problem, at: "value" } : null} name="value" />
    </form>
  );
}

const LabelsSchema = z.object({ labels: z.string() });

export function InlineLabels({ labels, onSave, children }: {
  labels: Record<string, string>; onSave: (labels: Record<string, string>) => Promise<unknown>; children?: ReactNode;
}) {
  const may = allows(useRole(), "user");
  const [editing, setEditing] = useState(false);
  if (!editing) {
    return (
      <span className="inline-edit">
        {children}
        {may && <button type="button" className="link-button" onClick={() => setEditing(true)}>Edit labels</button>}
      </span>
    );
  }
  return <InlineLabelsForm labels={labels} onSave={onSave} onClose={() => setEditing(false)} />;
}

function InlineLabelsForm({ labels, onSave, onClose }: {
  labels: Record<string, string>; onSave: (labels: Record<string, string>) => Promise<unknown>; onClose: () => void;
}) {
  const { form, onSubmit, busy, problem } = useApiForm({
    schema: LabelsSchema, defaultValues: { labels: labelsToText(labels) }, names: ["labels"],
    submit: ({ labels: text }) => onSave(textToLabels(text)),
    onDone: onClose,
  });
  const at = problem ? { ...problem, at: "labels" } : null; // whatever the server names, it is about these labels
  return (
    <form className="inline-edit editing labels-edit" onSubmit={onSubmit}
      onKeyDown={(e) => e.key === "Escape" && onClose()}>
      <label>
        Labels <small className="muted">key=value, one a line</small>
        <textarea aria-label="labels" rows={3} autoFocus disabled={busy} {...form.register("labels")}
          {...invalidProps(at, "labels")} />
      </label>
      <div className="actions">
        <button type="submit" className="primary" disabled={busy}>{busy ? "Saving…" : "Save labels"}</button>
        <button type="button" onClick={onClose} disabled={busy}>Cancel</button>
        <FieldProblem problem={at} name="labels" />
      </div>
    </form>
  );
}
