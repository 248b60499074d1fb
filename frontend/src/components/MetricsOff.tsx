// Whether the server keeps metric history, and what a chart shows in its place when it does not: a server started
// with METRICS=none (a cloud stack without a metric store) answers every metric query with no rows, so an empty
// chart would look like a silent device. `/api/status` says so (`metricsDBDisabled`); the charts say it too.

import { useEffect, useState } from "react";

import { metricsEnabled } from "../api/client";

/** True or false once the server's status is known, null before. */
export function useMetricsEnabled(): boolean | null {
  const [enabled, setEnabled] = useState<boolean | null>(null);
  useEffect(() => {
    let live = true;
    void metricsEnabled().then((value) => {
      if (live) setEnabled(value);
    });
    return () => {
      live = false;
    };
  }, []);
  return enabled;
}

export const METRICS_OFF_TEXT = "Metrics are off on this server: it keeps no history to chart, only current values.";

export function MetricsOff({ height }: { height?: number }) {
  return (
    <div className="metrics-off" role="note" data-testid="metrics-off" style={height ? { minHeight: height } : undefined}>
      {METRICS_OFF_TEXT}
    </div>
  );
}
