// The websocket's subscription bookkeeping, pure: pages subscribe to what they show; filters that differ only in
// quick ids share one server subscription; after a reconnect every live subscription is sent again. No socket in
// here (see socket.ts).

export type EventType = "created" | "updated" | "deleted" | "requested";

export interface LiveFilter {
  entityTypes?: string[];
  quickIds?: string[];
  labels?: Record<string, string>;
  eventTypes?: EventType[];
}

export interface LiveEvent {
  type: EventType;
  entityType: string;
  entityId: string;
  entityQuickId?: string;
  entity?: Record<string, unknown> | null;
}

export type Listener = (event: LiveEvent) => void;

export type ClientMessage =
  | { type: "subscribe"; id: string; filter: LiveFilter }
  | { type: "unsubscribe"; id: string };

/** The filter in a canonical form: empty parts dropped, lists sorted and unique, so equal filters compare equal. */
export function normalizeFilter(filter: LiveFilter): LiveFilter {
  const out: LiveFilter = {};
  const uniq = (items: string[] | undefined) => [...new Set((items ?? []).filter(Boolean))].sort();
  const entityTypes = uniq(filter.entityTypes);
  const quickIds = uniq(filter.quickIds);
  const eventTypes = uniq(filter.eventTypes) as EventType[];
  if (entityTypes.length) out.entityTypes = entityTypes;
  if (quickIds.length) out.quickIds = quickIds;
  if (eventTypes.length) out.eventTypes = eventTypes;
  const labels = Object.entries(filter.labels ?? {}).filter(([k]) => k !== "").sort(([a], [b]) => a.localeCompare(b));
  if (labels.length) out.labels = Object.fromEntries(labels);
  return out;
}

export function filterKey(filter: LiveFilter): string {
  return JSON.stringify(normalizeFilter(filter));
}

const DEVICE_DEPTH: Record<string, number> = { gateway: 1, node: 2, source: 3, field: 4 };

/** The quick ids an event answers to: its own and, for devices, its ancestors' (a field is under its node). */
export function eventKeys(event: LiveEvent): string[] {
  const own = event.entityQuickId ?? `${event.entityType}:${event.entityId}`;
  const depth = DEVICE_DEPTH[event.entityType];
  if (!depth) return [own];
  const parts = event.entityId.split(".");
  const kinds = ["gateway", "node", "source", "field"];
  const keys = [own];
  for (let d = depth - 1; d >= 1; d -= 1) keys.push(`${kinds[d - 1]}:${parts.slice(0, d).join(".")}`);
  return keys;
}

/** Whether an event falls under a filter (as the server decides; used to share one server subscription). */
export function matchesFilter(filter: LiveFilter, event: LiveEvent): boolean {
  const f = normalizeFilter(filter);
  if (f.eventTypes && !f.eventTypes.includes(event.type)) return false;
  if (f.entityTypes && !f.entityTypes.includes(event.entityType)) return false;
  if (f.quickIds) {
    const keys = eventKeys(event);
    if (!f.quickIds.some((q) => keys.includes(q))) return false;
  }
  if (f.labels) {
    const labels = (event.entity?.labels ?? {}) as Record<string, unknown>;
    for (const [key, value] of Object.entries(f.labels)) {
      if (labels[key] !== value) return false;
    }
  }
  return true;
}

interface Member {
  filter: LiveFilter;
  listener: Listener;
}

interface Group {
  id: string;
  key: string;
  /** The filter without quick ids; members with quick ids share one server subscription (their union). */
  rest: LiveFilter;
  byQuickId: boolean;
  members: Set<Member>;
  sent: string;
}

/**
 * Subscriptions by id. Filters that differ only in their quick ids share ONE server subscription holding the
 * union of the quick ids (the server allows 50 a connection; a dashboard has more fields than that), and events
 * are handed to the members whose own filter they match. `subscribe` and `unsubscribe` answer the messages to
 * send to the server (when connected).
 */
export class SubscriptionRegistry {
  private groups = new Map<string, Group>();
  private byId = new Map<string, Group>();
  private counter = 0;

  constructor(private readonly prefix = "s") {}

  private serverFilter(group: Group): LiveFilter {
    if (!group.byQuickId) return group.rest;
    const quickIds = [...new Set([...group.members].flatMap((m) => m.filter.quickIds ?? []))].sort();
    return { ...group.rest, quickIds };
  }

  /** The message that brings the server up to date with a group, if anything changed. */
  private sync(group: Group): ClientMessage[] {
    if (group.members.size === 0) {
      this.groups.delete(group.key);
      this.byId.delete(group.id);
      return [{ type: "unsubscribe", id: group.id }];
    }
    const filter = this.serverFilter(group);
    const text = JSON.stringify(filter);
    if (text === group.sent) return [];
    group.sent = text;
    return [{ type: "subscribe", id: group.id, filter }];
  }

  subscribe(filter: LiveFilter, listener: Listener): { unsubscribe: () => ClientMessage[]; messages: ClientMessage[] } {
    const normal = normalizeFilter(filter);
    const byQuickId = Boolean(normal.quickIds);
    const rest = { ...normal };
    delete rest.quickIds;
    const key = byQuickId ? `q:${JSON.stringify(rest)}` : `f:${JSON.stringify(normal)}`;
    let group = this.groups.get(key);
    if (!group) {
      this.counter += 1;
      group = { id: `${this.prefix}${this.counter}`, key, rest, byQuickId, members: new Set(), sent: "" };
      this.groups.set(key, group);
      this.byId.set(group.id, group);
    }
    const held = group;
    const member: Member = { filter: normal, listener };
    held.members.add(member);
    const messages = this.sync(held);
    let done = false;
    const unsubscribe = (): ClientMessage[] => {
      if (done) return [];
      done = true;
      held.members.delete(member);
      return this.sync(held);
    };
    return { unsubscribe, messages };
  }

  /** What to send after (re)connecting: one subscribe per live subscription. */
  resubscribeMessages(): ClientMessage[] {
    return [...this.byId.values()].map((g) => ({ type: "subscribe", id: g.id, filter: this.serverFilter(g) }));
  }

  /** Hands an event to the listeners it is for (by the server's subscription ids, or by matching without them). */
  dispatch(event: LiveEvent, subscriptionIds?: string[]): number {
    const groups = subscriptionIds && subscriptionIds.length > 0
      ? subscriptionIds.map((id) => this.byId.get(id)).filter((g): g is Group => g !== undefined)
      : [...this.byId.values()];
    let calls = 0;
    for (const group of groups) {
      for (const member of [...group.members]) {
        if (!matchesFilter(member.filter, event)) continue;
        try {
          member.listener(event);
        } catch (error) {
          console.error("live listener failed", error);
        }
        calls += 1;
      }
    }
    return calls;
  }

  /** Server subscriptions held. */
  get size(): number {
    return this.byId.size;
  }
}

/** Reconnect delay: 1 s doubling to 30 s, with up to 20 % jitter so many tabs do not reconnect at once. */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(30_000, 1000 * 2 ** Math.max(0, attempt));
  return Math.round(base * (1 + 0.2 * random()));
}

/** Parses a server message; null when it is not an event (acks, errors, junk). */
export function parseServerMessage(data: string): { event: LiveEvent; subscriptions?: string[] } | null {
  let message: unknown;
  try {
    message = JSON.parse(data);
  } catch {
    return null;
  }
  if (!message || typeof message !== "object") return null;
  const m = message as { type?: string; data?: unknown; subscriptions?: unknown };
  if (m.type !== "event" || !m.data || typeof m.data !== "object") return null;
  const event = m.data as LiveEvent;
  if (typeof event.entityType !== "string" || typeof event.type !== "string") return null;
  const subscriptions = Array.isArray(m.subscriptions) ? m.subscriptions.map(String) : undefined;
  return { event, subscriptions };
}
