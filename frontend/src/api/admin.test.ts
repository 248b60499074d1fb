import { describe, expect, it } from "vitest";

import {
  dateToLocalInput,
  formToSettings,
  FormError,
  localInputToIso,
  namesField,
  newPasswordProblem,
  serviceTokenBody,
  settingsToForm,
  type SystemSettings,
  tokenExpiry,
  userBody,
} from "./admin";

const SETTINGS: SystemSettings = {
  geoLocation: { latitude: null, longitude: null, locationName: "", timezone: "UTC", elevation: 0, autoUpdate: true },
  login: { message: "hello" },
  language: "en-us",
  nodeStateJob: { executionInterval: "5m", inactiveDuration: "15m" },
  nodeDiscoverJob: { enabled: true, executionInterval: "1h" },
  modifiedOn: "2026-01-01T00:00:00Z",
};

describe("settings form", () => {
  it("round-trips the API's settings, keeping unset coordinates null and flags the form does not show", () => {
    const form = settingsToForm(SETTINGS);
    expect(form.latitude).toBe("");
    expect(form.loginMessage).toBe("hello");
    const body = formToSettings(form, SETTINGS);
    expect(body.geoLocation).toEqual({ latitude: null, longitude: null, locationName: "", timezone: "UTC",
      elevation: 0, autoUpdate: true });
    expect(body).not.toHaveProperty("modifiedOn");
    expect(body.nodeDiscoverJob).toEqual({ enabled: true, executionInterval: "1h" });
  });

  it("parses coordinates (a decimal comma too) and names the field of one that is not a number", () => {
    const form = { ...settingsToForm(SETTINGS), latitude: "38,72", longitude: " -9.14 ", locationName: " Lisbon " };
    const body = formToSettings(form);
    expect(body.geoLocation.latitude).toBe(38.72);
    expect(body.geoLocation.longitude).toBe(-9.14);
    expect(body.geoLocation.locationName).toBe("Lisbon");
    try {
      formToSettings({ ...form, longitude: "west" });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(FormError);
      expect((err as FormError).field).toBe("geoLocation.longitude");
    }
  });

  it("matches a server error's field to the input, or to every input of the object it names", () => {
    expect(namesField("geoLocation.latitude", "geoLocation.latitude")).toBe(true);
    expect(namesField("geoLocation.latitude", "geoLocation.longitude")).toBe(false);
    expect(namesField("geoLocation", "geoLocation.longitude")).toBe(true);
    expect(namesField("geo", "geoLocation.longitude")).toBe(false);
    expect(namesField(null, "language")).toBe(false);
  });
});

describe("service tokens", () => {
  const now = new Date("2026-06-01T12:00:00Z");

  it("sends neverExpire without a date, or the chosen local time as UTC", () => {
    expect(serviceTokenBody({ name: " ci ", description: "", userId: "", neverExpire: true, expiresOn: "" }, now))
      .toEqual({ name: "ci", description: "", neverExpire: true });
    const local = dateToLocalInput(new Date("2026-07-01T10:30:00Z"));
    const body = serviceTokenBody({ name: "ci", description: "d", userId: "bob", neverExpire: false, expiresOn: local },
      now);
    expect(body.expiresOn).toBe("2026-07-01T10:30:00.000Z");
    expect(body.userId).toBe("bob");
    expect(serviceTokenBody({ name: "r", description: "", userId: "", neverExpire: true, expiresOn: "", role: "viewer" },
      now)).toEqual({ name: "r", description: "", neverExpire: true, role: "viewer" });
  });

  it("refuses a missing name, a missing expiry and one in the past, naming the field", () => {
    const base = { name: "ci", description: "", userId: "", neverExpire: false, expiresOn: "" };
    expect(() => serviceTokenBody({ ...base, name: "  " }, now)).toThrow(/name/);
    expect(() => serviceTokenBody(base, now)).toThrow(FormError);
    const past = dateToLocalInput(new Date("2026-05-01T00:00:00Z"));
    try {
      serviceTokenBody({ ...base, expiresOn: past }, now);
      expect.unreachable();
    } catch (err) {
      expect((err as FormError).field).toBe("expiresOn");
    }
  });

  it("reads the validity of a listed token", () => {
    expect(tokenExpiry({ id: "a", userId: "u", name: "n", neverExpire: true }, now)).toBe("never");
    expect(tokenExpiry({ id: "a", userId: "u", name: "n", expiresOn: "2026-05-01T00:00:00Z" }, now)).toBe("expired");
    expect(tokenExpiry({ id: "a", userId: "u", name: "n", expiresOn: "2026-07-01T00:00:00Z" }, now)).not.toBe("expired");
    expect(localInputToIso("")).toBeNull();
    expect(localInputToIso("not a date")).toBeNull();
  });
});

describe("users", () => {
  it("sends a password only when a new one is typed, and the username as the id of a new user", () => {
    expect(userBody({ id: "", username: " ann " }, "", {})).toEqual(
      { id: "ann", username: "ann", email: "", fullName: "", labels: {} });
    expect(userBody({ id: "ann", username: "anna", email: "a@b.c" }, "new-password", { team: "ops" })).toEqual(
      { id: "ann", username: "anna", email: "a@b.c", fullName: "", labels: { team: "ops" }, password: "new-password" });
    expect(() => userBody({ id: "", username: "" }, "", {})).toThrow(/username/);
    expect(userBody({ id: "ann", username: "ann", role: "viewer" }, "", {}).role).toBe("viewer");
  });

  it("checks a new password's length and its confirmation", () => {
    expect(newPasswordProblem("short", "short")?.field).toBe("password");
    expect(newPasswordProblem("long-enough-1", "long-enough-2")?.field).toBe("confirmPassword");
    expect(newPasswordProblem("long-enough-1", "long-enough-1")).toBeNull();
    expect(newPasswordProblem("nine-char", "nine-char")?.field).toBe("password");
    expect(newPasswordProblem("My-Anna-Secret-1", "My-Anna-Secret-1", "anna")?.message).toMatch(/username/);
    expect(newPasswordProblem("Lilac-Horizon-3", "Lilac-Horizon-3", "al")).toBeNull();
  });
});
