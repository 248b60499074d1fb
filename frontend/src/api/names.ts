// The names people gave: a field is shown as "Living room · Ceiling light · status" (its node's name, its source's
// name, a word for the field), not as sim.1.3.V_STATUS. Nodes and sources are read in batches: every name a page
// asks for within one tick is one request (`id in [...]`), kept in the query cache for a while.

import { useQueries, useQueryClient } from "@tanstack/react-query";
import { useMemo } from "react";

import { api } from "./client";
import type { Page } from "./query";

export interface Named {
  id: string;
  name?: string;
  labels?: Record<string, string>;
}

/** Words for MySensors variables and common field ids (a field renamed by its user keeps its own name). */
const WORDS: Record<string, string> = {
  V_TEMP: "temperature", V_HUM: "humidity", V_STATUS: "status", V_LIGHT: "status", V_PERCENTAGE: "level",
  V_DIMMER: "level", V_PRESSURE: "pressure", V_FORECAST: "forecast", V_RAIN: "rain", V_RAINRATE: "rain rate",
  V_WIND: "wind", V_GUST: "gust", V_DIRECTION: "direction", V_UV: "UV", V_WEIGHT: "weight", V_DISTANCE: "distance",
  V_TRIPPED: "tripped", V_ARMED: "armed", V_LOCK_STATUS: "lock", V_WATT: "power", V_KWH: "energy",
  V_VOLTAGE: "voltage", V_CURRENT: "current", V_LIGHT_LEVEL: "light level", V_RGB: "colour", V_RGBW: "colour",
  V_TEXT: "text", V_LEVEL: "level", V_FLOW: "flow", V_VOLUME: "volume", V_HVAC_SETPOINT_HEAT: "heating set point",
  V_HVAC_SETPOINT_COOL: "cooling set point", V_HVAC_FLOW_STATE: "mode", V_UP: "up", V_DOWN: "down", V_STOP: "stop",
  POWER: "power", Dimmer: "level", CT: "colour temperature", Color: "colour",
};

/** A word for a field: its own name when someone gave one, else a word for its id (V_TEMP → temperature). */
export function fieldWord(field: { fieldId: string; name?: string }): string {
  const own = (field.name ?? "").trim();
  if (own && own !== field.fieldId) return own;
  return WORDS[field.fieldId] ?? field.fieldId.replace(/^V_/, "").replace(/_/g, " ").toLowerCase();
}

/** A node's or source's name, or its id when it has none (a name equal to the id counts as none). */
export function ownName(record: Named | undefined, fallback: string): string {
  const name = (record?.name ?? "").trim();
  return name || fallback;
}

export interface FieldLike {
  id: string;
  gatewayId: string;
  nodeId: string;
  sourceId: string;
  fieldId: string;
  name?: string;
}

/** "Living room · Ceiling light · status": node, source and field; the field word left out when the source's name
 * says it already ("Temperature · temperature"). `withNode: false` for pages about one node. */
export function fieldLabel(field: FieldLike, node?: Named, source?: Named, withNode = true): string {
  const nodeName = ownName(node, field.nodeId);
  const sourceName = ownName(source, field.sourceId);
  const word = fieldWord(field);
  const parts = withNode ? [nodeName, sourceName] : [sourceName];
  if (word.toLowerCase() !== sourceName.toLowerCase()) parts.push(word);
  return parts.join(" · ");
}

export const nodeIdOf = (field: { gatewayId: string; nodeId: string }) => `${field.gatewayId}.${field.nodeId}`;
export const sourceIdOf = (field: { gatewayId: string; nodeId: string; sourceId: string }) =>
  `${field.gatewayId}.${field.nodeId}.${field.sourceId}`;

/** A field id (gw.node.source.field) in its parts, or null when it is not one. */
export function fieldParts(id: string): FieldLike | null {
  const parts = id.replace(/^field:/, "").trim().split(".");
  if (parts.length !== 4 || parts.some((p) => !p)) return null;
  const [gatewayId, nodeId, sourceId, fieldId] = parts;
  return { id: parts.join("."), gatewayId, nodeId, sourceId, fieldId };
}

// --------------------------------------------------------------------------------------------- batched reads

type Kind = "node" | "source" | "field";
const waiting = new Map<Kind, Map<string, Array<(record: Named | null) => void>>>();
let scheduled = false;

/** One record by id, read together with every other asked for in the same tick (one request per kind). */
export function loadBatched(kind: Kind, id: string): Promise<Named | null> {
  return new Promise((resolve) => {
    const forKind = waiting.get(kind) ?? new Map<string, Array<(record: Named | null) => void>>();
    waiting.set(kind, forKind);
    forKind.set(id, [...(forKind.get(id) ?? []), resolve]);
    if (!scheduled) {
      scheduled = true;
      setTimeout(flush, 0);
    }
  });
}

function flush(): void {
  scheduled = false;
  const batches = [...waiting.entries()];
  waiting.clear();
  for (const [kind, byId] of batches) {
    const ids = [...byId.keys()];
    for (let start = 0; start < ids.length; start += 200) {
      const chunk = ids.slice(start, start + 200);
      const filter = JSON.stringify([{ k: "id", o: "in", v: chunk }]);
      api<Page<Named>>(`/api/${kind}?limit=0&filter=${encodeURIComponent(filter)}`).then(
        (page) => {
          const found = new Map(page.data.map((record) => [record.id, record]));
          for (const id of chunk) byId.get(id)?.forEach((resolve) => resolve(found.get(id) ?? null));
        },
        () => chunk.forEach((id) => byId.get(id)?.forEach((resolve) => resolve(null))),
      );
    }
  }
}

export const NAME_STALE_MS = 60_000;

/** Records of a kind by id (batched, cached a minute); a map id → record, without the ones not (yet) read. */
export function useRecords(kind: Kind, ids: string[]): Record<string, Named> {
  const wanted = useMemo(() => [...new Set(ids.filter(Boolean))].sort(), [ids]);
  const results = useQueries({
    queries: wanted.map((id) => ({
      queryKey: ["named", kind, id],
      queryFn: () => loadBatched(kind, id),
      staleTime: NAME_STALE_MS,
    })),
  });
  const stamp = results.map((r) => r.dataUpdatedAt).join(",");
  return useMemo(() => {
    const out: Record<string, Named> = {};
    results.forEach((result, i) => {
      if (result.data) out[wanted[i]] = result.data;
    });
    return out;
  }, [stamp, wanted]); // eslint-disable-line react-hooks/exhaustive-deps
}

/** The labels of fields ("Living room · Ceiling light · status") by field id. */
export function useFieldLabels(fields: FieldLike[], withNode = true): Record<string, string> {
  const nodes = useRecords("node", useMemo(() => fields.map(nodeIdOf), [fields]));
  const sources = useRecords("source", useMemo(() => fields.map(sourceIdOf), [fields]));
  return useMemo(() => Object.fromEntries(fields.map((f) => [f.id,
    fieldLabel(f, nodes[nodeIdOf(f)], sources[sourceIdOf(f)], withNode)])), [fields, nodes, sources, withNode]);
}

/** Forget cached names (after a rename), so that every page shows the new one. */
export function useForgetNames() {
  const client = useQueryClient();
  return (kind: Kind, id: string) => client.invalidateQueries({ queryKey: ["named", kind, id] });
}
