// Errors in plain words, shown once, where they belong. The server answers `{message, field}` with the field as a
// key path ("geoLocation", "[0].payload.str", "authorization") and often repeats that path at the head of the
// message; people see neither: the message without the path, and the input it concerns marked (or, when no input
// on the page holds it, the message in the page's error box). Pure: the pages and the tests use the same rules.

import { FormError } from "./admin";
import { ApiError } from "./client";

export { FormError };

/** A failed save: the message in plain words, the field the server named, and the one input that shows it. */
export interface Problem {
  message: string;
  field: string | null;
  /** The input (of the names the page gave) that carries the message; null: the page's error box says it. */
  at: string | null;
}

const PATH_PREFIX = /^\s*((?:\[\d+\]|[A-Za-z_$][\w$-]*)(?:\.(?:\[\d+\]|[\w$-]+)|\[\d+\])*)\s*:\s+/;

const PLAIN: ReadonlyArray<[RegExp, string]> = [
  [/^Input should be a valid (string|integer|number|boolean)\b.*$/i, "must be a valid $1"],
  [/^Field required$/i, "is required"],
  [/^Input should be greater than or equal to (\S+)$/i, "must be at least $1"],
  [/^Input should be less than or equal to (\S+)$/i, "must be at most $1"],
  [/^Extra inputs are not permitted$/i, "is not a setting this form knows"],
];

/** The last readable word of a key path ("[0].payload.str" → "payload"; "geoLocation.latitude" → "latitude"). */
export function pathWord(path: string): string {
  const words = path.split(/[.[\]]/).filter((w) => w && !/^\d+$/.test(w) && !["str", "int", "float", "bool"].includes(w));
  return words[words.length - 1] ?? "";
}

/** "currentPassword" → "current password". */
export function humanize(word: string): string {
  return word.replace(/([a-z0-9])([A-Z])/g, "$1 $2").replace(/_/g, " ").toLowerCase();
}

/** The message without the key path the server put before it, pydantic's wording made plain; a camelCase key at
 * its head in words ("currentPassword does not match" → "current password does not match"). */
export function plainMessage(message: string): string {
  let text = message.trim().replace(/^([a-z]+[A-Z][A-Za-z]*)(?= )/, (word) => humanize(word));
  let word = "";
  for (let i = 0; i < 3; i += 1) {
    const match = PATH_PREFIX.exec(text);
    // A path is an identifier path followed by ": " — a sentence ("node 1: down") has a space before the colon.
    if (!match || !(/[.[\]]/.test(match[1]) || /[a-z][A-Z]/.test(match[1]))) break;
    word = pathWord(match[1]) || word;
    text = text.slice(match[0].length);
  }
  for (const [pattern, replacement] of PLAIN) {
    if (pattern.test(text)) {
      text = text.replace(pattern, replacement);
      return word ? `${word === "payload" ? "the value" : word} ${text}` : text;
    }
  }
  return text;
}

/** Which of the page's inputs (`names`, key paths) shows a problem with `field`: the input itself; for a parent
 * ("geoLocation") the child the message names ("longitude is required…"), else its first child; null when the page
 * has no input for it. */
export function inputFor(field: string | null | undefined, message: string, names: readonly string[]): string | null {
  if (!field) return null;
  if (names.includes(field)) return field;
  const children = names.filter((name) => name.startsWith(`${field}.`));
  if (children.length === 0) return null;
  const lower = message.toLowerCase();
  return children.find((name) => lower.includes(pathWord(name).toLowerCase())) ?? children[0];
}

/** A failed request or check as a Problem; `names` are the inputs the page has (key paths the server uses). */
export function problemOf(err: unknown, names: readonly string[] = []): Problem {
  if (err instanceof FormError || (err instanceof ApiError && err.field)) {
    const field = (err as FormError | ApiError).field ?? null;
    const message = plainMessage(err.message);
    return { message, field, at: inputFor(field, message, names) };
  }
  return { message: errorText(err), field: null, at: null };
}

/** An error as one line of plain words (no key paths, no field names in brackets). */
export function errorText(error: unknown): string {
  if (error instanceof ApiError || error instanceof FormError) return plainMessage(error.message);
  if (error instanceof Error) return error.name === "AbortError" ? "cancelled" : error.message;
  return String(error);
}
