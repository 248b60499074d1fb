// The list query of MyController v2: limit, offset, sortBy=[{f,o}], filter=[{k,o,v}] → {count, limit, offset, data}.
// Pure, so the pages and the tests build exactly the same query strings.

export type Operator =
  | "eq" | "ne" | "in" | "nin" | "range_in" | "range_not_in" | "gt" | "lt" | "gte" | "lte" | "exists" | "regex";

export const OPERATORS: readonly Operator[] = [
  "eq", "ne", "in", "nin", "range_in", "range_not_in", "gt", "lt", "gte", "lte", "exists", "regex",
];

export interface Filter {
  k: string;
  o: Operator;
  v: unknown;
}

export interface Sort {
  f: string;
  o: "asc" | "desc";
}

export interface ListQuery {
  limit?: number;
  offset?: number;
  sortBy?: Sort[];
  filter?: Filter[];
}

export interface Page<T> {
  count: number;
  limit: number;
  offset: number;
  data: T[];
}

/** The query string (without "?") for a list request; empty parts are left out. */
export function buildListQuery(query: ListQuery): string {
  const params = new URLSearchParams();
  if (query.limit !== undefined) params.set("limit", String(Math.trunc(query.limit)));
  if (query.offset !== undefined && query.offset > 0) params.set("offset", String(Math.trunc(query.offset)));
  if (query.sortBy && query.sortBy.length > 0) params.set("sortBy", JSON.stringify(query.sortBy));
  const filters = (query.filter ?? []).filter((f) => f.k.trim() !== "");
  if (filters.length > 0) params.set("filter", JSON.stringify(filters));
  return params.toString();
}

/**
 * A filter from what a person types in a search box: "text" searches the name (the server's regex is
 * case-insensitive; the text is escaped),
 * "key=value" is an equality on a key path (labels.room=kitchen), "key>value" and friends compare numbers.
 */
export function parseSearch(text: string, nameKey = "name"): Filter[] {
  const filters: Filter[] = [];
  for (const part of text.split(/\s*;\s*/).map((p) => p.trim()).filter(Boolean)) {
    const match = /^([A-Za-z0-9_.]+)\s*(!=|>=|<=|=|>|<|~)\s*(.*)$/.exec(part);
    if (!match) {
      filters.push({ k: nameKey, o: "regex", v: escapeRegex(part) });
      continue;
    }
    const [, key, op, raw] = match;
    const value = coerce(raw);
    const operator: Operator =
      op === "=" ? "eq" : op === "!=" ? "ne" : op === ">" ? "gt" : op === "<" ? "lt" : op === ">=" ? "gte"
        : op === "<=" ? "lte" : "regex";
    filters.push({ k: key, o: operator, v: operator === "regex" ? raw : value });
  }
  return filters;
}

function coerce(raw: string): unknown {
  const text = raw.trim();
  if (text === "true") return true;
  if (text === "false") return false;
  if (text !== "" && !Number.isNaN(Number(text)) && /^-?\d/.test(text)) return Number(text);
  return text;
}

export function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The next sort when a column header is clicked: asc, then desc, then back to asc on another column. */
export function nextSort(current: Sort | undefined, field: string): Sort {
  if (current && current.f === field) return { f: field, o: current.o === "asc" ? "desc" : "asc" };
  return { f: field, o: "asc" };
}

/** Page numbers for a pager: 1-based current page and the page count. */
export function pageInfo(count: number, limit: number, offset: number): { page: number; pages: number } {
  const size = Math.max(1, limit);
  return { page: Math.floor(offset / size) + 1, pages: Math.max(1, Math.ceil(count / size)) };
}

/** The key paths a list's rows have (generated from the API's schema), for checking what a search names. */
export interface KnownKeys {
  keys: readonly string[];
  open: readonly string[];
}

const COMPARE = /^([A-Za-z0-9_.]*)\s*(!=|>=|<=|=|>|<|~)\s*(.*)$/;

/**
 * What is wrong with a search text, in plain words (empty when nothing): a part that is not `key op value`
 * (`foo>>bar`), a key the rows do not have (`colour=red`) or one that holds an object (`state=up`: did you mean
 * state.status?), a comparison of a number with text. Keys under labels, others and the like are free.
 */
export function searchProblems(text: string, known?: KnownKeys): string[] {
  const problems: string[] = [];
  for (const part of text.split(/\s*;\s*/).map((p) => p.trim()).filter(Boolean)) {
    const match = COMPARE.exec(part);
    if (!match) {
      if (/[<>=!~]/.test(part)) problems.push(`“${part}” is not a filter: write key=value, key>number, key~text`);
      continue; // plain text: a name search
    }
    const [, key, op, raw] = match;
    if (!key) {
      problems.push(`“${part}” needs a key before ${op} (e.g. name${op}${raw || "…"})`);
      continue;
    }
    if (/^[<>=!~]/.test(raw)) {
      problems.push(`“${part}” has two operators: write one of = != > >= < <= ~ between key and value`);
      continue;
    }
    if (raw.trim() === "") {
      problems.push(`“${part}” needs a value after ${op}`);
      continue;
    }
    if ([">", "<", ">=", "<="].includes(op) && Number.isNaN(Number(raw.trim()))) {
      problems.push(`“${part}”: ${op} compares numbers, and ${raw.trim()} is not one`);
      continue;
    }
    if (known) {
      const problem = keyProblem(key, known);
      if (problem) problems.push(problem);
    }
  }
  return problems;
}

function keyProblem(key: string, known: KnownKeys): string | null {
  const lower = key.toLowerCase();
  const keys = known.keys.map((k) => k.toLowerCase());
  if (known.open.some((prefix) => lower.startsWith(`${prefix.toLowerCase()}.`))) return null;
  const likely = (k: string) => (/\.(status|value)$/.test(k) ? 0 : 1);
  const children = known.keys.filter((k) => k.toLowerCase().startsWith(`${lower}.`))
    .sort((a, b) => likely(a) - likely(b) || a.localeCompare(b));
  if (keys.includes(lower)) {
    if (children.length === 0 || known.open.some((prefix) => prefix.toLowerCase() === lower)) return null;
    return `${key} holds ${children.join(", ")}: filter on one of them (e.g. ${children[0]})`;
  }
  const near = known.keys.filter((k) => !k.includes(".") && k.toLowerCase().includes(lower.split(".")[0]));
  return `there is no key “${key}” here${near.length ? `; did you mean ${near.slice(0, 3).join(", ")}?` : ""}` +
    ` (keys: ${known.keys.filter((k) => !k.includes(".")).join(", ")})`;
}
