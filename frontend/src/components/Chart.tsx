// A time-series line chart (uPlot: small and fast). Series share the time axis; live points are appended by the
// owner. `data-points` on the wrapper tells tests and curious users how many points are drawn.

import "uplot/dist/uPlot.min.css";

import { useEffect, useMemo, useRef } from "react";
import uPlot from "uplot";

import { timeRange } from "./chartRange";

export interface Series {
  name: string;
  points: Array<{ time: number; value: number | null }>;
}

const COLORS = ["#2b7bb9", "#e4572e", "#29a36a", "#9c6ade", "#f0a202", "#4d5360"];

/** Aligns several series on one sorted time axis (uPlot's data shape); times in seconds. */
export function alignSeries(series: Series[]): uPlot.AlignedData {
  const times = [...new Set(series.flatMap((s) => s.points.map((p) => p.time)))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const columns = series.map((s) => {
    const column: Array<number | null> = new Array(times.length).fill(null);
    for (const p of s.points) column[index.get(p.time)!] = p.value;
    return column;
  });
  return [times.map((t) => t / 1000), ...columns] as uPlot.AlignedData;
}

/** uPlot stretches a time axis with one instant over 1000 days: such data gets the chart's span instead. */
function fitSingleTime(plot: uPlot, span: number): void {
  const times = plot.data[0];
  if (times.length === 0 || times[0] !== times[times.length - 1]) return;
  const [min, max] = timeRange(times[0], times[0], span);
  plot.setScale("x", { min, max });
}

export function Chart({ series, height = 240, unit, span = 3600 }: {
  series: Series[]; height?: number; unit?: string;
  /** Seconds the chart covers (its range, e.g. 3600 for the last hour): the axis when the data has one time. */
  span?: number;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const names = series.map((s) => s.name).join("|");
  const data = useMemo(() => alignSeries(series), [series]);
  const points = series.reduce((n, s) => n + s.points.filter((p) => p.value !== null).length, 0);

  useEffect(() => {
    const element = box.current;
    if (!element) return undefined;
    const options: uPlot.Options = {
      width: Math.max(200, element.clientWidth),
      height,
      legend: { show: series.length > 1 },
      cursor: { drag: { x: true, y: false } },
      scales: { x: { time: true, range: (_u, min, max) => timeRange(min, max, span) } },
      axes: [
        { stroke: "#667", grid: { stroke: "#eef0f3" } },
        { stroke: "#667", grid: { stroke: "#eef0f3" }, size: 64,
          values: (_u, ticks) => ticks.map((t) => `${t}${unit ?? ""}`) },
      ],
      series: [
        {},
        ...series.map((s, i) => ({
          label: s.name,
          stroke: COLORS[i % COLORS.length],
          width: 2,
          spanGaps: true,
          // dots while the points are few enough to tell apart, a plain line after that
          points: { show: (u: uPlot) => u.data[0].length <= 150, size: 4 },
        })),
      ],
    };
    const instance = new uPlot(options, data, element);
    fitSingleTime(instance, span);
    plot.current = instance;
    // The legend (several series) sits under the plot: the plot gets the height the legend leaves, so that the
    // whole chart fits its box (a widget cut the legend off before).
    const fit = () => {
      const legend = instance.root.querySelector<HTMLElement>(".u-legend");
      const legendHeight = legend ? legend.offsetHeight + 4 : 0;
      instance.setSize({ width: Math.max(200, element.clientWidth), height: Math.max(60, height - legendHeight) });
    };
    fit();
    const observer = new ResizeObserver(fit);
    observer.observe(element);
    return () => {
      observer.disconnect();
      instance.destroy();
      plot.current = null;
    };
    // The plot is rebuilt only when the series set changes; data updates go through setData below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [names, height, unit, span]);

  useEffect(() => {
    if (!plot.current) return;
    plot.current.setData(data);
    fitSingleTime(plot.current, span);
  }, [data, span]);

  return (
    <div className="chart" ref={box} data-points={points}>
      {points === 0 && <div className="chart-empty">no data in this range yet</div>}
    </div>
  );
}
