// Shows a field's value and lets the user set it: a switch for binary fields, an input for the others.
// The stored value changes when the device echoes, so the control shows "pending" until the event arrives.
// A viewer sees the value only (setting a field is the user role's work).

import { useEffect, useState } from "react";

import { setField } from "../api/client";
import { allows, useRole } from "../api/roles";
import type { FieldRecord } from "../live/fields";
import { errorText, formatValue } from "./common";

export function Toggle({ on, pending, disabled, onClick, label }: {
  on: boolean; pending?: boolean; disabled?: boolean; onClick: () => void; label: string;
}) {
  return (
    <button
      type="button"
      role="switch"
      aria-checked={on}
      aria-label={label}
      className={`toggle ${on ? "on" : "off"} ${pending ? "pending" : ""}`}
      disabled={disabled}
      onClick={onClick}
    >
      <span className="toggle-knob" />
    </button>
  );
}

export function useSetField(field: FieldRecord | undefined) {
  const allowed = allows(useRole(), "user");
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const stamp = field?.current?.timestamp;
  useEffect(() => setPending(false), [stamp]);
  useEffect(() => {
    if (!pending) return undefined;
    const handle = setTimeout(() => setPending(false), 10_000);
    return () => clearTimeout(handle);
  }, [pending]);
  const send = async (payload: string | number | boolean) => {
    if (!field) return;
    setPending(true);
    setError(null);
    try {
      await setField(field.id, payload);
    } catch (err) {
      setPending(false);
      setError(errorText(err));
    }
  };
  return { pending, error, send, allowed };
}

export function FieldControl({ field, compact }: { field: FieldRecord; compact?: boolean }) {
  const { pending, error, send, allowed } = useSetField(field);
  const [text, setText] = useState("");
  const value = field.current?.value;
  if (field.metricType === "binary") {
    return (
      <span className="field-control">
        <Toggle on={Boolean(value)} pending={pending} onClick={() => send("toggle")} label={`toggle ${field.id}`}
          disabled={!allowed} />
        {!compact && <span className="muted">{pending ? "sent…" : formatValue(value)}</span>}
        {error && <span className="error-inline">{error}</span>}
      </span>
    );
  }
  return (
    <form
      className="field-control"
      onSubmit={(e) => {
        e.preventDefault();
        if (text.trim() !== "") send(text.trim()).then(() => setText(""));
      }}
    >
      <strong>{formatValue(value, field.unit)}</strong>
      {!compact && allowed && (
        <>
          <input
            aria-label={`new value for ${field.id}`}
            value={text}
            placeholder="new value"
            size={8}
            onChange={(e) => setText(e.target.value)}
          />
          <button type="submit" disabled={pending || text.trim() === ""}>
            {pending ? "sent…" : "Set"}
          </button>
        </>
      )}
      {error && <span className="error-inline">{error}</span>}
    </form>
  );
}
