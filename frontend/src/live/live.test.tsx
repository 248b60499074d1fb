// @vitest-environment jsdom
import { act, cleanup, render, screen } from "@testing-library/react";
import { useLayoutEffect } from "react";
import { afterEach, describe, expect, it } from "vitest";

import { eventLog, useEventLog } from "./eventLog";
import { live, useConnectionState } from "./hooks";
import type { ConnectionState } from "./socket";

afterEach(cleanup);

function Indicator() {
  return <span data-testid="state">{useConnectionState()}</span>;
}

const setState = (state: ConnectionState) => (live as unknown as { setState: (s: ConnectionState) => void }).setState(state);

describe("the live indicator", () => {
  it("follows the socket's state, including a change between its render and its subscription", () => {
    setState("connecting");
    // The socket opens after the indicator rendered "connecting" and before its effects ran (here: in a layout
    // effect, which runs first). Read in render and subscribed in an effect, it stayed on "connecting"; with
    // useSyncExternalStore the change is seen.
    function OpensAfterRender() {
      useLayoutEffect(() => setState("open"), []);
      return null;
    }
    render(<><Indicator /><OpensAfterRender /></>);
    expect(screen.getByTestId("state").textContent).toBe("open");
    act(() => setState("closed"));
    expect(screen.getByTestId("state").textContent).toBe("closed");
  });
});

describe("the event log", () => {
  function Log() {
    return <ol>{useEventLog().map((e) => <li key={e.seq}>{e.entityId}</li>)}</ol>;
  }

  it("shows events as they are added, newest first", () => {
    eventLog.clear();
    render(<Log />);
    act(() => {
      eventLog.add({ type: "updated", entityType: "node", entityId: "sim.1" });
      eventLog.add({ type: "updated", entityType: "node", entityId: "sim.2" });
    });
    expect(screen.getAllByRole("listitem").map((li) => li.textContent)).toEqual(["sim.2", "sim.1"]);
  });
});
