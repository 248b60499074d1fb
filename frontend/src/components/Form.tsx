// Form inputs that show a problem where it belongs, once: the input the problem is at (see api/errors.ts) is marked
// invalid and carries the message under it, announced; a problem at no input of the page goes to ProblemBox.

import { type InputHTMLAttributes, type ReactNode } from "react";
import type { UseFormRegisterReturn } from "react-hook-form";

import { type Problem, problemOf } from "../api/errors";
import { ErrorBox } from "./common";

export { type Problem, problemOf };

const problemId = (name: string) => `problem-${name.replace(/[^\w-]/g, "-")}`;

/** Props that mark an input invalid when the problem is at `name` (class, aria-invalid, aria-describedby). */
export function invalidProps(problem: Problem | null | undefined, name: string) {
  const bad = Boolean(problem && problem.at === name);
  return bad ? { className: "invalid", "aria-invalid": true as const, "aria-describedby": problemId(name) } : {};
}

/** The message under the input the problem is at (nothing elsewhere). */
export function FieldProblem({ problem, name }: { problem: Problem | null | undefined; name: string }) {
  if (!problem || problem.at !== name) return null;
  return <span className="error-inline" id={problemId(name)} role="alert" data-field={name}>{problem.message}</span>;
}

/** The page's error box: only for a problem no input of the page shows. */
export function ProblemBox({ problem }: { problem: Problem | null | undefined }) {
  return <ErrorBox error={problem && !problem.at ? problem.message : null} />;
}

type InputProps = Omit<InputHTMLAttributes<HTMLInputElement>, "onChange" | "value" | "name"> & {
  label: string;
  /** The field's API name ("geoLocation.latitude"), matched against the problem's input. */
  name: string;
  problem?: Problem | null;
  hint?: ReactNode;
} & (
  /** Held by react-hook-form (components/apiForm.ts): `field={form.register("latitude")}`. */
  | { field: UseFormRegisterReturn; value?: undefined; onChange?: undefined }
  | { field?: undefined; value: string; onChange: (value: string) => void }
);

export function FormInput({ label, name, value, onChange, field, problem, hint, ...rest }: InputProps) {
  const bound = field ?? { name, value, onChange: (e: { target: { value: string } }) => onChange?.(e.target.value) };
  return (
    <label>
      <span>
        {label}
        {hint && <small className="muted"> {hint}</small>}
      </span>
      <input aria-label={label} {...bound} {...invalidProps(problem, name)} {...rest} />
      <FieldProblem problem={problem} name={name} />
    </label>
  );
}

export function FormCheck({ label, name, checked, onChange, field }: {
  label: string; name: string;
} & ({ field: UseFormRegisterReturn; checked?: undefined; onChange?: undefined }
  | { field?: undefined; checked: boolean; onChange: (value: boolean) => void })) {
  const bound = field ?? { name, checked, onChange: (e: { target: { checked: boolean } }) => onChange?.(e.target.checked) };
  return (
    <label className="check">
      <input type="checkbox" aria-label={label} {...bound} />
      {label}
    </label>
  );
}

/** The submit button of a form on the one submit path: disabled while it is being sent, saying so. */
export function SubmitButton({ busy, children, busyText = "Saving…" }: { busy: boolean; children: ReactNode;
  busyText?: string }) {
  return <button type="submit" className="primary" disabled={busy} aria-busy={busy || undefined}>{busy ? busyText : children}</button>;
}
