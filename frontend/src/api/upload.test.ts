import { afterEach, describe, expect, it, vi } from "vitest";

import { firmwareLabels } from "../pages/Firmware";
import { followJob, formatBytes } from "./upload";

describe("firmwareLabels", () => {
  it("keeps the MySensors labels that are integers 0-65535 and drops empty ones", () => {
    expect(firmwareLabels(" 10 ", "")).toEqual({ labels: { ms_type_id: "10" }, problem: null });
    expect(firmwareLabels("0", "65535").labels).toEqual({ ms_type_id: "0", ms_version_id: "65535" });
  });
  it("names the input at fault", () => {
    expect(firmwareLabels("65536", "1").problem?.field).toBe("labels.ms_type_id");
    expect(firmwareLabels("1", "-1").problem?.field).toBe("labels.ms_version_id");
    expect(firmwareLabels("1.5", "").problem?.field).toBe("labels.ms_type_id");
  });
});

describe("formatBytes", () => {
  it("uses the largest unit below the size", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(880_426)).toBe("859.8 KB");
    expect(formatBytes(5 * 1024 * 1024)).toBe("5.0 MB");
  });
});

describe("followJob", () => {
  it("stops polling when its signal aborts", async () => {
    let calls = 0;
    vi.stubGlobal("fetch", async () => {
      calls += 1;
      return new Response(JSON.stringify({ state: "running", done: 1, total: 2, message: "" }), { status: 200 });
    });
    const controller = new AbortController();
    const following = followJob("j", () => controller.abort(), 50, controller.signal);
    await expect(following).rejects.toThrow("stopped following the job");
    expect(calls).toBe(1);
  });

  afterEach(() => vi.unstubAllGlobals());

  it("polls until the job is done, reporting every state", async () => {
    const states = [
      { id: "j", type: "backup", state: "running", done: 1, total: 4, message: "saving" },
      { id: "j", type: "backup", state: "done", done: 4, total: 4, message: "done" },
    ];
    const fetchMock = vi.fn(async (_url: string) => new Response(JSON.stringify(states.shift()), { status: 200 }));
    vi.stubGlobal("fetch", fetchMock);
    const seen: number[] = [];
    const job = await followJob("j", (j) => seen.push(j.done), 1);
    expect(job.state).toBe("done");
    expect(seen).toEqual([1, 4]);
    expect(String(fetchMock.mock.calls[0][0])).toContain("/api/backup/job/j");
  });

  it("rejects with the message of a failed job", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => new Response(JSON.stringify(
      { id: "j", type: "restore", state: "failed", done: 0, total: 0, message: "archive is broken" }), { status: 200 })));
    await expect(followJob("j", () => undefined, 1)).rejects.toThrow("archive is broken");
  });
});
