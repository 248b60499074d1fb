// Files go the way the server offers: presigned (the form to S3 without the token, then the finishing API call) or
// direct (the file to the API route with the token); downloads follow a link when the server answers one; charts
// know whether the server keeps metrics.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { firmwareTransfer } from "../pages/Firmware";
import { metricsEnabled, resetServerStatus } from "./client";
import { downloadFile, sendFile, type UploadOffer } from "./upload";

/** An XMLHttpRequest that records what was sent and answers `status`/`responseText`. */
class FakeXhr {
  static sent: FakeXhr[] = [];
  static answer = { status: 200, text: "{}" };
  method = "";
  url = "";
  headers: Record<string, string> = {};
  body: unknown = null;
  status = 0;
  statusText = "";
  responseText = "";
  upload: { onprogress: ((e: { loaded: number; total: number; lengthComputable: boolean }) => void) | null } = {
    onprogress: null,
  };
  onload: (() => void) | null = null;
  onerror: (() => void) | null = null;

  open(method: string, url: string) {
    this.method = method;
    this.url = url;
  }

  setRequestHeader(name: string, value: string) {
    this.headers[name.toLowerCase()] = value;
  }

  send(body: unknown) {
    this.body = body;
    FakeXhr.sent.push(this);
    this.upload.onprogress?.({ loaded: 5, total: 10, lengthComputable: true });
    this.status = FakeXhr.answer.status;
    this.responseText = FakeXhr.answer.text;
    queueMicrotask(() => this.onload?.());
  }
}

const json = (data: unknown, status = 200) =>
  new Response(JSON.stringify(data), { status, headers: { "content-type": "application/json" } });

const PRESIGNED: UploadOffer = {
  mode: "presigned",
  uploadId: "a".repeat(32),
  maxBytes: 16_000_000,
  expiresIn: 900,
  upload: { method: "POST", url: "https://bucket.s3.amazonaws.com/", fields: { key: "uploads/x", policy: "p" },
    fileField: "file" },
  then: { method: "POST", path: "/api/firmware/upload/fw1", body: { uploaded: true, name: "fw.hex", uploadId: "a".repeat(32) } },
};

beforeEach(() => {
  FakeXhr.sent = [];
  FakeXhr.answer = { status: 200, text: "{}" };
  vi.stubGlobal("XMLHttpRequest", FakeXhr);
  vi.stubGlobal("sessionStorage", { getItem: () => "the-token", setItem: () => undefined, removeItem: () => undefined });
});

afterEach(() => {
  vi.unstubAllGlobals();
  resetServerStatus();
});

describe("sendFile", () => {
  it("posts a presigned form to S3 without the token, then finishes with one API call", async () => {
    const fetchMock = vi.fn(async (url: string, init?: RequestInit) =>
      String(url).endsWith("/api/firmware/upload/fw1") && JSON.parse(String(init?.body)).uploaded
        ? json({ id: "fw1", file: { name: "fw.hex", checksum: "sha256:00", size: 12 } })
        : json(PRESIGNED));
    vi.stubGlobal("fetch", fetchMock);
    FakeXhr.answer = { status: 204, text: "" };
    const file = new File(["0123456789ab"], "fw.hex");
    const progress: number[] = [];

    const record = await sendFile<{ id: string }>("/api/firmware/upload/fw1", file, (t) => progress.push(t.loaded),
      firmwareTransfer(file, "Door", { ms_type_id: "7" }));

    expect(record.id).toBe("fw1");
    const [ask, finish] = fetchMock.mock.calls.map(([, init]) => JSON.parse(String(init?.body)));
    expect(ask).toEqual({ name: "fw.hex", size: 12 });
    expect(finish).toEqual({ uploaded: true, name: "fw.hex", uploadId: "a".repeat(32), description: "Door",
      labels: { ms_type_id: "7" } });
    expect(FakeXhr.sent).toHaveLength(1);
    const s3 = FakeXhr.sent[0];
    expect([s3.method, s3.url]).toEqual(["POST", "https://bucket.s3.amazonaws.com/"]);
    expect(s3.headers.authorization).toBeUndefined();
    const form = s3.body as FormData;
    expect([...form.keys()]).toEqual(["key", "policy", "file"]); // the file after every field
    expect((form.get("file") as File).name).toBe("fw.hex");
    expect(progress).toEqual([5]);
  });

  it("sends the file to the API itself when the server offers a direct upload", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => json({ mode: "direct", maxBytes: 100,
      then: { method: "POST", path: "/api/backup/restore", contentTypes: ["application/zip"] } })));
    FakeXhr.answer = { status: 200, text: JSON.stringify({ jobId: "j", job: { state: "running" } }) };
    const file = new File(["PK"], "b.zip");

    const started = await sendFile<{ jobId: string }>("/api/backup/upload", file, () => undefined,
      { direct: () => ({ body: file, contentType: "application/zip" }) });

    expect(started.jobId).toBe("j");
    const api = FakeXhr.sent[0];
    expect(api.url).toBe("/api/backup/restore");
    expect(api.headers.authorization).toBe("Bearer the-token");
    expect(api.headers["content-type"]).toBe("application/zip");
    expect(api.body).toBe(file);
  });

  it("rejects with S3's message when the store refuses the file, and never finishes", async () => {
    const fetchMock = vi.fn(async () => json(PRESIGNED));
    vi.stubGlobal("fetch", fetchMock);
    FakeXhr.answer = { status: 400, text: "<Error><Code>EntityTooLarge</Code><Message>Your proposed upload exceeds the maximum allowed size</Message></Error>" };

    await expect(sendFile("/api/firmware/upload/fw1", new File(["x"], "x"), () => undefined,
      { direct: () => ({ body: new Blob() }) })).rejects.toThrow("exceeds the maximum allowed size");
    expect(fetchMock).toHaveBeenCalledTimes(1);
  });
});

describe("downloadFile", () => {
  it("follows the link the server answers instead of the bytes", async () => {
    const clicked: string[] = [];
    vi.stubGlobal("document", {
      createElement: () => ({ click() { clicked.push((this as unknown as { href: string }).href); }, remove() {} }),
      body: { appendChild: () => undefined },
    });
    const fetchMock = vi.fn(async () => json({ url: "https://bucket.s3.amazonaws.com/b.zip?sig", expiresIn: 900,
      filename: "b.zip" }));
    vi.stubGlobal("fetch", fetchMock);

    expect(await downloadFile("/api/backup/download/b", "b.zip")).toBeNull();

    expect(clicked).toEqual(["https://bucket.s3.amazonaws.com/b.zip?sig"]);
    const headers = (fetchMock.mock.calls[0] as unknown as [string, RequestInit])[1].headers as Record<string, string>;
    expect(headers.accept).toBe("application/json, application/zip");
  });
});

describe("metricsEnabled", () => {
  it("reads /api/status once and says false when the server keeps no metrics", async () => {
    const fetchMock = vi.fn(async () => json({ status: "ok", metricsDBDisabled: true }));
    vi.stubGlobal("fetch", fetchMock);

    expect(await metricsEnabled()).toBe(false);
    expect(await metricsEnabled()).toBe(false);
    expect(fetchMock).toHaveBeenCalledTimes(1);
    expect(String((fetchMock.mock.calls[0] as unknown as [string])[0])).toContain("/api/status");
  });

  it("says true when metrics are kept, or when the status cannot be read", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => json({ status: "ok", metricsDBDisabled: false })));
    expect(await metricsEnabled()).toBe(true);
    resetServerStatus();
    vi.stubGlobal("fetch", vi.fn(async () => json({ status: 500, message: "down" }, 500)));
    expect(await metricsEnabled()).toBe(true);
  });
});
