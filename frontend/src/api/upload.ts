// Long transfers with progress: uploads through XMLHttpRequest (fetch reports no upload progress), downloads of
// binary answers, and polling a server job ({state, done, total, message}) until it ends.
//
// Files go the way the server offers (`sendFile`): it answers an upload offer, either `presigned` (in AWS: the file
// goes straight to S3 with a short-lived form, past Lambda's 6 MB payload limit, then one API call finishes the
// job) or `direct` (the local stack: the file goes to the API route itself). Downloads likewise: the server answers
// the file, or (in AWS) a JSON link to it that the browser follows.

import { api, API_BASE, ApiError, getToken, setSession } from "./client";

export interface Transfer {
  loaded: number;
  total: number;
}

/** What `POST /api/firmware/upload/{id}` and `POST /api/backup/upload` answer to `{name, size}`. */
export interface UploadOffer {
  mode: "presigned" | "direct";
  uploadId?: string;
  maxBytes: number;
  expiresIn?: number;
  /** presigned: POST these fields, then the file as `fileField`, to `url` (no token: the form is the permission). */
  upload?: { method: string; url: string; fields: Record<string, string>; fileField: string };
  /** presigned: the call that finishes (its body names the upload); direct: where the file itself goes. */
  then: { method: string; path: string; body?: Record<string, unknown>; contentTypes?: string[] };
}

function answerOf(xhr: XMLHttpRequest): unknown {
  try {
    return xhr.responseText ? JSON.parse(xhr.responseText) : null;
  } catch {
    return xhr.responseText;
  }
}

/** The message of a failed answer: our JSON error, S3's XML `<Message>`, or the status. */
function failureOf(xhr: XMLHttpRequest): ApiError {
  const data = answerOf(xhr);
  const detail = (data && typeof data === "object" ? data : {}) as { message?: string; field?: string };
  const s3 = typeof data === "string" ? /<Message>([^<]*)<\/Message>/.exec(data)?.[1] : undefined;
  return new ApiError(xhr.status, detail.message ?? s3 ?? `${xhr.status} ${xhr.statusText}`, detail.field);
}

/** POST a body to a URL with upload progress; `token` adds the API's Authorization (never sent to S3). */
function postWithProgress<T>(url: string, body: FormData | Blob, onProgress: (t: Transfer) => void,
  { contentType, token }: { contentType?: string; token?: string | null } = {}): Promise<T> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("accept", "application/json");
    if (token) xhr.setRequestHeader("authorization", `Bearer ${token}`);
    if (contentType) xhr.setRequestHeader("content-type", contentType); // FormData sets its own boundary
    const size = body instanceof FormData ? 0 : body.size;
    xhr.upload.onprogress = (e) => onProgress({ loaded: e.loaded, total: e.lengthComputable ? e.total : size });
    xhr.onerror = () => reject(new ApiError(0, "network error during the upload"));
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(answerOf(xhr) as T);
        return;
      }
      if (xhr.status === 401 && token) setSession(null);
      reject(failureOf(xhr));
    };
    xhr.send(body);
  });
}

/** POST a body (FormData, a File or a Blob) to the API and report upload progress; resolves with the JSON answer. */
export function uploadWithProgress<T>(path: string, body: FormData | Blob, onProgress: (t: Transfer) => void,
  contentType?: string): Promise<T> {
  return postWithProgress<T>(API_BASE + path, body, onProgress, { contentType, token: getToken() });
}

export interface SendOptions {
  /** What the finishing call adds to the offer's body (presigned; e.g. a firmware's description and labels). */
  finish?: Record<string, unknown>;
  /** The body (and its type) to send to the API itself when the server offers a direct upload. */
  direct: () => { body: FormData | Blob; contentType?: string };
}

/** Send `file` the way the server offers: ask with `{name, size}` at `offerPath`, then either post it to the blob
 * store's presigned form and make the finishing call, or post it to the API route. Resolves with the answer of the
 * call that finished (the firmware record, the restore job…). */
export async function sendFile<T>(offerPath: string, file: File, onProgress: (t: Transfer) => void,
  options: SendOptions): Promise<T> {
  const offer = await api<UploadOffer>(offerPath, { method: "POST", body: { name: file.name, size: file.size } });
  if (offer.mode === "presigned" && offer.upload) {
    const form = new FormData();
    for (const [key, value] of Object.entries(offer.upload.fields)) form.append(key, value);
    form.append(offer.upload.fileField, file, file.name); // the file last: S3 ignores fields after it
    await postWithProgress<unknown>(offer.upload.url, form, (t) => onProgress({ loaded: t.loaded, total: file.size }));
    return api<T>(offer.then.path, { method: offer.then.method, body: { ...offer.then.body, ...options.finish } });
  }
  const direct = options.direct();
  return uploadWithProgress<T>(offer.then.path, direct.body, onProgress, direct.contentType);
}

function saveAs(href: string, filename: string): void {
  const link = document.createElement("a");
  link.href = href;
  link.download = filename; // ignored across origins: S3 names the file with Content-Disposition instead
  link.rel = "noopener";
  document.body.appendChild(link);
  link.click();
  link.remove();
}

/** GET a file with the token and hand it to the browser as a download; where the server answers a link (a
 * presigned URL in AWS) the browser fetches the file from there. Resolves with the bytes received here, or null when
 * the browser fetches them itself. */
export async function downloadFile(path: string, filename: string, accept = "application/zip"): Promise<number | null> {
  const headers: Record<string, string> = { accept: `application/json, ${accept}` };
  const token = getToken();
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(API_BASE + path, { headers, credentials: "same-origin" });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      message = ((await response.json()) as { message?: string }).message ?? message;
    } catch {
      // not JSON: the status says it
    }
    if (response.status === 401) setSession(null);
    throw new ApiError(response.status, message);
  }
  if ((response.headers.get("content-type") ?? "").startsWith("application/json")) {
    const link = (await response.json()) as { url?: string; filename?: string };
    if (!link.url) throw new ApiError(502, "the server answered no file and no link");
    saveAs(link.url, link.filename ?? filename);
    return null;
  }
  const blob = await response.blob();
  const href = URL.createObjectURL(blob);
  saveAs(href, filename);
  setTimeout(() => URL.revokeObjectURL(href), 10_000);
  return blob.size;
}

export interface Job {
  id: string;
  type: string;
  state: "running" | "done" | "failed";
  done: number;
  total: number;
  message: string;
  result?: Record<string, unknown>;
}

/** Poll a backup job until it is done or failed, reporting each state; a failed job rejects with its message. */
export async function followJob(jobId: string, onUpdate: (job: Job) => void, intervalMs = 300,
  signal?: AbortSignal): Promise<Job> {
  for (;;) {
    const job = await api<Job>(`/api/backup/job/${encodeURIComponent(jobId)}`, { signal });
    onUpdate(job);
    if (job.state === "done") return job;
    if (job.state === "failed") throw new ApiError(400, job.message || "the job failed");
    // Stops between polls too when the page that follows the job goes away (the job itself runs on).
    await new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(new DOMException("stopped following the job", "AbortError"));
        return;
      }
      const timer = setTimeout(resolve, intervalMs);
      signal?.addEventListener("abort", () => {
        clearTimeout(timer);
        reject(new DOMException("stopped following the job", "AbortError"));
      }, { once: true });
    });
  }
}

/** "12.3 MB" and friends. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}
