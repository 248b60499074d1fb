// System settings (`GET`/`POST /api/settings/system`): where the installation is (sun schedules and the zone of
// schedules without their own), the login page's message, the language and the timing of the system jobs.
// The server validates the whole object and names the bad field, which is marked where it is typed.

import { useQuery, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";

import { formToSettings, type SettingsForm, settingsToForm, type SystemSettings } from "../api/admin";
import { api } from "../api/client";
import { errorText } from "../api/errors";
import { Card, ErrorBox, formatTime } from "../components/common";
import { FieldProblem, FormCheck, FormInput, invalidProps, type Problem, ProblemBox, problemOf } from "../components/Form";

const PATH = "/api/settings/system";
/** The inputs, by the key paths the server names in its errors. */
const NAMES = ["geoLocation.locationName", "geoLocation.latitude", "geoLocation.longitude", "geoLocation.timezone",
  "geoLocation.elevation", "login.message", "language", "nodeStateJob.executionInterval",
  "nodeStateJob.inactiveDuration", "nodeDiscoverJob.enabled", "nodeDiscoverJob.executionInterval"];

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

function SettingsEditor({ initial }: { initial: SystemSettings }) {
  const client = useQueryClient();
  const [stored, setStored] = useState<SystemSettings>(initial);
  const [form, setForm] = useState<SettingsForm>(() => settingsToForm(initial));
  const [problem, setProblem] = useState<Problem | null>(null);
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);
  const f = form;
  const set = (changes: Partial<SettingsForm>) => {
    setSaved(false);
    setForm({ ...f, ...changes });
  };
  const input = (label: string, name: string, key: keyof SettingsForm, extra: Record<string, unknown> = {}) => (
    <FormInput label={label} name={name} value={String(f[key])} onChange={(v) => set({ [key]: v })} problem={problem}
      {...extra} />
  );

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (busy) return;
    setProblem(null);
    setSaved(false);
    setBusy(true);
    try {
      const answer = await api<SystemSettings>(PATH, { method: "POST", body: formToSettings(f, stored ?? undefined) });
      setStored(answer);
      client.setQueryData(KEY, answer);
      setForm(settingsToForm(answer));
      setSaved(true);
    } catch (err) {
      setProblem(problemOf(err, NAMES));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Card title="Settings" page actions={stored?.modifiedOn ? <span className="muted">changed {formatTime(stored.modifiedOn)}</span>
      : undefined}>
      <form className="editor" onSubmit={submit} noValidate>
        <fieldset className="section">
          <legend>Location</legend>
          <p className="muted">Sunrise and sunset schedules follow it; schedules without a time zone run in this one.</p>
          <div className="row">
            {input("Location name", "geoLocation.locationName", "locationName", { placeholder: "Home" })}
            {input("Latitude", "geoLocation.latitude", "latitude", { inputMode: "decimal", placeholder: "-90 … 90" })}
            {input("Longitude", "geoLocation.longitude", "longitude",
              { inputMode: "decimal", placeholder: "-180 … 180" })}
          </div>
          <div className="row">
            {input("Time zone", "geoLocation.timezone", "timezone", { placeholder: "Europe/Berlin" })}
            {input("Elevation (m)", "geoLocation.elevation", "elevation", { inputMode: "decimal" })}
          </div>
        </fieldset>
        <fieldset className="section">
          <legend>Login and language</legend>
          <label>
            Login message <small className="muted">shown on the login page</small>
            <textarea aria-label="Login message" name="login.message" rows={2} value={f.loginMessage}
              {...invalidProps(problem, "login.message")}
              onChange={(e) => set({ loginMessage: e.target.value })} />
            <FieldProblem problem={problem} name="login.message" />
          </label>
          <div className="row">
            {input("Language", "language", "language", { placeholder: "en-us" })}
          </div>
        </fieldset>
        <fieldset className="section">
          <legend>Node state job</legend>
          <p className="muted">Marks nodes down that have not been heard from for the inactive duration (a node's
            <code> inactive_duration</code> label overrides it). Durations as 30s, 5m, 1h.</p>
          <div className="row">
            {input("State check every", "nodeStateJob.executionInterval", "stateInterval", { placeholder: "5m" })}
            {input("Inactive after", "nodeStateJob.inactiveDuration", "inactiveDuration", { placeholder: "15m" })}
          </div>
        </fieldset>
        <fieldset className="section">
          <legend>Node discovery job</legend>
          <div className="row">
            <FormCheck label="Discover nodes periodically" name="nodeDiscoverJob.enabled" checked={f.discoverEnabled}
              onChange={(v) => set({ discoverEnabled: v })} />
            {input("Discover every", "nodeDiscoverJob.executionInterval", "discoverInterval",
              { placeholder: "1h", disabled: !f.discoverEnabled })}
          </div>
        </fieldset>
        <ProblemBox problem={problem} />
        {saved && <div className="ok" role="status">Saved.</div>}
        <div className="actions">
          <button type="submit" className="primary" disabled={busy}>Save</button>
          <button type="button" disabled={busy} onClick={() => {
            if (stored) setForm(settingsToForm(stored));
            setProblem(null);
            setSaved(false);
          }}>
            Undo changes
          </button>
        </div>
      </form>
    </Card>
  );
}
