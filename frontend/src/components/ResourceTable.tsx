// A list page of any resource: search (name text or key=value filters), sortable columns, paging, live rows.
// The query lives in the URL, so back/forward and reload keep it.

import { type ReactNode, useCallback, useMemo, useRef } from "react";
import { Link, useSearchParams } from "react-router-dom";

import { list } from "../api/client";
import { nextSort, pageInfo, parseSearch, type Sort } from "../api/query";
import { useLive, usePollWhileOffline } from "../live/hooks";
import { ErrorBox, useAsync } from "./common";

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
}

const PAGE_SIZES = [10, 25, 50, 100];

export function ResourceTable<T extends { id: string }>(props: ResourceTableProps<T>) {
  const { resource, entityType, columns, link, defaultSort, searchHint, baseFilter, actions, embedded, nameKey } = props;
  const [params, setParams] = useSearchParams();
  const prefix = embedded ? `${resource}.` : "";
  const q = params.get(`${prefix}q`) ?? "";
  const limit = Number(params.get(`${prefix}limit`) ?? (embedded ? 10 : 25)) || 25;
  const offset = Number(params.get(`${prefix}offset`) ?? 0) || 0;
  const sortParam = params.get(`${prefix}sort`);
  const sort: Sort | undefined = sortParam
    ? { f: sortParam.replace(/^-/, ""), o: sortParam.startsWith("-") ? "desc" : "asc" }
    : defaultSort;
  const filter = useMemo(() => [...(baseFilter ?? []), ...parseSearch(q, nameKey)], [q, baseFilter, nameKey]);
  const filterKey = JSON.stringify(filter);

  const update = (changes: Record<string, string | null>) => {
    const next = new URLSearchParams(params);
    for (const [key, value] of Object.entries(changes)) {
      if (value === null || value === "") next.delete(`${prefix}${key}`);
      else next.set(`${prefix}${key}`, value);
    }
    setParams(next, { replace: true });
  };

  const page = useAsync(
    (signal) => list<T>(resource, { limit, offset, sortBy: sort ? [sort] : [], filter }, signal),
    [resource, limit, offset, sort?.f, sort?.o, filterKey],
  );
  const reloadTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const reloadSoon = useCallback(() => {
    if (reloadTimer.current) return;
    reloadTimer.current = setTimeout(() => {
      reloadTimer.current = null;
      page.reload();
    }, 500);
  }, [page]);
  usePollWhileOffline(page.reload, 10_000);
  // Only what the page shows: updates of its rows (by quick id), and creations/deletions of its kind (which move
  // rows between pages, so the page is fetched again).
  const rowIds = (page.data?.data ?? []).map((row) => `${entityType}:${row.id}`).sort().join(",");
  useLive(entityType && rowIds ? { entityTypes: [entityType], eventTypes: ["updated"], quickIds: rowIds.split(",") }
    : null, (event) => {
    if (!event.entity) return;
    const entity = event.entity as unknown as T;
    page.setData((current) =>
      current && current.data.some((row) => row.id === entity.id)
        ? { ...current, data: current.data.map((row) => (row.id === entity.id ? entity : row)) }
        : current);
  });
  useLive(entityType ? { entityTypes: [entityType], eventTypes: ["created", "deleted"] } : null, reloadSoon);

  const data = page.data;
  const { page: pageNo, pages } = pageInfo(data?.count ?? 0, limit, offset);
  const searchRef = useRef<HTMLInputElement>(null);

  return (
    <div className="resource-table">
      <form
        className="toolbar"
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
          placeholder={searchHint ?? "name, or key=value; key>number"}
        />
        <button type="submit">Filter</button>
        <span className="muted count">{data ? `${data.count} found` : page.loading ? "loading…" : ""}</span>
      </form>
      <ErrorBox error={page.error} />
      <div className="table-scroll">
        <table className="table">
          <thead>
            <tr>
              {columns.map((column) => (
                <th key={column.key} className={column.className}>
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
                      {sort?.f === column.key ? (sort.o === "asc" ? " ▲" : " ▼") : ""}
                    </button>
                  )}
                </th>
              ))}
              {actions && <th />}
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
