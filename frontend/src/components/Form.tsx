// Form inputs that show the server's complaint where it belongs: an input whose name the error's field names is
// marked invalid and carries the message under it (the error box above the buttons says it too).

import { type InputHTMLAttributes, type ReactNode } from "react";

import { ApiError } from "../api/client";
import { FormError, namesField } from "../api/admin";
import { errorText } from "./common";

/** A failed save: the text for the error box and the field it names (a server 400 or a check before sending). */
export interface Problem {
  message: string;
  field: string | null;
}

export function problemOf(err: unknown): Problem {
  if (err instanceof FormError) return { message: err.message, field: err.field };
  if (err instanceof ApiError) return { message: errorText(err), field: err.field ?? null };
  return { message: errorText(err), field: null };
}

type InputProps = Omit<InputHTMLAttributes<HTMLInputElement>, "onChange" | "value" | "name"> & {
  label: string;
  /** The field's API name ("geoLocation.latitude"), matched against the problem's field. */
  name: string;
  value: string;
  onChange: (value: string) => void;
  problem?: Problem | null;
  hint?: ReactNode;
};

export function FormInput({ label, name, value, onChange, problem, hint, ...rest }: InputProps) {
  const bad = namesField(problem?.field, name);
  return (
    <label>
      <span>
        {label}
        {hint && <small className="muted"> {hint}</small>}
      </span>
      <input aria-label={label} name={name} value={value} onChange={(e) => onChange(e.target.value)}
        className={bad ? "invalid" : ""} aria-invalid={bad || undefined} {...rest} />
      {bad && problem && <span className="error-inline" data-field={name}>{problem.message}</span>}
    </label>
  );
}

export function FormCheck({ label, name, checked, onChange }: {
  label: string; name: string; checked: boolean; onChange: (value: boolean) => void;
}) {
  return (
    <label className="check">
      <input type="checkbox" aria-label={label} name={name} checked={checked} onChange={(e) => onChange(e.target.checked)} />
      {label}
    </label>
  );
}
