// Gateways, nodes, sources and fields: list pages and the gateway, node and field pages. Fields are shown by the
// names people gave ("Living room · Ceiling light · status"), with the control that fits each; names and labels
// are edited in place. A page for something that does not exist shows that, and nothing to act on.

import { useQueryClient } from "@tanstack/react-query";
import { useMemo, useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";

import { ApiError, gatewayAction, nodeAction, remove, save } from "../api/client";
import { errorText } from "../api/errors";
import { fieldWord, nodeIdOf, sourceIdOf, useFieldLabels, useRecords } from "../api/names";
import { keys, useList, useOne } from "../api/queries";
import { allows, useRole } from "../api/roles";
import type { Gateway, Node, Source } from "../api/types";
import { Card, ErrorBox, formatTime, formatValue, Labels, StatusBadge, usePageTitle } from "../components/common";
import { FieldControl } from "../components/FieldControl";
import { InlineLabels, InlineText } from "../components/InlineEdit";
import { LazyChart } from "../components/LazyChart";
import { MetricsOff, useMetricsEnabled } from "../components/MetricsOff";
import { type Column, ResourceTable } from "../components/ResourceTable";
import { type FieldRecord, rangeMs, useFields, useSeries } from "../live/fields";
import { useLive } from "../live/hooks";
import { RANGES } from "../widgets/model";

/** The API's records (generated from /api/openapi.json: api/types.ts). */
export type GatewayRecord = Gateway;
export type NodeRecord = Node;
export type SourceRecord = Source;

const enc = encodeURIComponent;

/** Node and field ids hold dots; the trailing slash keeps a reload of the page from looking like a file request. */
export const nodePath = (id: string) => `/nodes/${enc(id)}/`;
export const fieldPath = (id: string) => `/fields/${enc(id)}/`;

export function GatewaysPage() {
  const columns: Column<GatewayRecord>[] = [
    { key: "id", label: "Id", render: (g) => g.id },
    { key: "description", label: "Description", render: (g) => g.description },
    { key: "provider.type", label: "Provider", render: (g) => String(g.provider?.type ?? "") },
    { key: "state.status", label: "State", render: (g) => <StatusBadge status={g.state?.status} /> },
    { key: "labels", label: "Labels", sortable: false, render: (g) => <Labels labels={g.labels} /> },
  ];
  return (
    <Card title="Gateways" page>
      <ResourceTable<GatewayRecord> resource="gateway" entityType="gateway" columns={columns} caption="Gateways" nameKey="id"
        searchHint="id, or key=value; key>number"
        link={(g) => `/gateways/${enc(g.id)}`} defaultSort={{ f: "id", o: "asc" }} />
    </Card>
  );
}

const nodeColumns: Column<NodeRecord>[] = [
  { key: "name", label: "Name", render: (n) => n.name || `node ${n.nodeId}` },
  { key: "gatewayId", label: "Gateway", render: (n) => n.gatewayId },
  { key: "nodeId", label: "Node", render: (n) => n.nodeId },
  { key: "state.status", label: "State", render: (n) => <StatusBadge status={n.state?.status} /> },
  { key: "labels.library_version", label: "Library", render: (n) => n.labels?.library_version ?? "" },
  { key: "others.battery_level", label: "Battery", render: (n) => formatValue(n.others?.battery_level, "%") },
  { key: "lastSeen", label: "Last seen", render: (n) => formatTime(n.lastSeen) },
];

export function NodesPage() {
  return (
    <Card title="Nodes" page>
      <ResourceTable<NodeRecord> resource="node" entityType="node" columns={nodeColumns} caption="Nodes"
        link={(n) => nodePath(n.id)} defaultSort={{ f: "id", o: "asc" }} />
    </Card>
  );
}

/** A node's name (read in a batch with the other names on the page). */
function NodeName({ id }: { id: string }) {
  const nodes = useRecords("node", useMemo(() => [id], [id]));
  return <>{nodes[id]?.name || `node ${id.split(".").slice(1).join(".")}`}</>;
}

/** A field shown by its node's and source's names. */
function FieldName({ field }: { field: FieldRecord }) {
  const fields = useMemo(() => [field], [field]);
  return <>{useFieldLabels(fields)[field.id] ?? field.id}</>;
}

export function SourcesPage() {
  const columns: Column<SourceRecord>[] = [
    { key: "name", label: "Name", render: (s) => s.name || s.sourceId },
    { key: "nodeId", label: "Node", render: (s) => <Link to={nodePath(`${s.gatewayId}.${s.nodeId}`)}>
      <NodeName id={`${s.gatewayId}.${s.nodeId}`} /></Link> },
    { key: "gatewayId", label: "Gateway", render: (s) => s.gatewayId },
    { key: "sourceId", label: "Source", render: (s) => s.sourceId },
    { key: "labels.ms_type_string", label: "Type", render: (s) => s.labels?.ms_type_string ?? "" },
    { key: "lastSeen", label: "Last seen", render: (s) => formatTime(s.lastSeen) },
  ];
  return (
    <Card title="Sources" page>
      <ResourceTable<SourceRecord> resource="source" entityType="source" columns={columns} caption="Sources"
        link={(s) => nodePath(`${s.gatewayId}.${s.nodeId}`)} defaultSort={{ f: "id", o: "asc" }} />
    </Card>
  );
}

function FieldValue({ field }: { field: FieldRecord }) {
  const fields = useMemo(() => [field], [field]);
  return <FieldControl field={field} compact label={useFieldLabels(fields)[field.id]} />;
}

const fieldColumns: Column<FieldRecord>[] = [
  { key: "name", label: "Name", render: (f) => <FieldName field={f} /> },
  { key: "id", label: "Field", render: (f) => <code className="muted">{f.id}</code> },
  { key: "metricType", label: "Type", render: (f) => f.metricType },
  { key: "current.value", label: "Value", render: (f) => <FieldValue field={f} /> },
  { key: "current.timestamp", label: "Updated", render: (f) => formatTime(f.current?.timestamp) },
];

export function FieldsPage() {
  return (
    <Card title="Fields" page>
      <ResourceTable<FieldRecord> resource="field" entityType="field" columns={fieldColumns} caption="Fields"
        link={(f) => fieldPath(f.id)} defaultSort={{ f: "id", o: "asc" }} />
    </Card>
  );
}

/** One record, kept current by its events; `missing` once the server said it does not exist. */
function useRecord<T>(resource: string, id: string, entityType: string) {
  const client = useQueryClient();
  const record = useOne<T>(resource, id);
  useLive({ entityTypes: [entityType], quickIds: [`${entityType}:${id}`] }, (event) => {
    if (event.entityId !== id) return; // events of what is beneath it
    if (event.type === "updated" && event.entity) client.setQueryData(keys.one(resource, id), event.entity as T);
    if (event.type === "deleted") void client.invalidateQueries({ queryKey: keys.one(resource, id) });
  });
  const missing = record.error instanceof ApiError && record.error.status === 404;
  return { data: record.data, error: record.error ? errorText(record.error) : null, missing,
    loading: record.isPending };
}

/** Device actions: each button busy while its request is out (no double reboot), the answer said beside them. */
function ActionButtons({ actions, run }: { actions: Array<[string, string, boolean?]>; run: (a: string) => Promise<unknown> }) {
  const [message, setMessage] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  if (!allows(useRole(), "user")) return null; // actions and deletions are the user role's work
  return (
    <div className="actions">
      {actions.map(([action, label, confirmFirst]) => (
        <button key={action} type="button" disabled={busy !== null} aria-busy={busy === action || undefined}
          onClick={async () => {
            if (confirmFirst && !window.confirm(`${label}?`)) return;
            setError(null);
            setMessage(null);
            setBusy(action);
            try {
              await run(action);
              setMessage(`${label}: sent`);
            } catch (err) {
              setError(errorText(err));
            } finally {
              setBusy(null);
            }
          }}>
          {busy === action ? `${label}…` : label}
        </button>
      ))}
      {message && <span className="muted" role="status">{message}</span>}
      <ErrorBox error={error} />
    </div>
  );
}

/** What a page for a record that does not exist (or cannot be read) shows: the problem, and a way back. */
function Missing({ title, error, back, backLabel }: { title: string; error: string | null; back: string; backLabel: string }) {
  return (
    <Card title={title} page actions={<Link to={back}>{backLabel}</Link>}>
      <ErrorBox error={error} />
    </Card>
  );
}

export function GatewayPage() {
  const { id = "" } = useParams();
  const navigate = useNavigate();
  const gateway = useRecord<GatewayRecord>("gateway", id, "gateway");
  const g = gateway.data;
  const baseFilter = useMemo(() => [{ k: "gatewayId", o: "eq" as const, v: id }], [id]);
  if (!g) {
    if (gateway.loading) return <Card title={`Gateway ${id}`} page><p className="muted">loading…</p></Card>;
    return <Missing title={gateway.missing ? "Gateway not found" : `Gateway ${id}`} error={gateway.error}
      back="/gateways" backLabel="all gateways" />;
  }
  return (
    <>
      <Card title={`Gateway ${id}`} page actions={<Link to="/gateways">all gateways</Link>}>
        <dl className="facts">
          <dt>Description</dt><dd>{g.description || "—"}</dd>
          <dt>Provider</dt><dd>{String(g.provider?.type ?? "")}</dd>
          <dt>State</dt><dd><StatusBadge status={g.state?.status} /> {g.state?.message}</dd>
          <dt>Labels</dt><dd><Labels labels={g.labels} /></dd>
        </dl>
        <ActionButtons actions={[["discover_nodes", "Discover nodes"], ["delete", "Delete gateway", true]]}
          run={async (action) => {
            if (action === "delete") {
              await remove("gateway", [id]);
              navigate("/gateways");
              return;
            }
            await gatewayAction(action, [id]);
          }} />
      </Card>
      <Card title="Nodes">
        <ResourceTable<NodeRecord> resource="node" entityType="node" columns={nodeColumns} embedded caption="Nodes"
          baseFilter={baseFilter} link={(n) => nodePath(n.id)} defaultSort={{ f: "id", o: "asc" }} />
      </Card>
    </>
  );
}

/** Saves a name or labels with an upsert of just those keys (the server keeps the rest), then shows it everywhere. */
function useRename() {
  const client = useQueryClient();
  return async (resource: "node" | "source" | "field", id: string, changes: Record<string, unknown>) => {
    const stored = await save<Record<string, unknown>>(resource, { id, ...changes });
    await Promise.all([
      client.invalidateQueries({ queryKey: ["named", resource, id] }),
      client.invalidateQueries({ queryKey: keys.one(resource, id) }),
      client.invalidateQueries({ queryKey: keys.list(resource) }),
      resource === "field" ? client.invalidateQueries({ queryKey: ["fields"] }) : undefined,
    ]);
    return stored;
  };
}

export function NodePage() {
  const { id = "" } = useParams();
  const node = useRecord<NodeRecord>("node", id, "node");
  const n = node.data;
  const rename = useRename();
  const [gatewayId, nodeId] = [id.split(".")[0], id.split(".").slice(1).join(".")];
  const title = n ? n.name || `Node ${n.nodeId}` : `Node ${id}`;
  usePageTitle(n ? title : null);
  if (!n) {
    if (node.loading) return <Card title={`Node ${id}`} page><p className="muted">loading…</p></Card>;
    return <Missing title={node.missing ? "Node not found" : `Node ${id}`} error={node.error} back="/nodes"
      backLabel="all nodes" />;
  }
  return (
    <>
      <Card title={<>{title} <small className="muted">{n.id}</small></>} page={title}
        titleExtra={<InlineText value={n.name || ""} label={`node ${id}`} placeholder={n.nodeId} buttonOnly
          onSave={(name) => rename("node", id, { name })} />}
        actions={<Link to={`/gateways/${enc(gatewayId)}`}>gateway {gatewayId}</Link>}>
        <dl className="facts">
          <dt>State</dt><dd><StatusBadge status={n.state?.status} /> since {formatTime(n.state?.since)}</dd>
          <dt>Last seen</dt><dd>{formatTime(n.lastSeen)}</dd>
          <dt>Battery</dt><dd>{formatValue(n.others?.battery_level, "%")}</dd>
          {typeof n.others?.ota_state === "string" && (
            <><dt>Firmware update</dt><dd><OtaProgress others={n.others} /></dd></>
          )}
          <dt>Labels</dt>
          <dd><InlineLabels labels={n.labels ?? {}} onSave={(labels) => rename("node", id, { labels })}>
            <Labels labels={n.labels} /></InlineLabels></dd>
        </dl>
        <ActionButtons
          actions={[["heartbeat_request", "Heartbeat"], ["refresh_node_info", "Refresh info"], ["reboot", "Reboot", true],
            ["reset", "Reset", true]]}
          run={(action) => nodeAction(action, [id])} />
      </Card>
      <NodeFields gatewayId={gatewayId} nodeId={nodeId} />
    </>
  );
}

const OTA_STATES: Record<string, string> = {
  fetching: "fetching the file", ready: "waiting for the node to ask", running: "sending blocks",
  sent: "sent: the node checks and boots it", done: "done", failed: "failed", eeprom_erased: "EEPROM erased",
};

/** A MySensors node's firmware update as the edge reports it (live: the node's record follows its reports). */
export function OtaProgress({ others }: { others: Record<string, unknown> }) {
  const state = String(others.ota_state);
  const sent = Number(others.ota_blocks_sent ?? 0);
  const total = Number(others.ota_block_total ?? 0);
  const firmware = others.ota_firmware ? String(others.ota_firmware) : "";
  return (
    <span className={`ota ota-${state}`} data-testid="ota" data-state={state}>
      {firmware && <>{firmware}: </>}{OTA_STATES[state] ?? state}
      {total > 0 && state !== "eeprom_erased" && (
        <> <progress max={total} value={state === "done" ? total : sent}
          aria-label={`firmware blocks sent: ${sent} of ${total}`} /> {sent}/{total} blocks</>
      )}
      {others.ota_message ? <small className="muted"> {String(others.ota_message)}</small> : null}
      {others.ota_status_on ? <small className="muted"> ({formatTime(String(others.ota_status_on))})</small> : null}
    </span>
  );
}

function NodeFields({ gatewayId, nodeId }: { gatewayId: string; nodeId: string }) {
  const rename = useRename();
  const listed = useNodeFieldList(gatewayId, nodeId);
  const ids = useMemo(() => (listed.data ?? []).map((f) => f.id), [listed.data]);
  const { fields } = useFields(ids);
  const rows = useMemo(() => ids.map((fid) => fields[fid]).filter((f): f is FieldRecord => Boolean(f)), [ids, fields]);
  const sources = useRecords("source", useMemo(() => rows.map(sourceIdOf), [rows]));
  const labels = useFieldLabels(rows, false);
  const numeric = rows.filter((f) => ["gauge", "gauge_float", "counter", "binary"].includes(f.metricType));
  const [chartField, setChartField] = useState<string>("");
  const chosen = numeric.find((f) => f.id === chartField) ?? numeric[0];
  return (
    <>
      <Card title="Fields">
        <ErrorBox error={listed.error} />
        <div className="table-scroll">
          <table className="table">
            <caption className="visually-hidden">Fields of this node</caption>
            <thead><tr><th scope="col">Source</th><th scope="col">Field</th><th scope="col">Value</th>
              <th scope="col">Updated</th></tr></thead>
            <tbody>
              {rows.map((f) => {
                const source = sources[sourceIdOf(f)];
                return (
                  <tr key={f.id} data-id={f.id}>
                    <td data-label="Source">
                      <InlineText value={source?.name ?? ""} label={`source ${sourceIdOf(f)}`} placeholder={f.sourceId}
                        onSave={(name) => rename("source", sourceIdOf(f), { name })}>
                        {source?.name || f.sourceId}
                      </InlineText>
                    </td>
                    <td data-label="Field"><Link to={fieldPath(f.id)}>{fieldWord(f)}</Link>{" "}
                      <small className="muted">{f.fieldId}</small></td>
                    <td data-label="Value"><FieldControl field={f} label={labels[f.id]} /></td>
                    <td data-label="Updated">{formatTime(f.current?.timestamp)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      </Card>
      {chosen && (
        <Card title="Metrics" actions={
          <select aria-label="chart field" value={chosen.id} onChange={(e) => setChartField(e.target.value)}>
            {numeric.map((f) => <option key={f.id} value={f.id}>{labels[f.id] ?? f.id}</option>)}
          </select>}>
          <FieldChart fieldId={chosen.id} unit={chosen.unit} name={labels[chosen.id]} />
        </Card>
      )}
    </>
  );
}

/** A node's fields as listed (their values come live through useFields); read again when one comes or goes. */
function useNodeFieldList(gatewayId: string, nodeId: string) {
  const query = useMemo(() => ({ limit: 0, filter: [{ k: "gatewayId", o: "eq" as const, v: gatewayId },
    { k: "nodeId", o: "eq" as const, v: nodeId }], sortBy: [{ f: "id", o: "asc" as const }] }), [gatewayId, nodeId]);
  const client = useQueryClient();
  useLive({ entityTypes: ["field"], eventTypes: ["created", "deleted"], quickIds: [`node:${gatewayId}.${nodeId}`] },
    () => void client.invalidateQueries({ queryKey: keys.list("field", query) }));
  const list = useList<FieldRecord>("field", query, { live: false });
  return { data: list.data?.data, error: list.error ? errorText(list.error) : null };
}

/** A field's chart, or the notice that the server keeps no metrics (then nothing is queried). */
export function FieldChart({ fieldId, unit, name }: { fieldId: string; unit?: string; name?: string }) {
  const enabled = useMetricsEnabled();
  if (enabled === false) return <MetricsOff />;
  return enabled ? <FieldHistory fieldId={fieldId} unit={unit} name={name} /> : null;
}

function FieldHistory({ fieldId, unit, name }: { fieldId: string; unit?: string; name?: string }) {
  const [range, setRange] = useState("-1h");
  const preset = RANGES.find((r) => r.value === range);
  const [window, setWindow] = useState<string>("auto");
  const effectiveWindow = window === "auto" ? preset?.window ?? "" : window === "raw" ? "" : window;
  const ids = useMemo(() => [fieldId], [fieldId]);
  const { series, error } = useSeries(ids, range, effectiveWindow);
  return (
    <div>
      <div className="toolbar">
        <label>
          Range{" "}
          <select aria-label="range" value={range} onChange={(e) => setRange(e.target.value)}>
            {RANGES.map((r) => <option key={r.value} value={r.value}>{r.label}</option>)}
          </select>
        </label>
        <label>
          Window{" "}
          <select aria-label="window" value={window} onChange={(e) => setWindow(e.target.value)}>
            {["auto", "raw", "1m", "5m", "15m", "1h", "6h", "1d"].map((w) => <option key={w} value={w}>{w}</option>)}
          </select>
        </label>
      </div>
      <ErrorBox error={error} />
      <LazyChart series={[{ name: name ?? fieldId, points: series[fieldId] ?? [] }]} unit={unit}
        span={-rangeMs(range) / 1000} />
    </div>
  );
}

export function FieldPage() {
  const { id = "" } = useParams();
  const ids = useMemo(() => [id], [id]);
  const { fields, error, loaded } = useFields(ids);
  const rename = useRename();
  const f = fields[id];
  const rows = useMemo(() => (f ? [f] : []), [f]);
  const label = useFieldLabels(rows)[id];
  const nodeId = id.split(".").slice(0, 2).join(".");
  usePageTitle(f ? label ?? f.name : null);
  if (!f) {
    if (!loaded && !error) return <Card title={`Field ${id}`} page><p className="muted">loading…</p></Card>;
    return <Missing title="Field not found" error={error ?? `There is no field ${id}.`} back="/fields"
      backLabel="all fields" />;
  }
  return (
    <>
      <Card page={label ?? f.name} title={<>{label ?? f.name} <small className="muted">{f.id}</small></>}
        titleExtra={<InlineText value={f.name === f.fieldId ? "" : f.name} label={`field ${id}`} placeholder={f.fieldId}
          buttonOnly onSave={(name) => rename("field", id, { name: name || f.fieldId })} />}
        actions={<Link to={nodePath(nodeId)}>node {nodeIdOf(f)}</Link>}>
        <dl className="facts">
          <dt>Value</dt><dd data-testid="field-value"><FieldControl field={f} label={label} /></dd>
          <dt>Previous</dt><dd>{formatValue(f.previous?.value, f.unit)}</dd>
          <dt>Type</dt><dd>{f.metricType} {f.unit}</dd>
          <dt>Updated</dt><dd>{formatTime(f.current?.timestamp)}</dd>
          <dt>No change since</dt><dd>{formatTime(f.noChangeSince)}</dd>
          <dt>Labels</dt>
          <dd><InlineLabels labels={f.labels ?? {}} onSave={(labels) => rename("field", id, { labels })}>
            <Labels labels={f.labels} /></InlineLabels></dd>
        </dl>
      </Card>
      <Card title="Metrics">
        <FieldChart fieldId={id} unit={f.unit} name={label} />
      </Card>
    </>
  );
}
