// Sensible widget defaults from what the field is: a gauge's range from its unit (a temperature is not 0–100) and
// from the values it has had, rounded to numbers people read. Pure.

/** Typical ranges per unit (the history widens them when it goes past). */
const UNIT_RANGES: Record<string, [number, number]> = {
  "°C": [-10, 40], C: [-10, 40], "°F": [10, 110], F: [10, 110], K: [250, 320], "%": [0, 100], hPa: [950, 1050],
  mbar: [950, 1050], Pa: [95_000, 105_000], lux: [0, 1000], lx: [0, 1000], ppm: [0, 2000], dB: [30, 100],
  "°": [0, 360], mired: [153, 500],
};

/** Units of quantities that start at zero (power, energy, distance…): 0 to a bit above the largest value seen. */
const FROM_ZERO = new Set(["W", "kW", "Wh", "kWh", "A", "mA", "V", "mV", "m", "cm", "mm", "km/h", "m/s", "l", "L",
  "m³", "kg", "g", "mm/h"]);

/** A number rounded outward to 1, 2 or 5 times a power of ten (`up`: the next one above, else below). */
export function niceBound(value: number, up: boolean): number {
  if (value === 0) return 0;
  const magnitude = 10 ** Math.floor(Math.log10(Math.abs(value)));
  const steps = [1, 2, 2.5, 5, 10].map((s) => s * magnitude);
  const abs = Math.abs(value);
  const outward = (up && value > 0) || (!up && value < 0);
  const pick = outward ? steps.find((s) => s >= abs) ?? 10 * magnitude : [...steps].reverse().find((s) => s <= abs) ?? magnitude;
  return Math.sign(value) * pick;
}

/** The range of a gauge for a field with this unit and these past values (any may be missing). */
export function gaugeRange(unit: string | undefined, values: Array<number | null | undefined> = []): { min: number; max: number } {
  const seen = values.filter((v): v is number => typeof v === "number" && Number.isFinite(v));
  const low = seen.length ? Math.min(...seen) : undefined;
  const high = seen.length ? Math.max(...seen) : undefined;
  const key = (unit ?? "").trim();
  const typical = UNIT_RANGES[key];
  if (typical) {
    const min = low !== undefined && low < typical[0] ? niceBound(low, false) : typical[0];
    const max = high !== undefined && high > typical[1] ? niceBound(high, true) : typical[1];
    return { min, max };
  }
  if (FROM_ZERO.has(key) || (low !== undefined && low >= 0 && !typical)) {
    if (high === undefined || high <= 0) return { min: 0, max: 100 };
    return { min: 0, max: niceBound(high * 1.25, true) };
  }
  if (low !== undefined && high !== undefined) {
    const span = Math.max(1, high - low);
    return { min: niceBound(low - span * 0.25, false), max: niceBound(high + span * 0.25, true) };
  }
  return { min: 0, max: 100 };
}

/** The range of a gauge saved without one (through the API, from MyController v2): from its field's unit and value
 * when the unit says what is typical; null for a unit it does not know (then 0–100, as saved dashboards had). */
export function savedGaugeRange(unit: string | undefined, value: number | null): { min: number; max: number } | null {
  const key = (unit ?? "").trim();
  if (!(key in UNIT_RANGES) && !FROM_ZERO.has(key)) return null;
  return gaugeRange(key, [value]);
}
