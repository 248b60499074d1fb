// React glue for the live socket: one LiveSocket per tab, `useLive` to subscribe while a component is mounted.

import { useEffect, useEffectEvent, useSyncExternalStore } from "react";

import { api, getToken } from "../api/client";
import { type ConnectionState, LiveSocket } from "./socket";
import type { LiveEvent, LiveFilter } from "./subscriptions";

/** The websocket: /api/ws on this host (the local stack), or VITE_WS_URL at build time (API Gateway's wss URL). */
function socketUrl(): string | null {
  if (typeof location === "undefined") return null;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const configured = import.meta.env?.VITE_WS_URL as string | undefined;
  // stream=none: this console subscribes to what it shows; without it the server sends every event (the reference's stream)
  const configuredBase = configured || `${scheme}://${location.host}/api/ws`;
  const base = `${configuredBase}${configuredBase.includes("?") ? "&" : "?"}stream=none`;
  const token = getToken();
  if (!token) return base;
  return `${base}&access_token=${encodeURIComponent(token)}`;
}

/** How long a refused websocket waits before asking whether the session ended: a password changed in this tab
 * closes its socket (the server ends the old sessions) while the tab is signing in again with the new one. */
export const SESSION_CHECK_DELAY_MS = 1500;

// A refused or closed-for-revocation websocket (4401) means the token is bad or gone: one REST call finds out, and
// its 401 ends the session, unless the tab has signed in again meanwhile (then the socket reconnects with the new
// token by itself).
export const live = new LiveSocket({
  url: socketUrl,
  onUnauthorized: () => {
    const refused = getToken();
    setTimeout(() => {
      if (refused && getToken() === refused) api("/api/user/profile").catch(() => undefined);
    }, SESSION_CHECK_DELAY_MS);
  },
});

/** Calls `listener` for every event under `filter` while mounted; a null filter subscribes to nothing. */
export function useLive(filter: LiveFilter | null, listener: (event: LiveEvent) => void): void {
  const onEvent = useEffectEvent(listener);
  const key = filter ? JSON.stringify(filter) : "";
  useEffect(() => {
    if (!key) return undefined;
    return live.subscribe(JSON.parse(key) as LiveFilter, (event) => onEvent(event));
  }, [key]);
}

const subscribeState = (onChange: () => void) => live.onState(onChange);
const readState = () => live.state;

/** The socket's state, read and subscribed to as one (useSyncExternalStore): a change between the render and the
 * subscription cannot be missed, so the indicator never stays on "connecting" while events flow. */
export function useConnectionState(): ConnectionState {
  return useSyncExternalStore(subscribeState, readState, readState);
}

/** Runs `poll` every `ms` while the socket is not open: pages stay current (slower) without a websocket. Queries
 * use useLiveRefetch (api/queries.ts) instead; this is for what is not a query (a job being watched). */
export function usePollWhileOffline(poll: () => void, ms = 5000): void {
  const state = useConnectionState();
  const onPoll = useEffectEvent(poll);
  useEffect(() => {
    if (state === "open") return undefined;
    const handle = setInterval(() => onPoll(), ms);
    return () => clearInterval(handle);
  }, [state, ms]);
}
