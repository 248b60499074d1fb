// The event log: events from the websocket while a page that shows them is open (the overview's recent events, the
// event log page), kept for the tab's session in a ring buffer so that moving between those pages loses nothing.
// Nothing is subscribed while no such page is open (the server sends no event nobody looks at).

import { useSyncExternalStore } from "react";

import { formatValue } from "../components/common";
import type { LiveEvent } from "./subscriptions";

export interface LoggedEvent extends LiveEvent {
  /** Arrival order, unique in the tab. */
  seq: number;
  /** When the console received it (ms). */
  at: number;
}

export const LOG_SIZE = 500;

export class EventLog {
  private items: LoggedEvent[] = [];
  private seq = 0;
  private listeners = new Set<() => void>();

  constructor(private readonly size = LOG_SIZE, private readonly now: () => number = Date.now) {}

  add(event: LiveEvent): void {
    this.seq += 1;
    const item = { ...event, seq: this.seq, at: this.now() };
    // a new array each time, so that React sees the change (useSyncExternalStore compares snapshots)
    this.items = [item, ...this.items].slice(0, this.size);
    this.listeners.forEach((listener) => listener());
  }

  clear(): void {
    this.items = [];
    this.listeners.forEach((listener) => listener());
  }

  /** Newest first. */
  snapshot = (): LoggedEvent[] => this.items;

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };
}

export const eventLog = new EventLog();

export function useEventLog(log: EventLog = eventLog): LoggedEvent[] {
  return useSyncExternalStore(log.subscribe, log.snapshot, log.snapshot);
}

export interface EventQuery {
  entityTypes: string[];
  eventTypes: string[];
  /** Text the entity's id, quick id or name contains (any case). */
  text: string;
}

export function matchesQuery(event: LiveEvent, query: EventQuery, name = ""): boolean {
  if (query.entityTypes.length && !query.entityTypes.includes(event.entityType)) return false;
  if (query.eventTypes.length && !query.eventTypes.includes(event.type)) return false;
  const text = query.text.trim().toLowerCase();
  if (!text) return true;
  const entity = (event.entity ?? {}) as Record<string, unknown>;
  return [event.entityId, event.entityQuickId ?? "", name, String(entity.name ?? "")]
    .some((value) => value.toLowerCase().includes(text));
}

/** What an event says, in a few words: a field's value, a device's state, an automation's last run. */
export function describeEvent(event: LiveEvent): string {
  const entity = (event.entity ?? {}) as Record<string, unknown>;
  if (event.type === "deleted") return "deleted";
  if (event.type === "requested") return "requested";
  const state = entity.state as { status?: string; message?: string; lastEvaluation?: string } | undefined;
  if (event.entityType === "field") {
    const current = entity.current as { value?: unknown } | undefined;
    return `${event.type === "created" ? "new, " : ""}${formatValue(current?.value, entity.unit as string | undefined)}`;
  }
  if (state?.status) return `${state.status}${state.message ? `: ${state.message}` : ""}`;
  if (state?.message) return state.message;
  if (event.type === "created") return "created";
  return "changed";
}
