// Long transfers with progress: uploads through XMLHttpRequest (fetch reports no upload progress), downloads of
// binary answers, and polling a server job ({state, done, total, message}) until it ends.

import { api, API_BASE, ApiError, getToken, setSession } from "./client";

export interface Transfer {
  loaded: number;
  total: number;
}

/** POST a body (FormData, a File or a Blob) and report upload progress; resolves with the JSON answer. */
export function uploadWithProgress<T>(path: string, body: FormData | Blob, onProgress: (t: Transfer) => void,
  contentType?: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", API_BASE + path);
    xhr.setRequestHeader("accept", "application/json");
    const token = getToken();
    if (token) xhr.setRequestHeader("authorization", `Bearer ${token}`);
    if (contentType) xhr.setRequestHeader("content-type", contentType); // FormData sets its own boundary
    const size = body instanceof FormData ? 0 : body.size;
    xhr.upload.onprogress = (e) => onProgress({ loaded: e.loaded, total: e.lengthComputable ? e.total : size });
    xhr.onerror = () => reject(new ApiError(0, "network error during the upload"));
    xhr.onload = () => {
      let data: unknown = null;
      try {
        data = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        data = xhr.responseText;
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(data as T);
        return;
      }
      const detail = (data && typeof data === "object" ? data : {}) as { message?: string; field?: string };
      if (xhr.status === 401) setSession(null);
      reject(new ApiError(xhr.status, detail.message ?? `${xhr.status} ${xhr.statusText}`, detail.field));
    };
    xhr.send(body);
  });
}

/** GET a binary answer with the token and hand it to the browser as a file download. */
export async function downloadFile(path: string, filename: string, accept = "application/zip"): Promise<number> {
  const headers: Record<string, string> = { accept };
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
  const blob = await response.blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = filename;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
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
export async function followJob(jobId: string, onUpdate: (job: Job) => void, intervalMs = 300): Promise<Job> {
  for (;;) {
    const job = await api<Job>(`/api/backup/job/${encodeURIComponent(jobId)}`);
    onUpdate(job);
    if (job.state === "done") return job;
    if (job.state === "failed") throw new ApiError(400, job.message || "the job failed");
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
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
