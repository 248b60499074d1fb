// Server data through TanStack Query: one cache for the whole console (de-duplicated requests, cancellation when a
// page goes away, invalidation after a change), kept current by the websocket. Queries marked `meta: { live: true }`
// are those live events keep up; they poll only while the socket is down (useLiveRefetch), and when it opens
// (first connect or reconnect) the ones read before it are read again, since events sent before the page's
// subscriptions reached the server are not replayed.

import { keepPreviousData, QueryClient, useQuery, useQueryClient } from "@tanstack/react-query";
import { useMemo } from "react";

import { useConnectionState } from "../live/hooks";
import { live } from "../live/hooks";
import { ApiError, getOne, list } from "./client";
import { type ListQuery, type Page } from "./query";

/** How often live data is polled while the websocket is down. */
export const OFFLINE_POLL_MS = 10_000;

export function makeQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: {
        staleTime: 2_000,
        refetchOnWindowFocus: false,
        // A 4xx will not change by asking again (not found, forbidden, a bad filter); a 5xx or a network error may.
        retry: (count, error) => !(error instanceof ApiError && error.status < 500) && count < 2,
      },
    },
  });
}

export const queryClient = makeQueryClient();

let openedAt = 0;
live.onState((state) => {
  if (state !== "open") return;
  openedAt = Date.now();
  void queryClient.invalidateQueries({
    predicate: (query) => query.meta?.live === true && query.state.dataUpdatedAt > 0 && query.state.dataUpdatedAt < openedAt,
  });
});

/** The refetch interval of a live query: none while the socket is open, OFFLINE_POLL_MS while it is not. */
export function useLiveRefetch(ms = OFFLINE_POLL_MS): number | false {
  return useConnectionState() === "open" ? false : ms;
}

export const keys = {
  list: (resource: string, query?: ListQuery) => (query ? ["list", resource, query] : ["list", resource]) as unknown[],
  one: (resource: string, id?: string) => (id === undefined ? ["one", resource] : ["one", resource, id]) as unknown[],
  fields: (ids: string[]) => ["fields", ids] as unknown[],
  series: (ids: string[], range: string, window: string, fn: string) => ["series", ids, range, window, fn] as unknown[],
  names: (kind: string, ids: string[]) => ["names", kind, ids] as unknown[],
  metricsEnabled: () => ["status", "metricsEnabled"] as unknown[],
};

/** A page of a resource list, the previous page kept on screen while the next loads. */
export function useList<T>(resource: string, query: ListQuery, options: { enabled?: boolean; live?: boolean } = {}) {
  const refetchInterval = useLiveRefetch();
  return useQuery({
    queryKey: keys.list(resource, query),
    queryFn: ({ signal }) => list<T>(resource, query, signal),
    placeholderData: keepPreviousData,
    enabled: options.enabled ?? true,
    meta: { live: options.live ?? true },
    refetchInterval: options.live === false ? false : refetchInterval,
  });
}

/** One record by id (a 404 is an error, not retried). */
export function useOne<T>(resource: string, id: string, options: { enabled?: boolean } = {}) {
  return useQuery({
    queryKey: keys.one(resource, id),
    queryFn: ({ signal }) => getOne<T>(resource, id, signal),
    enabled: (options.enabled ?? true) && Boolean(id),
    meta: { live: true },
  });
}

/** After a change: every list and record of these resources is read again where shown. */
export function useInvalidate() {
  const client = useQueryClient();
  return useMemo(() => (...resources: string[]) => Promise.all(resources.flatMap((resource) => [
    client.invalidateQueries({ queryKey: keys.list(resource) }),
    client.invalidateQueries({ queryKey: keys.one(resource) }),
  ])), [client]);
}

export type { Page };
