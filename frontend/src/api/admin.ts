// Pure helpers of the settings, users and service-token pages: form text ⇄ API bodies, the field a server error
// names, expiry dates. Kept apart from the pages so the tests check exactly what the pages send.

import type { ServiceToken, SystemSettings as ApiSystemSettings, User } from "./types";

/** System settings as `GET /api/settings/system` answers them (generated from /api/openapi.json). */
export type SystemSettings = ApiSystemSettings;

/** The settings form: every input as its text, so a half-typed number stays as typed. */
export interface SettingsForm {
  latitude: string;
  longitude: string;
  locationName: string;
  timezone: string;
  elevation: string;
  loginMessage: string;
  language: string;
  stateInterval: string;
  inactiveDuration: string;
  discoverEnabled: boolean;
  discoverInterval: string;
}

/** A problem found before sending, named like the server names its fields. */
export class FormError extends Error {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
  }
}

const text = (value: unknown): string => (value === null || value === undefined ? "" : String(value));

export function settingsToForm(settings: SystemSettings): SettingsForm {
  const geo: Partial<NonNullable<SystemSettings["geoLocation"]>> = settings.geoLocation ?? {};
  return {
    latitude: text(geo.latitude),
    longitude: text(geo.longitude),
    locationName: text(geo.locationName),
    timezone: text(geo.timezone) || "UTC",
    elevation: text(geo.elevation ?? 0),
    loginMessage: text(settings.login?.message),
    language: text(settings.language) || "en-us",
    stateInterval: text(settings.nodeStateJob?.executionInterval),
    inactiveDuration: text(settings.nodeStateJob?.inactiveDuration),
    discoverEnabled: settings.nodeDiscoverJob?.enabled ?? true,
    discoverInterval: text(settings.nodeDiscoverJob?.executionInterval),
  };
}

function number(value: string, field: string, optional: boolean): number | null {
  const trimmed = value.trim().replace(",", ".");
  if (trimmed === "") {
    if (optional) return null;
    throw new FormError(`${field}: a number is required`, field);
  }
  const parsed = Number(trimmed);
  if (!Number.isFinite(parsed)) throw new FormError(`${field}: ${JSON.stringify(value)} is not a number`, field);
  return parsed;
}

/** What the settings page sends: every part (the API's type, with none left out). */
export type SettingsBody = Required<Pick<SystemSettings, "geoLocation" | "login" | "language" | "nodeStateJob" |
  "nodeDiscoverJob">>;

/** The POST body for the form; throws FormError for text that is not a number. Ranges are the server's to check
 * (it names the field), so the rules live in one place. `autoUpdate` and unknown keys are kept from `base`. */
export function formToSettings(form: SettingsForm, base?: SystemSettings): SettingsBody {
  return {
    geoLocation: {
      autoUpdate: false,
      ...(base?.geoLocation ?? {}),
      latitude: number(form.latitude, "geoLocation.latitude", true),
      longitude: number(form.longitude, "geoLocation.longitude", true),
      locationName: form.locationName.trim(),
      timezone: form.timezone.trim() || "UTC",
      elevation: number(form.elevation || "0", "geoLocation.elevation", false) ?? 0,
    },
    login: { ...(base?.login ?? {}), message: form.loginMessage },
    language: form.language.trim(),
    nodeStateJob: { executionInterval: form.stateInterval.trim(), inactiveDuration: form.inactiveDuration.trim() },
    nodeDiscoverJob: { enabled: form.discoverEnabled, executionInterval: form.discoverInterval.trim() },
  };
}

/** Whether the input `name` (e.g. "geoLocation.latitude") is what an error's `field` names: the input itself, or
 * the object it sits in (a rule over both coordinates names "geoLocation"). */
export function namesField(errorField: string | null | undefined, name: string): boolean {
  if (!errorField) return false;
  return errorField === name || name.startsWith(`${errorField}.`);
}

/** A `datetime-local` input's value (local time, no zone) as an RFC 3339 UTC timestamp; null when empty or bad. */
export function localInputToIso(value: string): string | null {
  if (!value.trim()) return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/** A date as a `datetime-local` input shows it (local time, minutes). */
export function dateToLocalInput(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** A service token as the API answers it (generated from /api/openapi.json); `token` only in the answer to
 * create (`<tokenId>_<secret>`, shown once), `role` at most its maker's (absent on tokens made before roles). */
export type ServiceTokenRecord = ServiceToken;

/** The body of `POST /api/servicetoken`; throws FormError when the expiry is missing or already past. A role left
 * empty is the server's choice (the lesser of the maker's and the owner's). */
export function serviceTokenBody(input: { name: string; description: string; userId: string; neverExpire: boolean;
  expiresOn: string; role?: string }, now: Date = new Date()): Record<string, unknown> {
  const name = input.name.trim();
  if (!name) throw new FormError("name: a name is required", "name");
  const body: Record<string, unknown> = { name, description: input.description.trim(), neverExpire: input.neverExpire };
  if (input.userId.trim()) body.userId = input.userId.trim();
  if (input.role) body.role = input.role;
  if (!input.neverExpire) {
    const iso = localInputToIso(input.expiresOn);
    if (!iso) throw new FormError("expiresOn: pick an expiry date, or choose never expire", "expiresOn");
    if (Date.parse(iso) <= now.getTime()) throw new FormError("expiresOn: the expiry date is in the past", "expiresOn");
    body.expiresOn = iso;
  }
  return body;
}

/** How a token's validity reads in the list: "never", "expired", or the date. */
export function tokenExpiry(token: Partial<ServiceTokenRecord>, now: Date = new Date()): string {
  if (token.neverExpire) return "never";
  if (!token.expiresOn) return "—";
  const at = Date.parse(token.expiresOn);
  if (Number.isNaN(at)) return token.expiresOn;
  return at <= now.getTime() ? "expired" : new Date(at).toLocaleString();
}

/** A user as the API answers it (generated from /api/openapi.json: `UserView`, never a password); `role` is viewer,
 * user or admin. */
export type UserRecord = User;

export const MIN_PASSWORD_CHARS = 10;
export const PASSWORD_HINT = `at least ${MIN_PASSWORD_CHARS} characters, not a common password, not the username`;

/** What is wrong with a new password and its confirmation before sending, or null. The server checks again, with
 * its list of common passwords (NIST SP 800-63B); the length and the username are caught here already. */
export function newPasswordProblem(password: string, confirm: string, username = ""): FormError | null {
  if (password.length < MIN_PASSWORD_CHARS) {
    return new FormError(`password: at least ${MIN_PASSWORD_CHARS} characters`, "password");
  }
  const name = username.trim().toLowerCase();
  if (name.length >= 3 && password.toLowerCase().includes(name)) {
    return new FormError("password: must not contain the username", "password");
  }
  if (password !== confirm) return new FormError("the two new passwords differ", "confirmPassword");
  return null;
}

/** The body of `POST /api/user`: the password only when a new one is set (left out, the user keeps theirs). */
export function userBody(user: Pick<User, "id" | "username"> & Partial<User>, password: string, labels: Record<string, string>): Record<string, unknown> {
  const username = user.username.trim();
  if (!username) throw new FormError("username: a username is required", "username");
  const body: Record<string, unknown> = {
    id: user.id || username,
    username,
    email: (user.email ?? "").trim(),
    fullName: (user.fullName ?? "").trim(),
    labels,
  };
  if (password) body.password = password;
  if (user.role) body.role = user.role;
  return body;
}
