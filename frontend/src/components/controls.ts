// Which control fits a field, and whether a value typed for it can be sent. Pure (the tests check the rules):
// a sensor is read, not set; a switch is a switch; a dimmer is a slider with its range; a number outside the range
// is refused with the range, never clamped silently. The field's labels decide first (readonly=true, settable,
// min, max, step), then what the device kind tells (MySensors V_* types, Tasmota's Control source), then the metric.

export type Control =
  | { kind: "readonly" }
  | { kind: "switch" }
  | { kind: "slider"; min: number; max: number; step: number }
  | { kind: "number"; min?: number; max?: number; step?: number }
  | { kind: "text" };

export interface ControlledField {
  fieldId: string;
  sourceId?: string;
  metricType: string;
  unit?: string;
  labels?: Record<string, string>;
}

/** MySensors variables that devices report and nothing sets (sensors). */
const SENSOR_VARIABLES = new Set([
  "V_TEMP", "V_HUM", "V_PRESSURE", "V_FORECAST", "V_RAIN", "V_RAINRATE", "V_WIND", "V_GUST", "V_DIRECTION", "V_UV",
  "V_WEIGHT", "V_DISTANCE", "V_IMPEDANCE", "V_TRIPPED", "V_WATT", "V_KWH", "V_FLOW", "V_VOLUME", "V_LEVEL",
  "V_VOLTAGE", "V_CURRENT", "V_LIGHT_LEVEL", "V_PH", "V_ORP", "V_EC", "V_VAR", "V_VA", "V_POWER_FACTOR",
  "V_ID", "V_UNIT_PREFIX", "V_POSITION",
]);

/** Levels in percent that devices take: dimmers, blinds, Tasmota's Dimmer/Channel and colour parts. */
const PERCENT_LEVELS = /^(V_PERCENTAGE|V_DIMMER|Dimmer\d*|Channel\d+|HSBColor[23]|White)$/;

const SLIDERS: Record<string, { min: number; max: number; step: number }> = {
  CT: { min: 153, max: 500, step: 1 }, // Tasmota colour temperature, mired
  HSBColor1: { min: 0, max: 360, step: 1 }, // hue, degrees
};

const NUMERIC = new Set(["gauge", "gauge_float", "counter"]);

function labelNumber(labels: Record<string, string> | undefined, key: string): number | undefined {
  const raw = labels?.[key];
  if (raw === undefined || raw.trim() === "") return undefined;
  const value = Number(raw);
  return Number.isFinite(value) ? value : undefined;
}

const yes = (value: string | undefined) => value !== undefined && ["true", "yes", "1"].includes(value.toLowerCase());
const no = (value: string | undefined) => value !== undefined && ["false", "no", "0"].includes(value.toLowerCase());

/** The control that fits a field. */
export function controlFor(field: ControlledField): Control {
  const labels = field.labels ?? {};
  if (yes(labels.readonly ?? labels.readOnly) || no(labels.settable)) return { kind: "readonly" };
  const id = field.fieldId;
  const sensor = SENSOR_VARIABLES.has(id) && !yes(labels.settable);
  if (sensor) return { kind: "readonly" };
  if (field.metricType === "binary") return { kind: "switch" };
  const min = labelNumber(labels, "min");
  const max = labelNumber(labels, "max");
  const step = labelNumber(labels, "step");
  const preset = SLIDERS[id] ?? (PERCENT_LEVELS.test(id) ? { min: 0, max: 100, step: 1 } : undefined);
  if (preset || (min !== undefined && max !== undefined && NUMERIC.has(field.metricType))) {
    return { kind: "slider", min: min ?? preset!.min, max: max ?? preset!.max, step: step ?? preset?.step ?? 1 };
  }
  if (NUMERIC.has(field.metricType)) return { kind: "number", min, max, step };
  return { kind: "text" };
}

/** Whether people may set the field at all (a sensor's value comes from the device). */
export function isSettable(field: ControlledField): boolean {
  return controlFor(field).kind !== "readonly";
}

export type Checked = { ok: true; value: string | number } | { ok: false; problem: string };

const rangeText = (min?: number, max?: number) =>
  min !== undefined && max !== undefined ? `${min}–${max}` : min !== undefined ? `at least ${min}` : `at most ${max}`;

/** A typed value checked against the control: numbers must be numbers, within the range. */
export function checkValue(control: Control, text: string): Checked {
  const raw = text.trim();
  if (raw === "") return { ok: false, problem: "type a value" };
  if (control.kind === "readonly") return { ok: false, problem: "this field is read from the device, not set" };
  if (control.kind === "text" || control.kind === "switch") return { ok: true, value: raw };
  const value = Number(raw.replace(",", "."));
  if (!Number.isFinite(value)) return { ok: false, problem: `${raw} is not a number` };
  const { min, max } = control;
  if ((min !== undefined && value < min) || (max !== undefined && value > max)) {
    return { ok: false, problem: `${raw} is out of range: ${rangeText(min, max)}` };
  }
  return { ok: true, value };
}
