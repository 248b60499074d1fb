// The landing page and the event log. The overview says at a glance how the installation is: gateways and nodes up
// and down, low batteries, nodes silent past their window, what happened recently (live events while the page is
// open, and the nodes heard from last), with links into the lists; the favourite dashboard is one click away.
// The event log (/events) shows the websocket's events as they come, filterable by entity type, event type and
// entity, with links to what they are about.

import { useQuery } from "@tanstack/react-query";
import { type ReactNode, useMemo, useState } from "react";
import { Link, useSearchParams } from "react-router-dom";

import { api, list } from "../api/client";
import { errorText } from "../api/errors";
import { fieldLabel, fieldParts, nodeIdOf, sourceIdOf, useRecords } from "../api/names";
import { useLiveRefetch } from "../api/queries";
import { type Filter } from "../api/query";
import { Card, ErrorBox, formatTime, formatValue, usePageTitle } from "../components/common";
import { describeEvent, eventLog, type LoggedEvent, matchesQuery, useEventLog } from "../live/eventLog";
import { useLive } from "../live/hooks";
import type { EventType, LiveFilter } from "../live/subscriptions";
import type { ApiDashboard, Node } from "../api/types";
import { rangeMs } from "../live/fields";

export const LOW_BATTERY = 20;
const DEFAULT_INACTIVE = "15m";

type Dashboard = Pick<ApiDashboard, "id" | "title">;
type NodeRow = Node;

const enc = encodeURIComponent;
const nodePath = (id: string) => `/nodes/${enc(id)}/`;
/** A list page with its search box filled in. */
const listLink = (path: string, q: string) => `${path}?q=${enc(q)}`;

/** How many records of a kind match filters (one request answering only the count). */
function useCount(resource: string, filter: Filter[]) {
  const refetchInterval = useLiveRefetch(30_000);
  return useQuery({
    queryKey: ["count", resource, filter],
    queryFn: ({ signal }) => list(resource, { limit: 1, filter }, signal).then((page) => page.count),
    meta: { live: true },
    refetchInterval,
  });
}

/** A few rows; `filter` may be a function of the time of the read (a cut-off "15 minutes ago"). */
function useRows<T>(resource: string, filter: Filter[] | (() => Filter[]), sort: { f: string; o: "asc" | "desc" },
  key: unknown = null, limit = 5) {
  const refetchInterval = useLiveRefetch(30_000);
  return useQuery({
    queryKey: ["rows", resource, typeof filter === "function" ? key : filter, sort, limit],
    queryFn: ({ signal }) => list<T>(resource, { limit, filter: typeof filter === "function" ? filter() : filter,
      sortBy: [sort] }, signal),
    meta: { live: true },
    refetchInterval,
  });
}

function Stat({ label, value, to, tone }: { label: string; value: number | undefined; to: string; tone?: string }) {
  return (
    <Link to={to} className={`stat ${tone && value ? `stat-${tone}` : ""}`} data-stat={label}>
      <span className="stat-value">{value ?? "…"}</span>
      <span className="stat-label">{label}</span>
    </Link>
  );
}

/** The inactive window (the system setting; a node's inactive_duration label overrides it for that node). */
function useInactiveWindow(): string {
  const settings = useQuery({
    queryKey: ["one", "settings", "system"],
    queryFn: ({ signal }) => api<{ nodeStateJob?: { inactiveDuration?: string } }>("/api/settings/system", { signal }),
    staleTime: 60_000,
  });
  return settings.data?.nodeStateJob?.inactiveDuration || DEFAULT_INACTIVE;
}

export function OverviewPage() {
  usePageTitle("Overview");
  const favourite = useQuery({
    queryKey: ["list", "dashboard", "favourite"],
    queryFn: ({ signal }) => list<Dashboard>("dashboard", { limit: 1, filter: [{ k: "favorite", o: "eq", v: true }],
      sortBy: [{ f: "title", o: "asc" }] }, signal),
  });
  const gateways = useCount("gateway", []);
  const gatewaysUp = useCount("gateway", [{ k: "state.status", o: "eq", v: "up" }]);
  const gatewaysDown = useCount("gateway", [{ k: "state.status", o: "in", v: ["down", "error"] }]);
  const nodes = useCount("node", []);
  const nodesUp = useCount("node", [{ k: "state.status", o: "eq", v: "up" }]);
  const nodesDown = useCount("node", [{ k: "state.status", o: "in", v: ["down", "error"] }]);
  const inactive = useInactiveWindow();
  const low = useRows<NodeRow>("node", [{ k: "others.battery_level", o: "lt", v: LOW_BATTERY }],
    { f: "others.battery_level", o: "asc" });
  const silent = useRows<NodeRow>("node", () => [{ k: "lastSeen", o: "lt",
    v: new Date(Date.now() + rangeMs(`-${inactive}`)).toISOString() }], { f: "lastSeen", o: "asc" }, ["silent", inactive]);
  const recent = useRows<NodeRow>("node", [{ k: "lastSeen", o: "exists", v: true }], { f: "lastSeen", o: "desc" });
  const dashboard = favourite.data?.data[0];
  const failed = [gateways, nodes, low, silent].find((q) => q.error)?.error;

  return (
    <div className="overview">
      <div className="page-head">
        <h1>Overview</h1>
        <div className="actions">
          {dashboard ? (
            <Link className="button primary" to={`/dashboards/${enc(dashboard.id)}`}>★ {dashboard.title || dashboard.id}</Link>
          ) : favourite.isSuccess ? (
            <Link className="button" to="/dashboards">Dashboards</Link>
          ) : null}
        </div>
      </div>
      <ErrorBox error={failed ? errorText(failed) : null} />
      <div className="stats">
        <Card title="Gateways">
          <div className="stat-row">
            <Stat label="up" value={gatewaysUp.data} to={listLink("/gateways", "state.status=up")} tone="ok" />
            <Stat label="down" value={gatewaysDown.data} to={listLink("/gateways", "state.status=down")} tone="bad" />
            <Stat label="in all" value={gateways.data} to="/gateways" />
          </div>
        </Card>
        <Card title="Nodes">
          <div className="stat-row">
            <Stat label="up" value={nodesUp.data} to={listLink("/nodes", "state.status=up")} tone="ok" />
            <Stat label="down" value={nodesDown.data} to={listLink("/nodes", "state.status=down")} tone="bad" />
            <Stat label="in all" value={nodes.data} to="/nodes" />
          </div>
        </Card>
      </div>
      <div className="overview-grid">
        <NodeList title={`Low batteries (under ${LOW_BATTERY} %)`} rows={low.data?.data} empty="No battery is low."
          more={low.data && low.data.count > low.data.data.length
            ? listLink("/nodes", `others.battery_level<${LOW_BATTERY}`) : undefined}
          detail={(n) => formatValue(n.others?.battery_level, "%")} testId="low-batteries" />
        <NodeList title={`Silent for more than ${inactive}`} rows={silent.data?.data} empty="Every node was heard from lately."
          more={silent.data && silent.data.count > silent.data.data.length ? "/nodes?sort=lastSeen" : undefined}
          detail={(n) => `last seen ${formatTime(n.lastSeen)}`} testId="silent-nodes" />
        <NodeList title="Heard from last" rows={recent.data?.data} empty="No node has reported yet."
          more="/nodes?sort=-lastSeen" detail={(n) => formatTime(n.lastSeen)} testId="recent-nodes" />
        <RecentEvents />
      </div>
    </div>
  );
}

function NodeList({ title, rows, empty, more, detail, testId }: {
  title: string; rows: NodeRow[] | undefined; empty: string; more?: string; detail: (n: NodeRow) => ReactNode;
  testId: string;
}) {
  return (
    <Card title={title} actions={more ? <Link to={more}>all</Link> : undefined}>
      {!rows ? <p className="muted">loading…</p> : rows.length === 0 ? <p className="muted">{empty}</p> : (
        <ul className="plain-list" data-testid={testId}>
          {rows.map((n) => (
            <li key={n.id}>
              <Link to={nodePath(n.id)}>{n.name || `node ${n.nodeId}`}</Link>{" "}
              <span className="muted">{n.gatewayId}</span> <span className="list-detail">{detail(n)}</span>
            </li>
          ))}
        </ul>
      )}
    </Card>
  );
}

/** Device and automation events (not every field value: those are on the event log page). */
const RECENT_FILTER: LiveFilter = { entityTypes: ["gateway", "node", "task", "schedule", "handler", "forward_payload",
  "dashboard"] };

function RecentEvents() {
  useLive(RECENT_FILTER, (event) => eventLog.add(event));
  const events = useEventLog().filter((e) => e.entityType !== "field" || e.type !== "updated").slice(0, 10);
  return (
    <Card title="Recent events" actions={<Link to="/events">event log</Link>}>
      {events.length === 0 ? (
        <p className="muted">Changes of gateways, nodes and automation appear here as they happen.</p>
      ) : (
        <EventTable events={events} compact />
      )}
    </Card>
  );
}

// --------------------------------------------------------------------------------------------- the event log

const ENTITY_TYPES = ["field", "node", "gateway", "source", "task", "schedule", "handler", "forward_payload",
  "dashboard"];
const EVENT_TYPES: EventType[] = ["created", "updated", "deleted", "requested"];

const listParam = (value: string | null) => (value ? value.split(",").filter(Boolean) : []);

export function EventsPage() {
  usePageTitle("Event log");
  const [params, setParams] = useSearchParams();
  // The filters are kept in the address (a link shares them) and here: the router applies an address change in a
  // transition, so a checkbox bound to the address alone springs back for a moment after a click.
  const [filters, setFilters] = useState(() => ({ entity: params.get("entity") ?? "", type: params.get("type") ?? "",
    q: params.get("q") ?? "" }));
  const entityTypes = listParam(filters.entity);
  const eventTypes = listParam(filters.type);
  const text = filters.q;
  const [paused, setPaused] = useState(false);
  const set = (key: "entity" | "type" | "q", value: string) => {
    const now = { ...filters, [key]: value };
    setFilters(now);
    // from the filters, not `params`: the address may not have caught up with the click before
    setParams(new URLSearchParams(Object.entries(now).filter(([, v]) => v)), { replace: true });
  };
  // The server filters by entity and event type; the text filter is applied here (it also matches names).
  useLive(paused ? null : { entityTypes, eventTypes: eventTypes as EventType[] }, (event) => eventLog.add(event));
  const all = useEventLog();
  // The text is matched in the table, against the names shown there too ("living room"), not only ids.
  const shown = all.filter((event) => matchesQuery(event, { entityTypes, eventTypes, text: "" }));
  const toggle = (key: "entity" | "type", values: string[], value: string) =>
    set(key, (values.includes(value) ? values.filter((v) => v !== value) : [...values, value]).join(","));

  return (
    <Card title="Event log" page actions={
      <>
        <button type="button" aria-pressed={paused} onClick={() => setPaused(!paused)}>{paused ? "Resume" : "Pause"}</button>
        <button type="button" onClick={() => eventLog.clear()}>Clear</button>
      </>}>
      <div className="event-filters">
        <fieldset className="multi">
          <legend>Entity types</legend>
          {ENTITY_TYPES.map((type) => (
            <label key={type} className="check">
              <input type="checkbox" checked={entityTypes.includes(type)} onChange={() => toggle("entity", entityTypes, type)} />
              {type.replace("_", " ")}
            </label>
          ))}
        </fieldset>
        <fieldset className="multi">
          <legend>Event types</legend>
          {EVENT_TYPES.map((type) => (
            <label key={type} className="check">
              <input type="checkbox" checked={eventTypes.includes(type)} onChange={() => toggle("type", eventTypes, type)} />
              {type}
            </label>
          ))}
        </fieldset>
        <label>
          Entity
          <input type="search" aria-label="entity" value={text} placeholder="id or name, e.g. sim.1 or kitchen"
            onChange={(e) => set("q", e.target.value)} />
        </label>
      </div>
      <p className="muted" aria-live="polite">
        {paused ? "Paused: " : "Live: "}{shown.length} of {all.length} events received in this tab
        {entityTypes.length || eventTypes.length ? " (the server sends only the chosen types)" : ""}.
      </p>
      {shown.length === 0
        ? <p className="muted">Nothing yet: events appear here as they happen.</p>
        : <EventTable events={shown} text={text} limit={200} />}
    </Card>
  );
}

function entityLink(event: LoggedEvent): string | null {
  const id = event.entityId;
  switch (event.entityType) {
    case "gateway": return `/gateways/${enc(id)}`;
    case "node": return nodePath(id);
    case "source": return nodePath(id.split(".").slice(0, 2).join("."));
    case "field": return `/fields/${enc(id)}/`;
    case "task": case "schedule": case "handler": return `/automation/${event.entityType}/${enc(id)}`;
    case "forward_payload": return `/automation/forwardpayload/${enc(id)}`;
    case "dashboard": return `/dashboards/${enc(id)}`;
    default: return null;
  }
}

function EventTable({ events: received, compact, text = "", limit = 200 }: {
  events: LoggedEvent[]; compact?: boolean; text?: string; limit?: number;
}) {
  // Names for fields (their node's and source's) and nodes.
  const fields = useMemo(() => received.filter((e) => e.entityType === "field")
    .map((e) => fieldParts(e.entityId)).filter((f): f is NonNullable<typeof f> => f !== null), [received]);
  const nodeIds = useMemo(() => [...fields.map(nodeIdOf), ...received.filter((e) => e.entityType === "node")
    .map((e) => e.entityId)], [fields, received]);
  const nodes = useRecords("node", nodeIds);
  const sources = useRecords("source", useMemo(() => fields.map(sourceIdOf), [fields]));
  const name = (event: LoggedEvent): string => {
    const entity = (event.entity ?? {}) as Record<string, unknown>;
    if (event.entityType === "field") {
      const parts = fieldParts(event.entityId);
      if (parts) return fieldLabel({ ...parts, name: entity.name as string | undefined }, nodes[nodeIdOf(parts)],
        sources[sourceIdOf(parts)]);
    }
    if (event.entityType === "node") return String(entity.name || nodes[event.entityId]?.name || event.entityId);
    return String(entity.name || entity.title || entity.description || event.entityId);
  };
  const events = (text.trim() ? received.filter((event) => matchesQuery(event,
    { entityTypes: [], eventTypes: [], text }, name(event))) : received).slice(0, limit);
  if (events.length === 0) return <p className="muted">No event matches {JSON.stringify(text.trim())} yet.</p>;
  return (
    <div className="table-scroll">
      {text.trim() && (
        <p className="muted" aria-live="polite">{events.length} of {received.length} match {JSON.stringify(text.trim())}.</p>
      )}
      <table className="table events" data-testid="event-table">
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Event</th>
            {!compact && <th scope="col">Kind</th>}
            <th scope="col">Entity</th>
            <th scope="col">What</th>
          </tr>
        </thead>
        <tbody>
          {events.map((event) => {
            const to = entityLink(event);
            const label = name(event);
            return (
              <tr key={event.seq} data-entity={event.entityQuickId ?? `${event.entityType}:${event.entityId}`}>
                <td data-label="Time">{new Date(event.at).toLocaleTimeString()}</td>
                <td data-label="Event"><span className={`badge badge-${event.type}`}>{event.type}</span></td>
                {!compact && <td data-label="Kind">{event.entityType.replace("_", " ")}</td>}
                <td data-label="Entity">
                  {to && event.type !== "deleted" ? <Link to={to}>{label}</Link> : label}
                  {label !== event.entityId && <small className="muted"> {event.entityId}</small>}
                </td>
                <td data-label="What">{describeEvent(event)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

