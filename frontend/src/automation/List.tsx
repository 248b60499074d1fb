// The lists of tasks, schedules, handlers and forward payloads: what each is, whether it is on, and how its last run
// went (a handler that made no call says why), kept current by events; enable, disable and delete in place.

import { useState } from "react";
import { Link, useParams } from "react-router-dom";

import { remove, setEnabled } from "../api/client";
import { errorText } from "../api/errors";
import { fieldParts, useFieldLabels } from "../api/names";
import { useInvalidate } from "../api/queries";
import { Can } from "../components/Can";
import { Card, ErrorBox, formatTime } from "../components/common";
import { type Column, ResourceTable } from "../components/ResourceTable";
import { type AutomationKind, handlerOutcome, type HandlerInfo, KINDS, type Rec, taskOutcome } from "./model";

const obj = (value: unknown) => (value && typeof value === "object" ? value as Record<string, unknown> : {});

function Outcome({ status, text }: { status: string; text: string }) {
  return <span className={`outcome outcome-${status}`} data-status={status}>{text}</span>;
}

function FieldName({ id }: { id: string }) {
  const parts = fieldParts(id);
  const rows = parts ? [parts] : [];
  const labels = useFieldLabels(rows);
  return <>{parts ? labels[parts.id] ?? id : id}</>;
}

function columnsOf(kind: AutomationKind): Column<Rec>[] {
  const columns: Column<Rec>[] = [
    { key: "id", label: "Id", render: (r) => r.id },
    { key: "description", label: "Description", render: (r) => String(r.description ?? "") },
    { key: "enabled", label: "Enabled", render: (r) => (r.enabled ? "yes" : "no") },
  ];
  switch (kind) {
    case "task":
      return [...columns,
        { key: "state.lastEvaluation", label: "Last run", render: (r) => formatTime(obj(r.state).lastEvaluation) },
        { key: "state.message", label: "Result", render: (r) => <Outcome {...taskOutcome(obj(r.state))} /> }];
    case "handler":
      return [...columns, { key: "type", label: "Type", render: (r) => String(r.type ?? "") },
        { key: "state.since", label: "Last run", render: (r) => formatTime(obj(r.state).since) },
        { key: "state.message", label: "Result", render: (r) => <Outcome {...handlerOutcome(r as unknown as HandlerInfo)} /> }];
    case "schedule":
      return [...columns, { key: "type", label: "Type", render: (r) => String(r.type ?? "") },
        { key: "state.lastRun", label: "Last run", render: (r) => formatTime(obj(r.state).lastRun) },
        { key: "state.message", label: "Result", render: (r) => {
          const state = obj(r.state);
          return state.lastRun ? <Outcome status={state.message && !state.lastStatus ? "error" : "ok"}
            text={String(state.message || "ran")} /> : <Outcome status="never" text="not run yet" />;
        } }];
    case "forwardpayload":
      return [...columns,
        { key: "srcFieldId", label: "From", render: (r) => <FieldName id={String(r.srcFieldId ?? "")} /> },
        { key: "dstFieldId", label: "To", render: (r) => <FieldName id={String(r.dstFieldId ?? "")} /> }];
  }
}

export function AutomationListPage() {
  const { kind = "task" } = useParams();
  const info = KINDS[kind as AutomationKind];
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const invalidate = useInvalidate();
  if (!info) return <Card title="Not found" page>There is no kind of automation called {kind}.</Card>;
  const act = async (id: string, fn: () => Promise<unknown>) => {
    if (busy) return;
    setError(null);
    setBusy(id);
    try {
      await fn();
      await invalidate(kind);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(null);
    }
  };
  return (
    <Card title={info.title} page
      actions={<Can need="user"><Link className="button primary" to={`/automation/${kind}/new`}>New {info.singular}</Link></Can>}>
      <ErrorBox error={error} />
      <ResourceTable<Rec> key={kind} resource={kind} entityType={info.entityType} columns={columnsOf(kind as AutomationKind)}
        caption={info.title} nameKey="id" searchHint="id, or key=value" link={(r) => `/automation/${kind}/${encodeURIComponent(r.id)}`} defaultSort={{ f: "id", o: "asc" }}
        actions={(r) => (
          <Can need="user">
            <button type="button" disabled={busy === r.id} onClick={() => act(r.id, () => setEnabled(kind, [r.id], !r.enabled))}>
              {r.enabled ? "Disable" : "Enable"}
            </button>
            <button type="button" disabled={busy === r.id}
              onClick={() => window.confirm(`Delete ${r.id}?`) && act(r.id, () => remove(kind, [r.id]))}>
              Delete
            </button>
          </Can>
        )} />
    </Card>
  );
}
