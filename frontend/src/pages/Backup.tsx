// Export and restore of the configuration as one JSON file, done in the browser over the REST API. Both are long
// work on a big installation, so each shows its progress record by record.

import { useState } from "react";

import { list, save } from "../api/client";
import { Card, ErrorBox, errorText, ProgressBar } from "../components/common";

const KINDS = ["gateway", "node", "source", "field", "task", "schedule", "handler", "forwardpayload", "dashboard"];
const PAGE = 200;

interface Progress {
  done: number;
  total: number;
  label: string;
}

export function BackupPage() {
  const [progress, setProgress] = useState<Progress | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [report, setReport] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const exportAll = async () => {
    setBusy(true);
    setError(null);
    setReport(null);
    try {
      const counts = await Promise.all(KINDS.map((kind) => list(kind, { limit: 1 }).then((p) => p.count, () => 0)));
      const total = counts.reduce((a, b) => a + b, 0);
      const result: Record<string, unknown[]> = {};
      let done = 0;
      for (const [index, kind] of KINDS.entries()) {
        result[kind] = [];
        for (let offset = 0; offset < counts[index]; offset += PAGE) {
          const page = await list<unknown>(kind, { limit: PAGE, offset });
          result[kind].push(...page.data);
          done += page.data.length;
          setProgress({ done, total, label: `exporting ${kind}` });
          if (page.data.length === 0) break;
        }
      }
      const blob = new Blob([JSON.stringify({ version: 1, exportedAt: new Date().toISOString(), resources: result },
        null, 1)], { type: "application/json" });
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = `mycontroller-${new Date().toISOString().slice(0, 19).replace(/:/g, "")}.json`;
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
      setReport(`exported ${done} records`);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  const restore = async (file: File) => {
    setBusy(true);
    setError(null);
    setReport(null);
    try {
      const text = await readWithProgress(file, (done, total) => setProgress({ done, total, label: "reading file" }));
      const data = JSON.parse(text) as { resources?: Record<string, unknown[]> };
      if (!data || typeof data !== "object" || !data.resources) throw new Error("not a MyController export");
      const items = KINDS.flatMap((kind) => (data.resources?.[kind] ?? []).map((record) => ({ kind, record })));
      const failures: string[] = [];
      for (const [index, { kind, record }] of items.entries()) {
        try {
          await save(kind, record);
        } catch (err) {
          const id = (record as { id?: string }).id ?? "?";
          failures.push(`${kind} ${id}: ${errorText(err)}`);
        }
        setProgress({ done: index + 1, total: items.length, label: "restoring" });
      }
      setReport(`restored ${items.length - failures.length} of ${items.length} records`);
      if (failures.length) setError(failures.slice(0, 20).join("\n"));
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Card title="Backup and restore">
      <p className="muted">
        Exports gateways, nodes, sources, fields, automation and dashboards as one JSON file. Handler secrets are not
        exported (the API never returns them). Metrics are not included.
      </p>
      <div className="actions">
        <button type="button" className="primary" disabled={busy} onClick={exportAll}>Export</button>
        <label className="button">
          Restore from file…
          <input type="file" accept="application/json,.json" hidden disabled={busy}
            onChange={(e) => e.target.files?.[0] && restore(e.target.files[0])} />
        </label>
      </div>
      {progress && <ProgressBar done={progress.done} total={progress.total} label={progress.label} />}
      {report && <div className="ok" role="status">{report}</div>}
      <ErrorBox error={error} />
    </Card>
  );
}

function readWithProgress(file: File, onProgress: (done: number, total: number) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onprogress = (e) => onProgress(e.loaded, e.total || file.size);
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error ?? new Error("could not read the file"));
    reader.readAsText(file);
  });
}
