// @vitest-environment jsdom
// The automation editor on the one submit path (react-hook-form + zod): what is on screen is what is sent, a JSON
// view that does not parse blocks Save with one message, an empty id is refused at its input, and the server's
// answer becomes the form's values.
import { cleanup, fireEvent, screen, waitFor } from "@testing-library/react";
import { Route, Routes } from "react-router-dom";
import { afterEach, describe, expect, it, vi } from "vitest";

import { fakeFetch, renderWithProviders } from "../test/render";
import { AutomationEditorPage } from "./Editors";

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

type Sent = { url: string; body: Record<string, unknown> };

/** The API: handlers list empty, a POST answered as the server would (the record back, a secret redacted). */
function server() {
  const posted: Sent[] = [];
  const { fetch } = fakeFetch((url, init) => {
    if (init?.method === "POST") {
      const body = JSON.parse(String(init.body)) as Record<string, unknown>;
      posted.push({ url, body });
      return { ...body, spec: { ...(body.spec as object), headers: { Authorization: "***" } } };
    }
    if (url.includes("/api/user/profile")) return { role: "user" };
    return { count: 0, limit: 0, offset: 0, data: [] };
  });
  vi.stubGlobal("fetch", fetch);
  return posted;
}

function openNew(kind: string) {
  renderWithProviders(
    <Routes><Route path="/automation/:kind/:id" element={<AutomationEditorPage />} /></Routes>,
    `/automation/${kind}/new`,
  );
}

const save = () => fireEvent.click(screen.getByRole("button", { name: "Save" }));

describe("automation editor form", () => {
  it("refuses an empty id at its input, sending nothing", async () => {
    const posted = server();
    openNew("handler");
    save();
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toBe("an id is required");
    expect(screen.getByLabelText("Id").getAttribute("aria-invalid")).toBe("true");
    expect(posted).toEqual([]);
  });

  it("blocks Save while a JSON view does not parse, says so once, then sends what is on screen", async () => {
    const posted = server();
    openNew("handler");
    fireEvent.change(screen.getByLabelText("Id"), { target: { value: "  hook  " } });
    fireEvent.change(screen.getByLabelText("Labels"), { target: { value: "room=kitchen" } });
    const spec = screen.getByRole("textbox", { name: "Spec" }) as HTMLTextAreaElement;
    fireEvent.change(spec, { target: { value: '{"url": ' } });
    await screen.findByText(/Fix the JSON of Spec to save/);
    save();
    await screen.findByText(/Spec: not valid JSON\. Fix it .* nothing was saved\./);
    expect(screen.queryByText(/Fix the JSON of Spec to save/)).toBeNull(); // said once: the reason replaces the hint
    expect(screen.getAllByText(/nothing was saved/)).toHaveLength(1);
    expect(screen.getByRole("button", { name: "Save" }).getAttribute("aria-describedby"))
      .toBe("problem-json-blocks-save");
    expect(posted).toEqual([]);

    fireEvent.change(spec, { target: { value: '{"url": "https://example.com/x", "method": "POST"}' } });
    await waitFor(() => expect(screen.queryByText(/Fix the JSON of/)).toBeNull());
    save();
    await screen.findByText("Saved.");
    expect(posted).toHaveLength(1);
    const body = posted[0].body;
    expect(body.id).toBe("hook"); // trimmed by the schema
    expect(body.labels).toEqual({ room: "kitchen" });
    expect(body.spec).toMatchObject({ url: "https://example.com/x", method: "POST" });
    expect(body).not.toHaveProperty("state");
  });

  it("sends once however often Save is pressed while it is on its way", async () => {
    const posted: string[] = [];
    let release: () => void = () => undefined;
    vi.stubGlobal("fetch", async (_input: RequestInfo | URL, init?: RequestInit) => {
      if (init?.method === "POST") {
        posted.push(String(init.body));
        await new Promise<void>((resolve) => (release = resolve));
        return new Response(String(init.body), { status: 200, headers: { "content-type": "application/json" } });
      }
      return new Response(JSON.stringify({ count: 0, limit: 0, offset: 0, data: [] }), {
        status: 200, headers: { "content-type": "application/json" } });
    });
    openNew("forwardpayload");
    fireEvent.change(screen.getByLabelText("Id"), { target: { value: "copy" } });
    const form = screen.getByRole("button", { name: "Save" }).closest("form")!;
    fireEvent.submit(form);
    await waitFor(() => expect(screen.getByRole("button", { name: "Saving…" })).toBeTruthy());
    fireEvent.submit(form);
    fireEvent.submit(form);
    release();
    await screen.findByText("Saved.");
    expect(posted).toHaveLength(1);
  });
});
