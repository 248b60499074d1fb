// System settings (`GET`/`POST /api/settings/system`): where the installation is (sun schedules and the zone of
// schedules without their own), the login page's message, the language and the timing of the system jobs.
// The server validates the whole object and names the bad field, which is marked where it is typed.

import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { useWatch } from "react-hook-form";
import { z } from "zod/mini";

import { formToSettings, type SettingsForm, settingsToForm, type SystemSettings } from "../api/admin";
import { api } from "../api/client";
import { errorText } from "../api/errors";
import { Card, ErrorBox, formatTime } from "../components/common";
import { useApiForm } from "../components/apiForm";
import { FieldProblem, FormCheck, FormInput, invalidProps, ProblemBox, SubmitButton } from "../components/Form";

const PATH = "/api/settings/system";
const KEY = ["one", "settings", "system"];

export function SettingsPage() {
  const loaded = useQuery({ queryKey: KEY, queryFn: ({ signal }) => api<SystemSettings>(PATH, { signal }) });
  if (!loaded.data) {
    return (
      <Card title="Settings" page>
        <ErrorBox error={loaded.error ? errorText(loaded.error) : null} />{loaded.isPending && "loading…"}
      </Card>
    );
  }
  // The form starts from what was read once; reads after that (another tab's save) do not overwrite the typing.
  return <SettingsEditor initial={loaded.data} />;
}

/** A number typed as text: empty where allowed, else finite (a decimal comma read as a point). */
const numberText = (optional: boolean) => z.string().check(z.superRefine((value, ctx) => {
  const text = value.trim();
  if (text === "") {
    if (!optional) ctx.addIssue({ code: "custom", message: "a number is required" });
  } else if (!Number.isFinite(Number(text.replace(",", ".")))) {
    ctx.addIssue({ code: "custom", message: `${JSON.stringify(text)} is not a number` });
  }
}));

const SettingsSchema = z.object({
  latitude: numberText(true),
  longitude: numberText(true),
  locationName: z.string(),
  timezone: z.string(),
  elevation: numberText(true),
  loginMessage: z.string(),
  language: z.string(),
  stateInterval: z.string(),
  inactiveDuration: z.string(),
  discoverEnabled: z.boolean(),
  discoverInterval: z.string(),
}) satisfies z.ZodMiniType<SettingsForm>;

/** The form's keys → the key paths the server names (in the order problems are looked for). */
const FORM_NAMES: Record<keyof SettingsForm, string> = {
  locationName: "geoLocation.locationName", latitude: "geoLocation.latitude", longitude: "geoLocation.longitude",
  timezone: "geoLocation.timezone", elevation: "geoLocation.elevation", loginMessage: "login.message",
  language: "language", stateInterval: "nodeStateJob.executionInterval",
  inactiveDuration: "nodeStateJob.inactiveDuration", discoverEnabled: "nodeDiscoverJob.enabled",
  discoverInterval: "nodeDiscoverJob.executionInterval",
};

function SettingsEditor({ initial }: { initial: SystemSettings }) {
  const client = useQueryClient();
  const [stored, setStored] = useState<SystemSettings>(initial);
  const { form, onSubmit, busy, saved, problem, clear } = useApiForm({
    schema: SettingsSchema,
    defaultValues: settingsToForm(initial),
    names: FORM_NAMES,
    submit: (values) => api<SystemSettings>(PATH, { method: "POST", body: formToSettings(values, stored) }),
    onDone: (answer, _values, f) => {
      setStored(answer);
      client.setQueryData(KEY, answer);
      f.reset(settingsToForm(answer));
    },
  });
  const discoverEnabled = useWatch({ control: form.control, name: "discoverEnabled" });
  const input = (label: string, key: keyof SettingsForm, extra: Record<string, unknown> = {}) => (
    <FormInput label={label} name={FORM_NAMES[key]} field={form.register(key)} problem={problem} {...extra} />
  );

  return (
    <Card title="Settings" page actions={stored?.modifiedOn ? <span className="muted">changed {formatTime(stored.modifiedOn)}</span>
      : undefined}>
      <form className="editor" onSubmit={onSubmit} noValidate>
        <fieldset className="section">
          <legend>Location</legend>
          <p className="muted">Sunrise and sunset schedules follow it; schedules without a time zone run in this one.</p>
          <div className="row">
            {input("Location name", "locationName", { placeholder: "Home" })}
            {input("Latitude", "latitude", { inputMode: "decimal", placeholder: "-90 … 90" })}
            {input("Longitude", "longitude",
              { inputMode: "decimal", placeholder: "-180 … 180" })}
          </div>
          <div className="row">
            {input("Time zone", "timezone", { placeholder: "Europe/Berlin" })}
            {input("Elevation (m)", "elevation", { inputMode: "decimal" })}
          </div>
        </fieldset>
        <fieldset className="section">
          <legend>Login and language</legend>
          <label>
            Login message <small className="muted">shown on the login page</small>
            <textarea aria-label="Login message" rows={2} {...form.register("loginMessage")}
              {...invalidProps(problem, "login.message")} />
            <FieldProblem problem={problem} name="login.message" />
          </label>
          <div className="row">
            {input("Language", "language", { placeholder: "en-us" })}
          </div>
        </fieldset>
        <fieldset className="section">
          <legend>Node state job</legend>
          <p className="muted">Marks nodes down that have not been heard from for the inactive duration (a node's
            <code> inactive_duration</code> label overrides it). Durations as 30s, 5m, 1h.</p>
          <div className="row">
            {input("State check every", "stateInterval", { placeholder: "5m" })}
            {input("Inactive after", "inactiveDuration", { placeholder: "15m" })}
          </div>
        </fieldset>
        <fieldset className="section">
          <legend>Node discovery job</legend>
          <div className="row">
            <FormCheck label="Discover nodes periodically" name="nodeDiscoverJob.enabled"
              field={form.register("discoverEnabled")} />
            {input("Discover every", "discoverInterval",
              { placeholder: "1h", disabled: !discoverEnabled })}
          </div>
        </fieldset>
        <ProblemBox problem={problem} />
        {saved && <div className="ok" role="status">Saved.</div>}
        <div className="actions">
          <SubmitButton busy={busy}>Save</SubmitButton>
          <button type="button" disabled={busy} onClick={() => {
            form.reset(settingsToForm(stored));
            clear();
          }}>
            Undo changes
          </button>
        </div>
      </form>
    </Card>
  );
}
