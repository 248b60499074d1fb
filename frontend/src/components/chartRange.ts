// The time axis of a chart, apart from uPlot (which needs a browser to load): pure.

/** The shortest stretch of time an axis shows (seconds): a few seconds of data (a new site) would get ticks every
 * half second (":31.500"); five minutes get them by the minute. */
const MIN_AXIS_S = 300;

/** The time axis: the data's own span, at least MIN_AXIS_S (or the whole `span` when shorter) ending at its last
 * time; with a single time (one aggregated point, one reading) the `span` (seconds) the chart is about, ending at
 * that time (uPlot would otherwise stretch one instant over years). */
export function timeRange(min: number | null, max: number | null, span: number): [number, number] {
  if (min === null || max === null || !Number.isFinite(min) || !Number.isFinite(max)) {
    const now = Date.now() / 1000;
    return [now - span, now];
  }
  if (min === max) return [max - span, max + span / 50];
  const shortest = Math.min(span, MIN_AXIS_S);
  return max - min < shortest ? [max - shortest, max] : [min, max];
}
