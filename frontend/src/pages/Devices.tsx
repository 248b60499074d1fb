// Gateways, nodes, sources and fields: list pages and the gateway, node and field pages.

import { useMemo, useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";

import { api, gatewayAction, getOne, nodeAction, remove } from "../api/client";
import { allows, useRole } from "../api/roles";
import { Chart } from "../components/Chart";
import { Card, ErrorBox, errorText, formatTime, formatValue, Labels, StatusBadge, useAsync } from "../components/common";
import { FieldControl } from "../components/FieldControl";
import { MetricsOff, useMetricsEnabled } from "../components/MetricsOff";
import { type Column, ResourceTable } from "../components/ResourceTable";
import { type FieldRecord, useFields, useSeries } from "../live/fields";
import { useLive } from "../live/hooks";
import { RANGES } from "../widgets/model";

interface State {
  status?: string;
  message?: string;
  since?: string;
}

export interface GatewayRecord {
  id: string;
  description: string;
  enabled?: boolean;
  provider: Record<string, unknown>;
  labels: Record<string, string>;
  state?: State;
  lastTransaction?: string | null;
}

export interface NodeRecord {
  id: string;
  gatewayId: string;
  nodeId: string;
  name: string;
  labels: Record<string, string>;
  others: Record<string, unknown>;
  state?: State;
  lastSeen?: string | null;
}

export interface SourceRecord {
  id: string;
  gatewayId: string;
  nodeId: string;
  sourceId: string;
  name: string;
  labels: Record<string, string>;
  lastSeen?: string | null;
}

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
    <Card title="Gateways">
      <ResourceTable<GatewayRecord> resource="gateway" entityType="gateway" columns={columns}
        link={(g) => `/gateways/${enc(g.id)}`} defaultSort={{ f: "id", o: "asc" }} />
    </Card>
  );
}

const nodeColumns: Column<NodeRecord>[] = [
  { key: "name", label: "Name", render: (n) => n.name || n.nodeId },
  { key: "gatewayId", label: "Gateway", render: (n) => n.gatewayId },
  { key: "nodeId", label: "Node", render: (n) => n.nodeId },
  { key: "state.status", label: "State", render: (n) => <StatusBadge status={n.state?.status} /> },
  { key: "labels.library_version", label: "Library", render: (n) => n.labels?.library_version ?? "" },
  { key: "others.battery_level", label: "Battery", render: (n) => formatValue(n.others?.battery_level, "%") },
  { key: "lastSeen", label: "Last seen", render: (n) => formatTime(n.lastSeen) },
];

export function NodesPage() {
  return (
    <Card title="Nodes">
      <ResourceTable<NodeRecord> resource="node" entityType="node" columns={nodeColumns}
        link={(n) => nodePath(n.id)} defaultSort={{ f: "id", o: "asc" }} />
    </Card>
  );
}

export function SourcesPage() {
  const columns: Column<SourceRecord>[] = [
    { key: "name", label: "Name", render: (s) => s.name || s.sourceId },
    { key: "gatewayId", label: "Gateway", render: (s) => s.gatewayId },
    { key: "nodeId", label: "Node", render: (s) => <Link to={nodePath(`${s.gatewayId}.${s.nodeId}`)}>{s.nodeId}</Link> },
    { key: "sourceId", label: "Source", render: (s) => s.sourceId },
    { key: "labels.ms_type_string", label: "Type", render: (s) => s.labels?.ms_type_string ?? "" },
    { key: "lastSeen", label: "Last seen", render: (s) => formatTime(s.lastSeen) },
  ];
  return (
    <Card title="Sources">
      <ResourceTable<SourceRecord> resource="source" entityType="source" columns={columns}
        link={(s) => nodePath(`${s.gatewayId}.${s.nodeId}`)} defaultSort={{ f: "id", o: "asc" }} />
    </Card>
  );
}

const fieldColumns: Column<FieldRecord>[] = [
  { key: "id", label: "Field", render: (f) => f.id },
  { key: "name", label: "Name", render: (f) => f.name },
  { key: "metricType", label: "Type", render: (f) => f.metricType },
  { key: "current.value", label: "Value", render: (f) => <FieldControl field={f} compact /> },
  { key: "current.timestamp", label: "Updated", render: (f) => formatTime(f.current?.timestamp) },
];

export function FieldsPage() {
  return (
    <Card title="Fields">
      <ResourceTable<FieldRecord> resource="field" entityType="field" columns={fieldColumns}
        link={(f) => fieldPath(f.id)} defaultSort={{ f: "id", o: "asc" }} />
    </Card>
  );
}

function useRecord<T>(resource: string, id: string, entityType: string) {
  const record = useAsync<T>(() => getOne<T>(resource, id), [resource, id]);
  useLive({ entityTypes: [entityType], quickIds: [`${entityType}:${id}`] }, (event) => {
    if (event.type === "updated" && event.entity) record.setData(event.entity as T);
    if (event.type === "deleted") record.reload();
  });
  return record;
}

function ActionButtons({ actions, run }: { actions: Array<[string, string, boolean?]>; run: (a: string) => Promise<unknown> }) {
  const [message, setMessage] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  if (!allows(useRole(), "user")) return null; // actions and deletions are the user role's work
  return (
    <div className="actions">
      {actions.map(([action, label, confirmFirst]) => (
        <button key={action} type="button" onClick={async () => {
          if (confirmFirst && !window.confirm(`${label}?`)) return;
          setError(null);
          try {
            await run(action);
            setMessage(`${label}: sent`);
          } catch (err) {
            setError(errorText(err));
          }
        }}>
          {label}
        </button>
      ))}
      {message && <span className="muted">{message}</span>}
      <ErrorBox error={error} />
    </div>
  );
}

export function GatewayPage() {
  const { id = "" } = useParams();
  const navigate = useNavigate();
  const gateway = useRecord<GatewayRecord>("gateway", id, "gateway");
  const g = gateway.data;
  const baseFilter = useMemo(() => [{ k: "gatewayId", o: "eq" as const, v: id }], [id]);
  return (
    <>
      <Card title={`Gateway ${id}`} actions={<Link to="/gateways">all gateways</Link>}>
        <ErrorBox error={gateway.error} />
        {g && (
          <dl className="facts">
            <dt>Description</dt><dd>{g.description || "—"}</dd>
            <dt>Provider</dt><dd>{String(g.provider?.type ?? "")}</dd>
            <dt>State</dt><dd><StatusBadge status={g.state?.status} /> {g.state?.message}</dd>
            <dt>Labels</dt><dd><Labels labels={g.labels} /></dd>
          </dl>
        )}
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
        <ResourceTable<NodeRecord> resource="node" entityType="node" columns={nodeColumns} embedded
          baseFilter={baseFilter} link={(n) => nodePath(n.id)} defaultSort={{ f: "id", o: "asc" }} />
      </Card>
    </>
  );
}

export function NodePage() {
  const { id = "" } = useParams();
  const node = useRecord<NodeRecord>("node", id, "node");
  const n = node.data;
  const [gatewayId, nodeId] = [id.split(".")[0], id.split(".").slice(1).join(".")];
  const fieldList = useAsync(
    () => api<{ data: FieldRecord[] }>(`/api/field?limit=0&filter=${enc(JSON.stringify([
      { k: "gatewayId", o: "eq", v: gatewayId }, { k: "nodeId", o: "eq", v: nodeId }]))}&sortBy=${enc(
      JSON.stringify([{ f: "id", o: "asc" }]))}`),
    [id],
  );
  const ids = useMemo(() => (fieldList.data?.data ?? []).map((f) => f.id), [fieldList.data]);
  const { fields } = useFields(ids);
  const numeric = ids.filter((fid) => ["gauge", "gauge_float", "counter", "binary"].includes(fields[fid]?.metricType));
  const [chartField, setChartField] = useState<string>("");
  const chosen = chartField || numeric[0] || "";
  return (
    <>
      <Card title={n ? `${n.name || n.nodeId} (${n.id})` : `Node ${id}`}
        actions={<Link to={`/gateways/${enc(gatewayId)}`}>gateway {gatewayId}</Link>}>
        <ErrorBox error={node.error} />
        {n && (
          <dl className="facts">
            <dt>State</dt><dd><StatusBadge status={n.state?.status} /> since {formatTime(n.state?.since)}</dd>
            <dt>Last seen</dt><dd>{formatTime(n.lastSeen)}</dd>
            <dt>Battery</dt><dd>{formatValue(n.others?.battery_level, "%")}</dd>
            <dt>Labels</dt><dd><Labels labels={n.labels} /></dd>
          </dl>
        )}
        <ActionButtons
          actions={[["heartbeat_request", "Heartbeat"], ["refresh_node_info", "Refresh info"], ["reboot", "Reboot", true],
            ["reset", "Reset", true]]}
          run={(action) => nodeAction(action, [id])} />
      </Card>
      <Card title="Fields">
        <ErrorBox error={fieldList.error} />
        <div className="table-scroll">
          <table className="table">
            <thead><tr><th>Field</th><th>Type</th><th>Value</th><th>Updated</th></tr></thead>
            <tbody>
              {ids.map((fid) => {
                const f = fields[fid];
                if (!f) return null;
                return (
                  <tr key={fid} data-id={fid}>
                    <td data-label="Field"><Link to={fieldPath(fid)}>{f.sourceId}.{f.fieldId}</Link></td>
                    <td data-label="Type">{f.metricType}</td>
                    <td data-label="Value"><FieldControl field={f} /></td>
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
          <select aria-label="chart field" value={chosen} onChange={(e) => setChartField(e.target.value)}>
            {numeric.map((fid) => <option key={fid} value={fid}>{fid}</option>)}
          </select>}>
          <FieldChart fieldId={chosen} unit={fields[chosen]?.unit} />
        </Card>
      )}
    </>
  );
}

/** A field's chart, or the notice that the server keeps no metrics (then nothing is queried). */
export function FieldChart({ fieldId, unit }: { fieldId: string; unit?: string }) {
  const enabled = useMetricsEnabled();
  if (enabled === false) return <MetricsOff />;
  return enabled ? <FieldHistory fieldId={fieldId} unit={unit} /> : null;
}

function FieldHistory({ fieldId, unit }: { fieldId: string; unit?: string }) {
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
      <Chart series={[{ name: fieldId, points: series[fieldId] ?? [] }]} unit={unit} />
    </div>
  );
}

export function FieldPage() {
  const { id = "" } = useParams();
  const ids = useMemo(() => [id], [id]);
  const { fields, error } = useFields(ids);
  const f = fields[id];
  const nodeId = id.split(".").slice(0, 2).join(".");
  return (
    <>
      <Card title={f ? `${f.name} — ${f.id}` : `Field ${id}`} actions={<Link to={nodePath(nodeId)}>node {nodeId}</Link>}>
        <ErrorBox error={error} />
        {f && (
          <dl className="facts">
            <dt>Value</dt><dd data-testid="field-value"><FieldControl field={f} /></dd>
            <dt>Previous</dt><dd>{formatValue(f.previous?.value, f.unit)}</dd>
            <dt>Type</dt><dd>{f.metricType} {f.unit}</dd>
            <dt>Updated</dt><dd>{formatTime(f.current?.timestamp)}</dd>
            <dt>No change since</dt><dd>{formatTime(f.noChangeSince)}</dd>
            <dt>Labels</dt><dd><Labels labels={f.labels} /></dd>
          </dl>
        )}
      </Card>
      <Card title="Metrics">
        <FieldChart fieldId={id} unit={f?.unit} />
      </Card>
    </>
  );
}
