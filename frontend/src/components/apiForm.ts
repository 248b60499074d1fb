// The console's one way to submit a form: react-hook-form holds the inputs, a zod schema checks them before
// anything is sent, and one submit path sends them, with one busy state (no double submits: a second submit while
// the first is on its way does nothing), one "saved" flag and one problem shown once at the input it concerns
// (the schema's first complaint, else the server's answer mapped by api/errors.ts), never a copy per page.

import { zodResolver } from "@hookform/resolvers/zod";
import { type FormEvent, useEffect, useRef, useState } from "react";
import {
  type DefaultValues, type FieldErrors, type FieldValues, get, type Path, useForm, type UseFormReturn,
} from "react-hook-form";
import type { $ZodType } from "zod/v4/core";

import { type Problem, problemOf } from "../api/errors";

export interface ApiFormOptions<T extends FieldValues, R> {
  /** Checks the inputs before sending; its messages are shown at the inputs they name. */
  schema: $ZodType<T, T>;
  defaultValues: DefaultValues<T>;
  /** Form keys → the key paths the server names in its errors ("latitude" → "geoLocation.latitude"); keys left out
   * are named alike on both sides. Their order is the order problems are looked for. */
  names?: Partial<Record<Path<T>, string>> | readonly Path<T>[];
  /** Sends the checked values; what it throws (ApiError, FormError) becomes the problem shown. */
  submit: (values: T, form: UseFormReturn<T>) => Promise<R>;
  /** After a successful submit (reset inputs, navigate…). */
  onDone?: (result: R, values: T, form: UseFormReturn<T>) => void;
  /** "Saved." from the start, until an input changes (a new record saved, then opened at its own address). */
  initiallySaved?: boolean;
}

export interface ApiForm<T extends FieldValues> {
  form: UseFormReturn<T>;
  onSubmit: (event?: FormEvent) => Promise<void>;
  busy: boolean;
  saved: boolean;
  /** The one problem to show: at an input (FormInput's `problem`), or for the page's ProblemBox. */
  problem: Problem | null;
  /** Forget the problem and the "saved" note (after an edit, or undo). */
  clear: () => void;
}

function serverNames<T extends FieldValues>(names: ApiFormOptions<T, unknown>["names"]): Array<[string, string]> {
  if (!names) return [];
  if (Array.isArray(names)) return names.map((name) => [name, name]);
  return Object.entries(names as Record<string, string>);
}

/** The first input the schema refused, as a Problem at the server's name for it. */
export function schemaProblem(errors: FieldErrors, names: Array<[string, string]>): Problem | null {
  for (const [key, server] of names) {
    const error = get(errors, key) as { message?: string } | undefined;
    if (error?.message) return { message: error.message, field: server, at: server };
  }
  for (const [key, error] of Object.entries(errors)) {
    const message = (error as { message?: string } | undefined)?.message;
    if (message) return { message, field: key, at: null };
  }
  return null;
}

export function useApiForm<T extends FieldValues, R>(options: ApiFormOptions<T, R>): ApiForm<T> {
  const form = useForm<T>({ resolver: zodResolver(options.schema), defaultValues: options.defaultValues,
    mode: "onSubmit", reValidateMode: "onChange" });
  const [serverProblem, setServerProblem] = useState<Problem | null>(null);
  const [saved, setSaved] = useState(Boolean(options.initiallySaved));
  const inFlight = useRef(false);
  const names = serverNames(options.names);
  // formState is a proxy: reading errors and isSubmitting here subscribes the component to them.
  const { errors, isSubmitting } = form.formState;

  // "Saved." is about what was sent, not what is typed since.
  useEffect(() => form.subscribe({ formState: { values: true }, callback: () => setSaved(false) }), [form]);

  const onSubmit = async (event?: FormEvent) => {
    event?.preventDefault();
    if (inFlight.current) return; // one submit at a time
    inFlight.current = true;
    setServerProblem(null);
    setSaved(false);
    try {
      await form.handleSubmit(async (values) => {
        try {
          const result = await options.submit(values, form);
          options.onDone?.(result, values, form);
          setSaved(true);
        } catch (err) {
          setServerProblem(problemOf(err, names.map(([, server]) => server)));
        }
      })();
    } finally {
      inFlight.current = false;
    }
  };

  return {
    form,
    onSubmit,
    busy: isSubmitting,
    saved,
    problem: schemaProblem(errors, names) ?? serverProblem,
    clear: () => {
      setServerProblem(null);
      setSaved(false);
      form.clearErrors();
    },
  };
}

export interface Submit<A extends unknown[]> {
  /** Sends, unless a send is already on its way (then does nothing: no double submits). */
  run: (...args: A) => Promise<void>;
  busy: boolean;
  saved: boolean;
  setSaved: (saved: boolean) => void;
  /** The problem to show (the server's, mapped by api/errors.ts; or one the page found before sending). */
  problem: Problem | null;
  setProblem: (problem: Problem | null) => void;
}

/** The same submit path for editors whose inputs are not plain fields (a dashboard's grid, an automation record
 * with its forms and JSON views kept in step): one send at a time, busy meanwhile, "saved" after, and the problem
 * said once. `onError` may take an error itself (return true), e.g. to mark several widgets. */
export function useSubmit<A extends unknown[], R>(send: (...args: A) => Promise<R>, options: {
  names?: readonly string[]; onDone?: (result: R) => void; onError?: (err: unknown) => boolean;
  /** "Saved." from the start (a new record saved, then opened at its own address). */
  initiallySaved?: boolean;
} = {}): Submit<A> {
  const inFlight = useRef(false);
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState(Boolean(options.initiallySaved));
  const [problem, setProblem] = useState<Problem | null>(null);
  const run = async (...args: A) => {
    if (inFlight.current) return;
    inFlight.current = true;
    setBusy(true);
    setProblem(null);
    setSaved(false);
    try {
      const result = await send(...args);
      options.onDone?.(result);
      setSaved(true);
    } catch (err) {
      if (!options.onError?.(err)) setProblem(problemOf(err, options.names ?? []));
    } finally {
      inFlight.current = false;
      setBusy(false);
    }
  };
  return { run, busy, saved, setSaved, problem, setProblem };
}
