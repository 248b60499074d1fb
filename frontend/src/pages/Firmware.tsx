// Firmware (`/api/firmware`): upload a file with a real progress bar (XMLHttpRequest upload events), list what is
// stored with the checksum the server computed, edit labels, delete. MySensors OTA needs the labels ms_type_id and
// ms_version_id (integers 0-65535); the server checks them too. The file goes the way the server offers
// (`sendFile`): straight to S3 in AWS (any size up to the server's limit), to the API itself locally.

import { useState } from "react";
import { z } from "zod/mini";

import { remove } from "../api/client";
import { formatBytes, sendFile, type SendOptions } from "../api/upload";
import { useInvalidate } from "../api/queries";
import type { Firmware } from "../api/types";
import { Card, ErrorBox, formatTime, Labels, ProgressBar, usePageTitle } from "../components/common";
import { useApiForm } from "../components/apiForm";
import { FieldProblem, FormInput, invalidProps, type Problem, ProblemBox, problemOf, SubmitButton } from "../components/Form";
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

/** The upload form's keys → the names the server gives in its errors. */
const FORM_NAMES = { id: "id", description: "description", typeId: "labels.ms_type_id",
  versionId: "labels.ms_version_id", file: "file" } as const;

const UploadSchema = z.object({
  id: z.string().check(z.regex(ID_PATTERN, "1-128 letters, digits, '_', '-', ':', '@' or '~'")),
  description: z.string(),
  typeId: z.string(),
  versionId: z.string(),
  file: z.nullable(z.custom<File>()).check(z.refine((file) => file instanceof File, "choose a firmware file")),
}).check(z.superRefine((form, ctx) => {
  const { problem } = firmwareLabels(form.typeId, form.versionId);
  if (problem) {
    ctx.addIssue({ code: "custom", message: problem.message,
      path: [problem.at === "labels.ms_type_id" ? "typeId" : "versionId"] });
  }
}));

function UploadForm({ onUploaded }: { onUploaded: (record: FirmwareRecord) => void }) {
  const [progress, setProgress] = useState<{ loaded: number; total: number } | null>(null);
  const [done, setDone] = useState<FirmwareRecord | null>(null);
  const { form, onSubmit, busy, problem } = useApiForm({
    schema: UploadSchema,
    defaultValues: { id: "", description: "", typeId: "", versionId: "", file: null },
    names: FORM_NAMES,
    submit: async ({ id, description, typeId, versionId, file }) => {
      const upload = file as File;
      const { labels } = firmwareLabels(typeId, versionId);
      setDone(null);
      setProgress({ loaded: 0, total: upload.size });
      const record = await sendFile<FirmwareRecord>(`/api/firmware/upload/${encodeURIComponent(id)}`, upload,
        (t) => setProgress({ loaded: t.loaded, total: t.total || upload.size }),
        firmwareTransfer(upload, description, labels ?? {}));
      setProgress((p) => (p ? { loaded: p.total, total: p.total } : p));
      return record;
    },
    onDone: (record) => {
      setDone(record);
      onUploaded(record);
    },
  });

  return (
    <form className="editor" onSubmit={onSubmit} noValidate>
      <div className="row">
        <FormInput label="Firmware id" name="id" field={form.register("id")} problem={problem} placeholder="door-sensor" />
        <FormInput label="Description" name="description" field={form.register("description")} problem={problem} />
      </div>
      <div className="row">
        <FormInput label="ms_type_id" name="labels.ms_type_id" field={form.register("typeId")} problem={problem}
          inputMode="numeric" hint="MySensors OTA, 0-65535" />
        <FormInput label="ms_version_id" name="labels.ms_version_id" field={form.register("versionId")}
          problem={problem} inputMode="numeric" hint="0-65535" />
        <label>
          <span>File</span>
          <input type="file" aria-label="Firmware file" name="file" disabled={busy} {...invalidProps(problem, "file")}
            onChange={(e) => form.setValue("file", e.target.files?.[0] ?? null, { shouldValidate: form.formState.isSubmitted })} />
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
        <SubmitButton busy={busy} busyText="Uploading…">Upload</SubmitButton>
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
