// Field values and metric series that stay current: read once over REST (TanStack Query: shared by every widget
// that shows the same fields, cancelled when they go), then kept up by websocket events for exactly those fields,
// written into the query cache; polled only while the socket is down.

import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useMemo } from "react";

import { api, metrics, type MetricPoint } from "../api/client";
import { keys, useLiveRefetch } from "../api/queries";
import type { Page } from "../api/query";
import { errorText } from "../api/errors";
import type { Field } from "../api/types";
import { useLive } from "./hooks";
import type { LiveEvent } from "./subscriptions";

/** A field as the API answers it (generated from /api/openapi.json: api/types.ts). */
export type FieldRecord = Field;

export function bareFieldId(id: string): string {
  return id.trim().replace(/^field:/, "");
}

/** The sorted unique bare ids of a list (stable across renders that pass equal lists). */
function useWanted(ids: string[]): string[] {
  const key = [...new Set(ids.map(bareFieldId).filter(Boolean))].sort().join(",");
  return useMemo(() => (key ? key.split(",") : []), [key]);
}

/** A field event applied to a map of fields by id. */
export function applyFieldEvent(fields: Record<string, FieldRecord>, event: LiveEvent): Record<string, FieldRecord> {
  if (event.type === "deleted") {
    if (!(event.entityId in fields)) return fields;
    const next = { ...fields };
    delete next[event.entityId];
    return next;
  }
  const entity = event.entity as FieldRecord | undefined;
  return entity && entity.id ? { ...fields, [entity.id]: entity } : fields;
}

export interface FieldsState {
  fields: Record<string, FieldRecord>;
  error: string | null;
  /** True once the fields were read (a missing id then really is missing). */
  loaded: boolean;
}

/** The fields with these ids (id or quick id), kept current. */
export function useFields(ids: string[]): FieldsState {
  const wanted = useWanted(ids);
  const client = useQueryClient();
  const queryKey = keys.fields(wanted);
  const refetchInterval = useLiveRefetch();
  const query = useQuery({
    queryKey,
    queryFn: async ({ signal }) => {
      const filter = JSON.stringify([{ k: "id", o: "in", v: wanted }]);
      const page = await api<Page<FieldRecord>>(`/api/field?limit=0&filter=${encodeURIComponent(filter)}`, { signal });
      return Object.fromEntries(page.data.map((f) => [f.id, f])) as Record<string, FieldRecord>;
    },
    enabled: wanted.length > 0,
    meta: { live: true },
    refetchInterval,
  });
  useLive(wanted.length ? { entityTypes: ["field"], quickIds: wanted.map((id) => `field:${id}`) } : null,
    (event: LiveEvent) => {
      client.setQueryData<Record<string, FieldRecord>>(queryKey, (old) => (old ? applyFieldEvent(old, event) : old));
    });
  return { fields: query.data ?? EMPTY, error: query.error ? errorText(query.error) : null, loaded: query.isSuccess };
}

const EMPTY: Record<string, FieldRecord> = {};

export interface SeriesState {
  series: Record<string, MetricPoint[]>;
  error: string | null;
  loading: boolean;
}

/** A live point appended to a series: kept in time order, once, and only within the range. */
export function appendPoint(points: MetricPoint[], point: MetricPoint, startMs: number): MetricPoint[] {
  if (points.some((p) => p.time === point.time)) return points;
  return [...points.filter((p) => p.time >= startMs), point].sort((a, b) => a.time - b.time);
}

/** Metric series of fields over `range` (e.g. -1h), aggregated per `window` if set; live points appended. */
export function useSeries(ids: string[], range: string, window: string, fn = "mean"): SeriesState {
  const wanted = useWanted(ids);
  const client = useQueryClient();
  const queryKey = keys.series(wanted, range, window, fn);
  const refetchInterval = useLiveRefetch();
  const query = useQuery({
    queryKey,
    queryFn: async () => {
      const results = await Promise.all(wanted.map((id) => metrics(id, range, window || undefined, fn)));
      return Object.fromEntries(wanted.map((id, i) => [id, results[i]])) as Record<string, MetricPoint[]>;
    },
    enabled: wanted.length > 0,
    meta: { live: true },
    refetchInterval,
  });
  // Raw points only: a live value is one point, not a window's aggregate (those come with the next read).
  useLive(wanted.length && !window ? { entityTypes: ["field"], eventTypes: ["updated"],
    quickIds: wanted.map((id) => `field:${id}`) } : null, (event) => {
    const entity = event.entity as FieldRecord | undefined;
    const value = entity?.current?.value;
    const stamp = entity?.current?.timestamp;
    if (!entity || !stamp) return;
    const numeric = typeof value === "number" ? value : typeof value === "boolean" ? Number(value) : null;
    if (numeric === null) return;
    const point = { time: Date.parse(stamp), value: numeric };
    client.setQueryData<Record<string, MetricPoint[]>>(queryKey, (old) => old && {
      ...old, [entity.id]: appendPoint(old[entity.id] ?? [], point, Date.now() + rangeMs(range)),
    });
  });
  return {
    series: query.data ?? EMPTY_SERIES,
    error: query.error ? errorText(query.error) : null,
    loading: wanted.length > 0 && query.isPending,
  };
}

const EMPTY_SERIES: Record<string, MetricPoint[]> = {};

/** "-1h" → -3 600 000 (ms); unknown forms count as one hour. */
export function rangeMs(range: string): number {
  const match = /^-(\d+)(ms|s|m|h|d|w)$/.exec(range.trim());
  if (!match) return -3_600_000;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
  return -Number(match[1]) * unit[match[2]];
}
