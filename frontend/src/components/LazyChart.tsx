// The chart, loaded with its library (uPlot) the first time a chart is on screen: list pages never load it.

import { type ComponentProps, lazy, Suspense } from "react";

const Chart = lazy(() => import("./Chart").then((module) => ({ default: module.Chart })));

export function LazyChart(props: ComponentProps<typeof Chart>) {
  return (
    <Suspense fallback={<div className="chart" style={{ height: props.height ?? 240 }} aria-busy="true" />}>
      <Chart {...props} />
    </Suspense>
  );
}
