// A field chosen by the names people gave (a searchable list: type part of a name, or an id), which says whose field
// the id is, or that there is none. Used by the automation editors and the widget settings.

import { type ReactNode, useId, useMemo } from "react";

import { useFieldLabels } from "../api/names";
import { useList } from "../api/queries";
import type { FieldRecord } from "../live/fields";

/** The fields (id → name) for pickers: every field, by node, source and field name. */
export function useFieldChoices(): Array<{ id: string; label: string }> {
  const list = useList<FieldRecord>("field", { limit: 1000, sortBy: [{ f: "id", o: "asc" }] }, { live: false });
  const rows = useMemo(() => list.data?.data ?? [], [list.data]);
  const labels = useFieldLabels(rows);
  return useMemo(() => rows.map((f) => ({ id: f.id, label: labels[f.id] ?? f.id })), [rows, labels]);
}

/** A field chosen by name or id (a searchable list: type part of a name); says whose field the id is, or that
 * there is none. `quick` stores "field:<id>". */
export function FieldPicker({ label, value, onChange, quick, placeholder, hint, invalid, shownLabel }: {
  label: string; value: string; onChange: (v: string) => void; quick?: boolean; placeholder?: string; hint?: ReactNode;
  invalid?: string;
  /** The label on screen, when the accessible name says more (which form it is in); default: `label`. */
  shownLabel?: string;
}) {
  const choices = useFieldChoices();
  const listId = useId();
  const bare = value.replace(/^field:/, "");
  const found = choices.find((c) => c.id === bare);
  const other = value.includes(":") && !value.startsWith("field:"); // task:…, node:… for resource handlers
  const describedBy = useId();
  const note = invalid ?? (!value || other ? null : found ? null : choices.length ? "no such field" : null);
  return (
    <label className="field-picker">
      <span>{shownLabel ?? label}{hint && <small className="muted"> {hint}</small>}</span>
      <input aria-label={label} list={listId} value={value} placeholder={placeholder ?? "type a name or an id"}
        aria-invalid={note ? true : undefined} aria-describedby={describedBy}
        onChange={(e) => {
          const text = e.target.value;
          const picked = choices.find((c) => c.id === text.replace(/^field:/, "") || c.label === text);
          onChange(picked ? (quick ? `field:${picked.id}` : picked.id) : text);
        }} />
      <datalist id={listId}>
        {choices.map((c) => <option key={c.id} value={quick ? `field:${c.id}` : c.id} label={c.label} />)}
      </datalist>
      <small id={describedBy} className={note ? "error-inline" : "muted"} role={invalid ? "alert" : undefined}>
        {note ?? (found ? found.label : "")}
      </small>
    </label>
  );
}

