// Shows a field's value with the control that fits it (controls.ts): a sensor's value only, a switch for a switch,
// a slider over its range for a dimmer, a number or text box for the rest, where a value out of range is refused
// with the range. The stored value changes when the device echoes, so the control shows "sent…" until the event
// arrives. A viewer sees the value only (setting a field is the user role's work).

import { type FormEvent, useCallback, useEffect, useRef, useState } from "react";

import { setField } from "../api/client";
import { errorText } from "../api/errors";
import { allows, useRole } from "../api/roles";
import type { FieldRecord } from "../live/fields";
import { checkValue, controlFor } from "./controls";
import { formatValue } from "./common";

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
  const [pendingSince, setPendingSince] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const stamp = field?.current?.timestamp ?? "";
  // Pending until the device's echo changes the stored value's timestamp (or 10 s pass).
  const pending = pendingSince !== null && pendingSince === stamp;
  useEffect(() => {
    if (pendingSince === null) return undefined;
    const handle = setTimeout(() => setPendingSince(null), 10_000);
    return () => clearTimeout(handle);
  }, [pendingSince]);
  const send = async (payload: string | number | boolean) => {
    if (!field) return;
    setPendingSince(stamp);
    setError(null);
    try {
      await setField(field.id, payload);
    } catch (err) {
      setPendingSince(null);
      setError(errorText(err));
    }
  };
  return { pending, error, send, allowed };
}

/** A range input that sends once the user lets go (not on every pixel); arrow keys send on key up. */
export function RangeSlider({ value, min, max, step, onCommit, label, disabled, unit }: {
  value: number; min: number; max: number; step: number; onCommit: (v: number) => void; label: string;
  disabled?: boolean; unit?: string;
}) {
  const [local, setLocal] = useState<number | null>(null);
  const shown = local ?? value;
  const commit = () => {
    if (local !== null && local !== value) onCommit(local);
    setLocal(null);
  };
  return (
    <span className="slider">
      <input type="range" aria-label={label} min={min} max={max} step={step} value={shown} disabled={disabled}
        aria-valuetext={formatValue(shown, unit)}
        onChange={(e) => setLocal(Number(e.target.value))} onPointerUp={commit} onKeyUp={commit} onBlur={commit} />
      <output>{formatValue(shown, unit)}</output>
    </span>
  );
}

/** How long a colour must stay still while the picker is open before it is sent (the picker's own "change" on
 * release or close sends at once). */
export const COLOUR_SETTLE_MS = 400;

/** A colour input that sends one request per colour chosen, not one per pixel dragged: the local value follows the
 * pointer, and the colour is sent when the picker reports a final choice (the native change event) or has stayed
 * still for COLOUR_SETTLE_MS; the same colour is never sent twice in a row. */
export function ColourPicker({ value, onCommit, label, disabled }: {
  value: string; onCommit: (hex: string) => void; label: string; disabled?: boolean;
}) {
  const [local, setLocal] = useState<string | null>(null);
  const input = useRef<HTMLInputElement>(null);
  const sent = useRef(value);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const latest = useRef({ value, onCommit });
  useEffect(() => {
    if (latest.current.value !== value) sent.current = value; // the device's echo is the new starting point
    latest.current = { value, onCommit };
  });
  const commit = useCallback((hex: string) => {
    clearTimeout(timer.current);
    if (hex !== sent.current && hex !== latest.current.value) {
      sent.current = hex;
      latest.current.onCommit(hex);
    }
    setLocal(null);
  }, []);
  useEffect(() => {
    const element = input.current;
    if (!element) return undefined;
    const onChange = () => commit(element.value);
    element.addEventListener("change", onChange); // React's onChange is the input event: every move
    return () => {
      element.removeEventListener("change", onChange);
      clearTimeout(timer.current);
    };
  }, [commit]);
  return (
    <input ref={input} type="color" aria-label={label} value={local ?? value} disabled={disabled}
      onChange={(e) => {
        const hex = e.target.value;
        setLocal(hex);
        clearTimeout(timer.current);
        timer.current = setTimeout(() => commit(hex), COLOUR_SETTLE_MS);
      }} />
  );
}

export function FieldControl({ field, compact, label }: { field: FieldRecord; compact?: boolean; label?: string }) {
  const { pending, error, send, allowed } = useSetField(field);
  const [text, setText] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const control = controlFor(field);
  const value = field.current?.value;
  const name = label ?? field.name ?? field.id;
  const errorLine = (problem || error) && <span className="error-inline" role="alert">{problem || error}</span>;

  if (control.kind === "switch") {
    return (
      <span className="field-control">
        <Toggle on={Boolean(value)} pending={pending} onClick={() => send("toggle")} label={`toggle ${name}`}
          disabled={!allowed} />
        {!compact && <span className="muted">{pending ? "sent…" : formatValue(value)}</span>}
        {errorLine}
      </span>
    );
  }
  if (control.kind === "slider") {
    const numeric = typeof value === "number" ? value : Number(value);
    if (!allowed) return <strong>{formatValue(value, field.unit)}</strong>;
    return (
      <span className="field-control field-control--slider" data-range={`${control.min}-${control.max}`}>
        <RangeSlider value={Number.isFinite(numeric) ? numeric : control.min} min={control.min} max={control.max}
          step={control.step} unit={field.unit} label={`set ${name}`} disabled={pending}
          onCommit={(v) => send(v)} />
        {pending && <span className="muted">sent…</span>}
        {errorLine}
      </span>
    );
  }
  if (control.kind === "readonly" || compact || !allowed) {
    return <strong className="field-value">{formatValue(value, field.unit)}</strong>;
  }
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const checked = checkValue(control, text);
    if (!checked.ok) {
      setProblem(checked.problem);
      return;
    }
    setProblem(null);
    void send(checked.value).then(() => setText(""));
  };
  const hint = control.kind === "number" && (control.min !== undefined || control.max !== undefined)
    ? `${control.min ?? "…"}–${control.max ?? "…"}` : control.kind === "number" ? "a number" : "text";
  return (
    <form className="field-control" onSubmit={submit} noValidate>
      <strong>{formatValue(value, field.unit)}</strong>
      <input aria-label={`new value for ${name}`} value={text} placeholder={hint} size={8}
        inputMode={control.kind === "number" ? "decimal" : undefined} aria-invalid={problem ? true : undefined}
        onChange={(e) => {
          setText(e.target.value);
          setProblem(null);
        }} />
      <button type="submit" disabled={pending || text.trim() === ""}>{pending ? "sent…" : "Set"}</button>
      {errorLine}
    </form>
  );
}
