// Server backups (`/api/backup`): run one and follow its job to 100 %, list, download, delete, and restore from a
// listed backup or from a zip file uploaded with its own progress bar (bytes sent), then the restore job's.
// A restore replaces the stored configuration: whoever is logged in stays so only if the backup has their user
// with the same password; otherwise the next call asks to log in again. Archives travel the way the server offers:
// through presigned S3 URLs in AWS (past Lambda's payload limit), through the API locally.

import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";

import { api } from "../api/client";
import { downloadFile, followJob, formatBytes, type Job, sendFile } from "../api/upload";
import { Card, ErrorBox, errorText, formatTime, ProgressBar } from "../components/common";

interface BackupItem {
  name: string;
  size: number;
  createdOn: string;
}

interface Started {
  jobId: string;
  name?: string;
  job: Job;
}

interface Progress {
  done: number;
  total: number;
  label: string;
}

export function BackupPage() {
  const client = useQueryClient();
  const backups = useQuery({ queryKey: ["list", "backup"],
    queryFn: ({ signal }) => api<{ data: BackupItem[] }>("/api/backup", { signal }) });
  // Following a job stops when the page goes away (the job runs on; the list says how it ended).
  const following = useRef<AbortController | null>(null);
  useEffect(() => () => following.current?.abort(), []);
  const [retention, setRetention] = useState("5");
  const [progress, setProgress] = useState<Progress | null>(null);
  const [report, setReport] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const work = async (action: () => Promise<string>) => {
    setBusy(true);
    setError(null);
    setReport(null);
    try {
      setReport(await action());
    } catch (err) {
      if ((err as Error).name !== "AbortError") setError(errorText(err));
    } finally {
      setBusy(false);
      void client.invalidateQueries({ queryKey: ["list", "backup"] });
    }
  };

  const follow = async (started: Started, verb: string): Promise<Job> => {
    const show = (job: Job) => setProgress({ done: job.done, total: job.total, label: `${verb}: ${job.message}` });
    show(started.job);
    following.current?.abort();
    following.current = new AbortController();
    return started.job.state === "running" ? followJob(started.jobId, show, 300, following.current.signal)
      : checkDone(started.job);
  };

  const run = () => work(async () => {
    const count = Number(retention);
    const started = await api<Started>("/api/backup/run", { method: "POST",
      body: Number.isInteger(count) && count > 0 ? { retentionCount: count } : {} });
    await follow(started, "backup");
    return `backup ${started.name ?? ""} made`;
  });

  const restoreNamed = (name: string) => {
    if (!window.confirm(`Restore ${name}? Everything stored now is replaced by the backup's content.`)) return;
    void work(async () => {
      const started = await api<Started>("/api/backup/restore", { method: "POST", body: { name } });
      const job = await follow(started, "restore");
      return restoredText(job);
    });
  };

  const restoreFile = (file: File) => {
    if (!window.confirm(`Restore from ${file.name}? Everything stored now is replaced by the backup's content.`)) return;
    void work(async () => {
      setProgress({ done: 0, total: file.size, label: "uploading" });
      const started = await sendFile<Started>("/api/backup/upload", file,
        (t) => setProgress({ done: t.loaded, total: t.total || file.size, label: "uploading" }),
        { direct: () => ({ body: file, contentType: "application/zip" }) });
      const job = await follow(started, "restore");
      return restoredText(job);
    });
  };

  const onDelete = (name: string) => {
    if (!window.confirm(`Delete backup ${name}?`)) return;
    void work(async () => {
      await api("/api/backup", { method: "DELETE", body: [name] });
      return `deleted ${name}`;
    });
  };

  const onDownload = (item: BackupItem) => void work(async () => {
    const received = await downloadFile(`/api/backup/download/${encodeURIComponent(item.name)}`, `${item.name}.zip`);
    return `downloaded ${item.name}.zip (${formatBytes(received ?? item.size)})`;
  });

  const items = backups.data?.data ?? [];
  return (
    <>
      <Card title="Backup and restore" page>
        <p className="muted">
          A backup is a zip kept by the server: every resource (users and tokens as stored hashes, handler secrets still
          encrypted) and the firmware files. Metrics are not included. Only the newest backups are kept.
        </p>
        <div className="actions">
          <label>
            <span>Keep newest</span>
            <input aria-label="Keep newest" type="number" min={1} max={1000} value={retention}
              onChange={(e) => setRetention(e.target.value)} style={{ width: "6em" }} />
          </label>
          <button type="button" className="primary" disabled={busy} onClick={run}>Run backup</button>
          <label className="button">
            Restore from file…
            <input type="file" aria-label="Restore from file" accept="application/zip,.zip" hidden disabled={busy}
              onChange={(e) => {
                const file = e.target.files?.[0];
                e.target.value = "";
                if (file) restoreFile(file);
              }} />
          </label>
        </div>
        {progress && <ProgressBar done={progress.done} total={progress.total} label={progress.label} />}
        {report && <div className="ok" role="status">{report}</div>}
        <ErrorBox error={error} />
      </Card>
      <Card title="Stored backups">
        <ErrorBox error={backups.error ? errorText(backups.error) : null} />
        {items.length === 0 ? <p className="muted">{backups.isPending ? "loading…" : "No backup yet."}</p> : (
          <table className="table" aria-label="backups">
            <thead>
              <tr><th>Name</th><th>Created</th><th>Size</th><th /></tr>
            </thead>
            <tbody>
              {items.map((item) => (
                <tr key={item.name} data-backup={item.name}>
                  <td>{item.name}</td>
                  <td>{formatTime(item.createdOn)}</td>
                  <td>{formatBytes(item.size)}</td>
                  <td className="actions">
                    <button type="button" disabled={busy} onClick={() => onDownload(item)}>Download</button>
                    <button type="button" disabled={busy} onClick={() => restoreNamed(item.name)}>Restore</button>
                    <button type="button" disabled={busy} onClick={() => onDelete(item.name)}>Delete</button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Card>
    </>
  );
}

function checkDone(job: Job): Job {
  if (job.state === "failed") throw new Error(job.message || "the job failed");
  return job;
}

function restoredText(job: Job): string {
  const written = (job.result?.written ?? {}) as Record<string, number>;
  const records = Object.entries(written).filter(([k]) => k !== "firmwareFiles").reduce((a, [, n]) => a + n, 0);
  return `restored ${records} records and ${written.firmwareFiles ?? 0} firmware files`;
}
