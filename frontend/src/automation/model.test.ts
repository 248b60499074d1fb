import { describe, expect, it } from "vitest";

import { handlerOutcome, taskOutcome } from "./model";

describe("a handler's and a task's last run, in words", () => {
  it("a handler that made no call says why, in the server's words of now and of before", () => {
    for (const message of ["0 calls made", "0 call(s) made"]) {
      const outcome = handlerOutcome({ id: "hook", type: "webhook", state: { status: "ok", since: "x", message } });
      expect(outcome.status).toBe("warn");
      expect(outcome.text).toMatch(/^made no call: .* no webhook parameter/);
    }
    expect(handlerOutcome({ id: "hook", type: "webhook", state: { status: "ok", since: "x", message: "1 call made" } }))
      .toEqual({ status: "ok", text: "1 call made" });
    expect(handlerOutcome({ id: "hook", type: "webhook" })).toEqual({ status: "never", text: "not run yet" });
  });

  it("a task's failure reads as an error, its plain outcome as whether the conditions held", () => {
    expect(taskOutcome({ lastEvaluation: "x", message: "handler hook failed" }).status).toBe("error");
    expect(taskOutcome({ lastEvaluation: "x", lastStatus: false })).toEqual({ status: "ok",
      text: "conditions did not hold" });
    expect(taskOutcome(undefined).status).toBe("never");
  });
});
