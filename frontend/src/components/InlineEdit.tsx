// Names and labels edited where they are shown: the text with a Rename (or Edit labels) button for those who may
// change it; Enter or Save stores it, Escape or Cancel leaves it. One busy state, no double submit, the problem
// said beside the input.

import { type FormEvent, type ReactNode, useState } from "react";

import { errorText } from "../api/errors";
import { allows, useRole } from "../api/roles";
import { labelsToText, textToLabels } from "./common";

export function InlineText({ value, label, onSave, children, placeholder, buttonOnly }: {
  value: string; label: string; onSave: (value: string) => Promise<unknown>; children?: ReactNode; placeholder?: string;
  /** Show only the Rename button (the text is shown elsewhere, e.g. in a heading). */
  buttonOnly?: boolean;
}) {
  const may = allows(useRole(), "user");
  const [draft, setDraft] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  if (draft === null) {
    return (
      <span className="inline-edit">
        {!buttonOnly && (children ?? value)}
        {may && (
          <button type="button" className="link-button" aria-label={`rename ${label}`} onClick={() => setDraft(value)}>
            Rename
          </button>
        )}
      </span>
    );
  }
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    event.stopPropagation();
    if (busy) return;
    setBusy(true);
    setProblem(null);
    try {
      await onSave(draft.trim());
      setDraft(null);
    } catch (err) {
      setProblem(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="inline-edit editing" onSubmit={submit} onKeyDown={(e) => e.key === "Escape" && setDraft(null)}>
      <input aria-label={`new name for ${label}`} value={draft} autoFocus placeholder={placeholder} disabled={busy}
        aria-invalid={problem ? true : undefined} onChange={(e) => setDraft(e.target.value)} />
      <button type="submit" className="primary" disabled={busy}>{busy ? "Saving…" : "Save"}</button>
      <button type="button" onClick={() => setDraft(null)} disabled={busy}>Cancel</button>
      {problem && <span className="error-inline" role="alert">{problem}</span>}
    </form>
  );
}

export function InlineLabels({ labels, onSave, children }: {
  labels: Record<string, string>; onSave: (labels: Record<string, string>) => Promise<unknown>; children?: ReactNode;
}) {
  const may = allows(useRole(), "user");
  const [draft, setDraft] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  if (draft === null) {
    return (
      <span className="inline-edit">
        {children}
        {may && <button type="button" className="link-button" onClick={() => setDraft(labelsToText(labels))}>Edit labels</button>}
      </span>
    );
  }
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (busy) return;
    setBusy(true);
    setProblem(null);
    try {
      await onSave(textToLabels(draft));
      setDraft(null);
    } catch (err) {
      setProblem(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="inline-edit editing labels-edit" onSubmit={submit}
      onKeyDown={(e) => e.key === "Escape" && setDraft(null)}>
      <label>
        Labels <small className="muted">key=value, one a line</small>
        <textarea aria-label="labels" rows={3} value={draft} autoFocus disabled={busy} onChange={(e) => setDraft(e.target.value)} />
      </label>
      <div className="actions">
        <button type="submit" className="primary" disabled={busy}>{busy ? "Saving…" : "Save labels"}</button>
        <button type="button" onClick={() => setDraft(null)} disabled={busy}>Cancel</button>
        {problem && <span className="error-inline" role="alert">{problem}</span>}
      </div>
    </form>
  );
}
