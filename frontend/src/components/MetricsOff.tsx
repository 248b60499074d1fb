// Whether the server keeps metric history, and what a chart shows in its place when it does not: a server started
// with METRICS=none (a cloud stack without a metric store) answers every metric query with no rows, so an empty
// chart would look like a silent device. `/api/status` says so (`metricsDBDisabled`); the charts say it too.

import { useQuery } from "@tanstack/react-query";

import { metricsEnabled } from "../api/client";
import { keys } from "../api/queries";

/** True or false once the server's status is known, null before (read once, shared by every chart). */
export function useMetricsEnabled(): boolean | null {
  const query = useQuery({ queryKey: keys.metricsEnabled(), queryFn: metricsEnabled, staleTime: Infinity });
  return query.data ?? null;
}

export const METRICS_OFF_TEXT = "Metrics are off on this server: it keeps no history to chart, only current values.";

export function MetricsOff({ height }: { height?: number }) {
  return (
    <div className="metrics-off" role="note" data-testid="metrics-off" style={height ? { minHeight: height } : undefined}>
      {METRICS_OFF_TEXT}
    </div>
  );
}
