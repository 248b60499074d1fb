// A list page of any resource: search (name text or key=value filters), sortable columns, paging, live rows.
// The query lives in the URL, so back/forward and reload keep it. A search that cannot be read, or names a key the
// rows do not have, says so instead of quietly finding nothing.

import { useQueryClient } from "@tanstack/react-query";
import { type ReactNode, useMemo, useRef } from "react";
import { Link, useSearchParams } from "react-router-dom";

import { errorText } from "../api/errors";
import { FILTER_KEYS } from "../api/filterKeys";
import { keys, useList } from "../api/queries";
import { nextSort, type Page, pageInfo, parseSearch, searchProblems, type Sort } from "../api/query";
import { useLive } from "../live/hooks";
import { ErrorBox } from "./common";

export interface Column<T> {
  key: string;
  label: string;
  sortable?: boolean;
  render: (row: T) => ReactNode;
  className?: string;
}

export interface ResourceTableProps<T extends { id: string }> {
  resource: string;
  entityType?: string;
  columns: Column<T>[];
  link?: (row: T) => string;
  defaultSort?: Sort;
  searchHint?: string;
  baseFilter?: Array<{ k: string; o: "eq"; v: unknown }>;
  actions?: (row: T) => ReactNode;
  /** Keeps the query out of the URL (tables embedded in another page). */
  embedded?: boolean;
  /** The key plain search text matches (default "name"; users have "username"). */
  nameKey?: string;
  /** What the table is of, for screen readers ("Nodes"). */
  caption?: string;
  /** Rows read (e.g. to look up the names they refer to). */
  onRows?: (rows: T[]) => void;
}

const PAGE_SIZES = [10, 25, 50, 100];

export function ResourceTable<T extends { id: string }>(props: ResourceTableProps<T>) {
  const { resource, entityType, columns, link, defaultSort, searchHint, baseFilter, actions, embedded, nameKey,
    caption } = props;
  const [params, setParams] = useSearchParams();
  const client = useQueryClient();
  const prefix = embedded ? `${resource}.` : "";
  const q = params.get(`${prefix}q`) ?? "";
  const limit = Number(params.get(`${prefix}limit`) ?? (embedded ? 10 : 25)) || 25;
  const offset = Number(params.get(`${prefix}offset`) ?? 0) || 0;
  const sortParam = params.get(`${prefix}sort`);
  const sort: Sort | undefined = sortParam
    ? { f: sortParam.replace(/^-/, ""), o: sortParam.startsWith("-") ? "desc" : "asc" }
    : defaultSort;
  const problems = useMemo(() => searchProblems(q, FILTER_KEYS[resource]), [q, resource]);
  const query = useMemo(() => ({
    limit, offset, sortBy: sort ? [sort] : [], filter: [...(baseFilter ?? []), ...parseSearch(q, nameKey)],
  }), [limit, offset, sort?.f, sort?.o, baseFilter, q, nameKey]); // eslint-disable-line react-hooks/exhaustive-deps

  const update = (changes: Record<string, string | null>) => {
    const next = new URLSearchParams(params);
    for (const [key, value] of Object.entries(changes)) {
      if (value === null || value === "") next.delete(`${prefix}${key}`);
      else next.set(`${prefix}${key}`, value);
    }
    setParams(next, { replace: true });
  };

  const page = useList<T>(resource, query, { enabled: problems.length === 0 });
  const reloadTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  // Only what the page shows: updates of its rows (by quick id), and creations/deletions of its kind (which move
  // rows between pages, so the page is read again, at most twice a second).
  const rowIds = (page.data?.data ?? []).map((row) => `${entityType}:${row.id}`).sort().join(",");
  useLive(entityType && rowIds ? { entityTypes: [entityType], eventTypes: ["updated"], quickIds: rowIds.split(",") }
    : null, (event) => {
    if (!event.entity) return;
    const entity = event.entity as unknown as T;
    client.setQueryData<Page<T>>(keys.list(resource, query), (current) =>
      current && current.data.some((row) => row.id === entity.id)
        ? { ...current, data: current.data.map((row) => (row.id === entity.id ? entity : row)) }
        : current);
  });
  useLive(entityType ? { entityTypes: [entityType], eventTypes: ["created", "deleted"] } : null, () => {
    if (reloadTimer.current) return;
    reloadTimer.current = setTimeout(() => {
      reloadTimer.current = null;
      void client.invalidateQueries({ queryKey: keys.list(resource) });
    }, 500);
  });

  const data = problems.length === 0 ? page.data : undefined;
  const { page: pageNo, pages } = pageInfo(data?.count ?? 0, limit, offset);
  const searchRef = useRef<HTMLInputElement>(null);
  const problemId = `${prefix || resource}-search-problems`;

  return (
    <div className="resource-table">
      <form
        className="toolbar"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          update({ q: searchRef.current?.value ?? "", offset: null });
        }}
      >
        <input
          ref={searchRef}
          type="search"
          defaultValue={q}
          key={q}
          aria-label="filter"
          aria-invalid={problems.length > 0 || undefined}
          aria-describedby={problems.length ? problemId : undefined}
          placeholder={searchHint ?? "name, or key=value; key>number"}
        />
        <button type="submit">Filter</button>
        <span className="muted count" aria-live="polite">
          {data ? `${data.count} found` : page.isFetching ? "loading…" : ""}
        </span>
      </form>
      {problems.length > 0 && (
        <ul className="error" role="alert" id={problemId}>
          {problems.map((problem) => <li key={problem}>{problem}</li>)}
        </ul>
      )}
      <ErrorBox error={page.error ? errorText(page.error) : null} />
      <div className="table-scroll">
        <table className="table">
          {caption && <caption className="visually-hidden">{caption}</caption>}
          <thead>
            <tr>
              {columns.map((column) => (
                <th key={column.key} className={column.className} scope="col"
                  aria-sort={sort?.f === column.key ? (sort.o === "asc" ? "ascending" : "descending") : undefined}>
                  {column.sortable === false ? (
                    column.label
                  ) : (
                    <button
                      type="button"
                      className="sort"
                      onClick={() => {
                        const s = nextSort(sort, column.key);
                        update({ sort: s.o === "desc" ? `-${s.f}` : s.f, offset: null });
                      }}
                    >
                      {column.label}
                      <span aria-hidden="true">{sort?.f === column.key ? (sort.o === "asc" ? " ▲" : " ▼") : ""}</span>
                    </button>
                  )}
                </th>
              ))}
              {actions && <th scope="col"><span className="visually-hidden">Actions</span></th>}
            </tr>
          </thead>
          <tbody>
            {data?.data.map((row) => (
              <tr key={row.id} data-id={row.id}>
                {columns.map((column, index) => (
                  <td key={column.key} className={column.className} data-label={column.label}>
                    {index === 0 && link ? <Link to={link(row)}>{column.render(row)}</Link> : column.render(row)}
                  </td>
                ))}
                {actions && <td className="row-actions">{actions(row)}</td>}
              </tr>
            ))}
            {data && data.data.length === 0 && (
              <tr>
                <td colSpan={columns.length + (actions ? 1 : 0)} className="muted">
                  nothing here{q ? " for this filter" : ""}
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
      <div className="pager">
        <button type="button" disabled={offset <= 0} onClick={() => update({ offset: String(Math.max(0, offset - limit)) })}>
          ‹ Prev
        </button>
        <span>
          page {pageNo} of {pages}
        </span>
        <button type="button" disabled={pageNo >= pages} onClick={() => update({ offset: String(offset + limit) })}>
          Next ›
        </button>
        <select aria-label="page size" value={limit} onChange={(e) => update({ limit: e.target.value, offset: null })}>
          {PAGE_SIZES.map((size) => (
            <option key={size} value={size}>
              {size} / page
            </option>
          ))}
        </select>
      </div>
    </div>
  );
}
