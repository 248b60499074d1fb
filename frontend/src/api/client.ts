// The REST client: every call goes through `api()`, which adds the bearer token and turns errors into ApiError.
// The token lives in sessionStorage (per tab, gone with the tab); a 401 clears it and sends the user to /login.

import { buildListQuery, type ListQuery, type Page } from "./query";
import type { LoginReply } from "./types";

/** Where the API is: the same origin (the local stack), or VITE_API_BASE at build time (e.g. an API Gateway URL). */
export const API_BASE: string = (import.meta.env?.VITE_API_BASE as string | undefined)?.replace(/\/$/, "") ?? "";

const TOKEN_KEY = "mc.token";
const USER_KEY = "mc.user";
const ROLE_KEY = "mc.role";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

type AuthListener = (loggedIn: boolean) => void;
const listeners = new Set<AuthListener>();

export function onAuthChange(listener: AuthListener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function getToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function getUsername(): string | null {
  try {
    return sessionStorage.getItem(USER_KEY);
  } catch {
    return null;
  }
}

/** The signed-in principal's role (viewer, user or admin; see roles.ts), as the login or the profile said. */
export function getRole(): string | null {
  try {
    return sessionStorage.getItem(ROLE_KEY);
  } catch {
    return null;
  }
}

export function setRole(role: string): void {
  sessionStorage.setItem(ROLE_KEY, role);
  listeners.forEach((listener) => listener(Boolean(getToken())));
}

export function setSession(token: string | null, username?: string, role?: string): void {
  if (token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    if (username) sessionStorage.setItem(USER_KEY, username);
    if (role) sessionStorage.setItem(ROLE_KEY, role);
    else sessionStorage.removeItem(ROLE_KEY); // read again from the profile
  } else {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(USER_KEY);
    sessionStorage.removeItem(ROLE_KEY);
  }
  listeners.forEach((listener) => listener(Boolean(token)));
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  signal?: AbortSignal;
}

export async function api<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  const token = getToken();
  if (token) headers.authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (options.body !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(options.body);
  }
  const response = await fetch(API_BASE + path, {
    method: options.method ?? (body !== undefined ? "POST" : "GET"),
    headers,
    body,
    signal: options.signal,
    credentials: "same-origin",
  });
  const text = await response.text();
  let data: unknown = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!response.ok) {
    const detail = (data && typeof data === "object" ? data : {}) as { message?: string; field?: string };
    // A 401 ends the session it was sent with, not one the tab opened meanwhile (a new login racing an old call).
    if (response.status === 401 && !path.startsWith("/api/user/login") && getToken() === token) setSession(null);
    throw new ApiError(response.status, detail.message ?? `${response.status} ${response.statusText}`, detail.field);
  }
  return data as T;
}

export function list<T>(resource: string, query: ListQuery, signal?: AbortSignal): Promise<Page<T>> {
  const qs = buildListQuery(query);
  return api<Page<T>>(`/api/${resource}${qs ? `?${qs}` : ""}`, { signal });
}

export function getOne<T>(resource: string, id: string, signal?: AbortSignal): Promise<T> {
  return api<T>(`/api/${resource}/${encodeURIComponent(id)}`, { signal });
}

export function save<T>(resource: string, record: unknown): Promise<T> {
  return api<T>(`/api/${resource}`, { method: "POST", body: record });
}

export function remove(resource: string, ids: string[]): Promise<{ deleted: number }> {
  return api(`/api/${resource}`, { method: "DELETE", body: ids });
}

export function setEnabled(resource: string, ids: string[], enabled: boolean): Promise<unknown> {
  return api(`/api/${resource}/${enabled ? "enable" : "disable"}`, { method: "POST", body: ids });
}

/** Set a field (by id or quick id) to a value, or "toggle". The stored value follows when the device echoes. */
export function setField(fieldId: string, payload: string | number | boolean): Promise<{ sent: number }> {
  const quickId = fieldId.startsWith("field:") ? fieldId : `field:${fieldId}`;
  return api("/api/action", { method: "POST", body: [{ resource: quickId, payload }] });
}

export function nodeAction(action: string, ids: string[]): Promise<{ sent: number }> {
  return api("/api/action/node", { method: "POST", body: { action, ids } });
}

export function gatewayAction(action: string, ids: string[]): Promise<{ sent: number }> {
  return api("/api/action/gateway", { method: "POST", body: { action, ids } });
}

export interface MetricPoint {
  time: number;
  value: number | null;
}

/** A field's metric rows as [time ms, value]; raw points unless a window is given (then `fn` per window). */
export async function metrics(fieldId: string, start: string, window?: string, fn = "mean"): Promise<MetricPoint[]> {
  const quickId = fieldId.startsWith("field:") ? fieldId : `field:${fieldId}`;
  const params = new URLSearchParams({ quickId, start });
  if (window) {
    params.set("window", window);
    params.set("functions", fn);
  }
  const result = await api<Record<string, Array<Record<string, unknown>>>>(`/api/metric?${params}`);
  const rows = result[quickId] ?? Object.values(result)[0] ?? [];
  return rows.map((row) => {
    const raw = window ? row[fn] : row.value;
    const value = typeof raw === "number" ? raw : typeof raw === "boolean" ? Number(raw) : null;
    return { time: Date.parse(String(row.time)), value };
  });
}

/** What `GET /api/status` answers (open, no token): the login message, and whether metrics are kept. */
export interface ServerStatus {
  status?: string;
  version?: string;
  login?: { message?: string };
  /** True when the server keeps no metric history (METRICS=none): charts have nothing to draw. */
  metricsDBDisabled?: boolean;
}

let statusOnce: Promise<ServerStatus> | null = null;

/** The server's status, asked once per page load (a failed ask is asked again next time). */
export function serverStatus(): Promise<ServerStatus> {
  statusOnce ??= api<ServerStatus>("/api/status").catch((err: unknown) => {
    statusOnce = null;
    throw err;
  });
  return statusOnce;
}

/** Forget the cached status (tests; a server that changed its mind). */
export function resetServerStatus(): void {
  statusOnce = null;
}

/** Whether the server keeps metrics; true when the status cannot be read (the charts then say what failed). */
export async function metricsEnabled(): Promise<boolean> {
  try {
    return !(await serverStatus()).metricsDBDisabled;
  } catch {
    return true;
  }
}

/** POST /api/user/login's answer (generated from /api/openapi.json). */
export type LoginAnswer = LoginReply;

export async function login(username: string, password: string): Promise<LoginAnswer> {
  const answer = await api<LoginAnswer>("/api/user/login", { method: "POST", body: { username, password } });
  setSession(answer.token, answer.username ?? username, answer.role);
  return answer;
}

export async function logout(): Promise<void> {
  try {
    await api("/api/user/logout", { method: "POST", body: {} });
  } catch {
    // Logging out locally is what matters; the server may already consider the token gone.
  } finally {
    setSession(null);
  }
}
