import { describe, expect, it } from "vitest";

import { FormError } from "./admin";
import { ApiError } from "./client";
import { errorText, inputFor, plainMessage, problemOf } from "./errors";

describe("plain messages", () => {
  it("drops the key path the server puts before its message", () => {
    expect(plainMessage("geoLocation: longitude is required when the other coordinate is given"))
      .toBe("longitude is required when the other coordinate is given");
    expect(plainMessage("[0].payload.str: Input should be a valid string")).toBe("the value must be a valid string");
    expect(plainMessage("spec.url: Field required")).toBe("url is required");
    expect(plainMessage("currentPassword does not match")).toBe("current password does not match");
  });

  it("keeps sentences and plain words as they are", () => {
    expect(plainMessage("invalid username or password")).toBe("invalid username or password");
    expect(plainMessage("password: at least 10 characters")).toBe("password: at least 10 characters");
    expect(plainMessage("node sim.1 is down: no heartbeat")).toBe("node sim.1 is down: no heartbeat");
  });

  it("never names the field in brackets", () => {
    expect(errorText(new ApiError(401, "invalid username or password", "authorization")))
      .toBe("invalid username or password");
    expect(errorText(new ApiError(400, "[0].payload.str: Input should be a valid string", "[0].payload.str")))
      .not.toMatch(/\[0\]|\(/);
  });
});

describe("the one input that shows a problem", () => {
  const names = ["geoLocation.locationName", "geoLocation.latitude", "geoLocation.longitude", "geoLocation.timezone",
    "geoLocation.elevation", "language"];

  it("is the input itself, or the child of a parent the message names, else the first child", () => {
    expect(inputFor("language", "bad", names)).toBe("language");
    expect(inputFor("geoLocation", "longitude is required when the other coordinate is given", names))
      .toBe("geoLocation.longitude");
    expect(inputFor("geoLocation", "something about the place", names)).toBe("geoLocation.locationName");
    expect(inputFor("authorization", "no", names)).toBeNull();
  });

  it("comes with the plain message, once", () => {
    const problem = problemOf(new ApiError(400, "geoLocation: longitude is required when the other coordinate is given",
      "geoLocation"), names);
    expect(problem).toEqual({ message: "longitude is required when the other coordinate is given", field: "geoLocation",
      at: "geoLocation.longitude" });
    expect(problemOf(new FormError("password: at least 10 characters", "password"), ["password"]).at).toBe("password");
    expect(problemOf(new Error("network down"))).toEqual({ message: "network down", field: null, at: null });
  });
});
