// Field values and metric series that stay current: loaded once over REST, then kept up by websocket events for
// exactly those fields (polled while the socket is down).

import { useCallback, useEffect, useMemo, useState } from "react";

import { api, metrics, type MetricPoint } from "../api/client";
import type { Page } from "../api/query";
import { useLive, usePollWhileOffline } from "./hooks";
import type { LiveEvent } from "./subscriptions";

export interface FieldRecord {
  id: string;
  gatewayId: string;
  nodeId: string;
  sourceId: string;
  fieldId: string;
  name: string;
  metricType: string;
  unit: string;
  current: { value: unknown; timestamp: string | null; isReceived?: boolean };
  previous?: { value: unknown; timestamp: string | null };
  labels: Record<string, string>;
  noChangeSince?: string | null;
  lastSeen?: string | null;
}

export function bareFieldId(id: string): string {
  return id.trim().replace(/^field:/, "");
}

/** The fields with these ids (id or quick id), kept current. */
export function useFields(ids: string[]): { fields: Record<string, FieldRecord>; error: string | null } {
  const wanted = useMemo(() => [...new Set(ids.map(bareFieldId).filter(Boolean))].sort(), [ids]);
  const key = wanted.join(",");
  const [fields, setFields] = useState<Record<string, FieldRecord>>({});
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(() => {
    if (wanted.length === 0) return;
    const filter = JSON.stringify([{ k: "id", o: "in", v: wanted }]);
    api<Page<FieldRecord>>(`/api/field?limit=0&filter=${encodeURIComponent(filter)}`).then(
      (page) => {
        setFields(Object.fromEntries(page.data.map((f) => [f.id, f])));
        setError(null);
      },
      (err: Error) => setError(err.message),
    );
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);

  useEffect(load, [load]);
  usePollWhileOffline(load);
  useLive(wanted.length ? { entityTypes: ["field"], quickIds: wanted.map((id) => `field:${id}`) } : null,
    (event: LiveEvent) => {
      const entity = event.entity as FieldRecord | undefined;
      if (event.type === "deleted") {
        setFields((all) => {
          const next = { ...all };
          delete next[event.entityId];
          return next;
        });
      } else if (entity && entity.id) {
        setFields((all) => ({ ...all, [entity.id]: entity }));
      }
    });
  return { fields, error };
}

export interface SeriesState {
  series: Record<string, MetricPoint[]>;
  error: string | null;
  loading: boolean;
}

/** Metric series of fields over `range` (e.g. -1h), aggregated per `window` if set; live points appended. */
export function useSeries(ids: string[], range: string, window: string, fn = "mean"): SeriesState {
  const wanted = useMemo(() => [...new Set(ids.map(bareFieldId).filter(Boolean))], [ids]);
  const key = wanted.join(",");
  const [state, setState] = useState<SeriesState>({ series: {}, error: null, loading: true });

  const load = useCallback(() => {
    if (wanted.length === 0) {
      setState({ series: {}, error: null, loading: false });
      return;
    }
    Promise.all(wanted.map((id) => metrics(id, range, window || undefined, fn))).then(
      (results) => setState({ series: Object.fromEntries(wanted.map((id, i) => [id, results[i]])), error: null,
        loading: false }),
      (err: Error) => setState((s) => ({ ...s, error: err.message, loading: false })),
    );
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key, range, window, fn]);

  useEffect(load, [load]);
  usePollWhileOffline(load, 10_000);
  useLive(wanted.length ? { entityTypes: ["field"], eventTypes: ["updated"],
    quickIds: wanted.map((id) => `field:${id}`) } : null, (event) => {
    const entity = event.entity as FieldRecord | undefined;
    const value = entity?.current?.value;
    const stamp = entity?.current?.timestamp;
    if (!entity || !stamp) return;
    const numeric = typeof value === "number" ? value : typeof value === "boolean" ? Number(value) : null;
    if (numeric === null) return;
    const time = Date.parse(stamp);
    setState((s) => {
      const points = s.series[entity.id] ?? [];
      if (points.some((p) => p.time === time)) return s;
      const startMs = Date.now() + rangeMs(range);
      const kept = points.filter((p) => p.time >= startMs);
      return { ...s, series: { ...s.series, [entity.id]: [...kept, { time, value: numeric }] } };
    });
  });
  return state;
}

/** "-1h" → -3 600 000 (ms); unknown forms count as one hour. */
export function rangeMs(range: string): number {
  const match = /^-(\d+)(ms|s|m|h|d|w)$/.exec(range.trim());
  if (!match) return -3_600_000;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
  return -Number(match[1]) * unit[match[2]];
}
