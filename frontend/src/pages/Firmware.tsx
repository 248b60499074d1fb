// Firmware (`/api/firmware`): upload a file with a real progress bar (XMLHttpRequest upload events), list what is
// stored with the checksum the server computed, edit labels, delete. MySensors OTA needs the labels ms_type_id and
// ms_version_id (integers 0-65535); the server checks them too. The file goes the way the server offers
// (`sendFile`): straight to S3 in AWS (any size up to the server's limit), to the API itself locally.

import { type FormEvent, useState } from "react";

import { remove } from "../api/client";
import { formatBytes, sendFile, type SendOptions } from "../api/upload";
import { useInvalidate } from "../api/queries";
import type { Firmware } from "../api/types";
import { Card, ErrorBox, formatTime, Labels, ProgressBar, usePageTitle } from "../components/common";
import { FieldProblem, FormInput, invalidProps, type Problem, ProblemBox, problemOf } from "../components/Form";

const NAMES = ["id", "description", "labels.ms_type_id", "labels.ms_version_id", "file"];
import { type Column, ResourceTable } from "../components/ResourceTable";

/** A firmware as the API answers it (generated from /api/openapi.json). */
export type FirmwareRecord = Firmware;

const ID_PATTERN = /^[A-Za-z0-9_\-:@~]{1,128}$/;
/** The whole checksum is in the page (hover shows it), the column shows its start. */
const CHECKSUM_STYLE = { display: "inline-block", maxWidth: "14em", overflow: "hidden", textOverflow: "ellipsis",
  whiteSpace: "nowrap", verticalAlign: "bottom" } as const;

/** The labels to send, or a problem naming the input at fault (checked again by the server). */
export function firmwareLabels(typeId: string, versionId: string):
  { labels: Record<string, string>; problem: null } | { labels: null; problem: Problem } {
  const labels: Record<string, string> = {};
  for (const [key, value] of [["ms_type_id", typeId], ["ms_version_id", versionId]] as const) {
    const text = value.trim();
    if (!text) continue;
    if (!/^\d+$/.test(text) || Number(text) > 65535) {
      return { labels: null, problem: { message: `${key} must be an integer 0-65535`, field: `labels.${key}`,
        at: `labels.${key}` } };
    }
    labels[key] = text;
  }
  return { labels, problem: null };
}

/** How a firmware file travels: with its description and labels in the finishing call (presigned), or in the
 * multipart form the API takes itself (direct). */
export function firmwareTransfer(file: File, description: string, labels: Record<string, string>): SendOptions {
  return {
    finish: { description, labels },
    direct: () => {
      const form = new FormData();
      form.append("description", description);
      form.append("labels", JSON.stringify(labels));
      form.append("file", file, file.name);
      return { body: form };
    },
  };
}

function UploadForm({ onUploaded }: { onUploaded: (record: FirmwareRecord) => void }) {
  const [id, setId] = useState("");
  const [description, setDescription] = useState("");
  const [typeId, setTypeId] = useState("");
  const [versionId, setVersionId] = useState("");
  const [file, setFile] = useState<File | null>(null);
  const [progress, setProgress] = useState<{ loaded: number; total: number } | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [done, setDone] = useState<FirmwareRecord | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setProblem(null);
    setDone(null);
    if (!ID_PATTERN.test(id)) {
      setProblem({ message: "1-128 letters, digits, '_', '-', ':', '@' or '~'", field: "id", at: "id" });
      return;
    }
    if (!file) {
      setProblem({ message: "choose a firmware file", field: "file", at: "file" });
      return;
    }
    const { labels, problem: bad } = firmwareLabels(typeId, versionId);
    if (bad) {
      setProblem(bad);
      return;
    }
    setBusy(true);
    setProgress({ loaded: 0, total: file.size });
    try {
      const record = await sendFile<FirmwareRecord>(`/api/firmware/upload/${encodeURIComponent(id)}`, file,
        (t) => setProgress({ loaded: t.loaded, total: t.total || file.size }), firmwareTransfer(file, description, labels));
      setProgress((p) => (p ? { loaded: p.total, total: p.total } : p));
      setDone(record);
      onUploaded(record);
    } catch (err) {
      setProblem(problemOf(err, NAMES));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="editor" onSubmit={submit} noValidate>
      <div className="row">
        <FormInput label="Firmware id" name="id" value={id} onChange={setId} problem={problem} placeholder="door-sensor" />
        <FormInput label="Description" name="description" value={description} onChange={setDescription}
          problem={problem} />
      </div>
      <div className="row">
        <FormInput label="ms_type_id" name="labels.ms_type_id" value={typeId} onChange={setTypeId} problem={problem}
          inputMode="numeric" hint="MySensors OTA, 0-65535" />
        <FormInput label="ms_version_id" name="labels.ms_version_id" value={versionId} onChange={setVersionId}
          problem={problem} inputMode="numeric" hint="0-65535" />
        <label>
          <span>File</span>
          <input type="file" aria-label="Firmware file" name="file" disabled={busy} {...invalidProps(problem, "file")}
            onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
          <FieldProblem problem={problem} name="file" />
        </label>
      </div>
      {progress && <ProgressBar done={progress.loaded} total={progress.total} label="uploading bytes" />}
      {done?.file && (
        <div className="ok" role="status">
          uploaded {done.file.name} ({formatBytes(done.file.size)}), <code>{done.file.checksum}</code>
        </div>
      )}
      <ProblemBox problem={problem} />
      <div className="actions">
        <button type="submit" className="primary" disabled={busy}>Upload</button>
      </div>
    </form>
  );
}

export function FirmwarePage() {
  usePageTitle("Firmware");
  const invalidate = useInvalidate(); // no live events for these: the list is read again after a change
  const [error, setError] = useState<string | null>(null);
  const columns: Column<FirmwareRecord>[] = [
    { key: "id", label: "Id", render: (f) => f.id },
    { key: "description", label: "Description", render: (f) => f.description || "" },
    { key: "file.name", label: "File", render: (f) => f.file?.name || <span className="muted">no file</span> },
    { key: "file.size", label: "Size", render: (f) => (f.file?.size ? formatBytes(f.file.size) : "") },
    { key: "file.checksum", label: "Checksum", sortable: false,
      render: (f) => <code className="checksum" title={f.file?.checksum} style={CHECKSUM_STYLE}>{f.file?.checksum || ""}</code> },
    { key: "labels", label: "Labels", sortable: false, render: (f) => <Labels labels={f.labels} /> },
    { key: "modifiedOn", label: "Modified", render: (f) => formatTime(f.modifiedOn) },
  ];
  const onDelete = async (record: FirmwareRecord) => {
    if (!window.confirm(`Delete firmware ${record.id} and its file?`)) return;
    setError(null);
    try {
      await remove("firmware", [record.id]);
      void invalidate("firmware");
    } catch (err) {
      setError(problemOf(err).message);
    }
  };
  return (
    <>
      <h1>Firmware</h1>
      <Card title="Upload firmware">
        <p className="muted">
          An Intel HEX (MySensors) or binary file. The server computes its SHA-256 checksum; uploading to an existing id
          replaces the file.
        </p>
        <UploadForm onUploaded={() => void invalidate("firmware")} />
      </Card>
      <Card title="Stored firmware">
        <ErrorBox error={error} />
        <ResourceTable<FirmwareRecord> resource="firmware" entityType="firmware" columns={columns}
          defaultSort={{ f: "id", o: "asc" }} nameKey="id" searchHint="id, or key=value"
          actions={(f) => <button type="button" onClick={() => onDelete(f)}>Delete</button>} />
      </Card>
    </>
  );
}
