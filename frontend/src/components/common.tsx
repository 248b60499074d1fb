// Small shared pieces: error box, progress bar, value formatting, labels, cards and the tab's title.

import { type ReactNode, useEffect } from "react";

import { errorText } from "../api/errors";

/** An error in plain words (api/errors.ts): no key paths, no field names in brackets. */
export { errorText };

export function ErrorBox({ error }: { error: string | null | undefined }) {
  if (!error) return null;
  return (
    <div className="error" role="alert">
      {error}
    </div>
  );
}

export function ProgressBar({ done, total, label }: { done: number; total: number; label?: string }) {
  const percent = total > 0 ? Math.round((100 * done) / total) : 0;
  return (
    <div className="progress" role="progressbar" aria-valuenow={percent} aria-valuemin={0} aria-valuemax={100}>
      <div className="progress-bar" style={{ width: `${percent}%` }} />
      <span className="progress-label">
        {label ?? ""} {done}/{total} ({percent}%)
      </span>
    </div>
  );
}

export function formatValue(value: unknown, unit?: string): string {
  if (value === null || value === undefined) return "—";
  if (typeof value === "boolean") return value ? "on" : "off";
  if (typeof value === "number") {
    const text = Number.isInteger(value) ? String(value) : value.toFixed(2).replace(/0+$/, "").replace(/\.$/, "");
    return unit ? `${text} ${unit}` : text;
  }
  if (typeof value === "object") return JSON.stringify(value);
  return unit ? `${String(value)} ${unit}` : String(value);
}

export function formatTime(value: unknown): string {
  if (!value || typeof value !== "string") return "—";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  const seconds = Math.round((Date.now() - date.getTime()) / 1000);
  if (seconds < 60 && seconds > -5) return `${Math.max(0, seconds)} s ago`;
  if (seconds < 3600 && seconds > 0) return `${Math.round(seconds / 60)} min ago`;
  return date.toLocaleString();
}

export function StatusBadge({ status }: { status?: string }) {
  const text = status || "unknown";
  return <span className={`badge badge-${text}`}>{text}</span>;
}

export function Labels({ labels }: { labels?: Record<string, unknown> }) {
  const entries = Object.entries(labels ?? {});
  if (entries.length === 0) return null;
  return (
    <span className="labels">
      {entries.map(([k, v]) => (
        <span key={k} className="label">
          {k}={String(v)}
        </span>
      ))}
    </span>
  );
}

export function labelsToText(labels: Record<string, string> | undefined): string {
  return Object.entries(labels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join("\n");
}

export function textToLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const line of text.split(/[\n,]/)) {
    const index = line.indexOf("=");
    if (index <= 0) continue;
    const key = line.slice(0, index).trim();
    if (key) labels[key] = line.slice(index + 1).trim();
  }
  return labels;
}

/** The tab's title follows the page: "<title> · MyController". */
export function usePageTitle(title: string | null | undefined): void {
  useEffect(() => {
    if (title) document.title = `${title} · MyController`;
  }, [title]);
}

/** A card; the page's main card (`page`) carries the page's h1 and gives the tab its title (`page` as text, or the
 * title when that is text). */
export function Card({ title, actions, children, page, titleExtra }: {
  title?: ReactNode; actions?: ReactNode; children: ReactNode; page?: boolean | string;
  /** Beside the heading, not in it (a Rename button). */
  titleExtra?: ReactNode;
}) {
  usePageTitle(typeof page === "string" ? page : page && typeof title === "string" ? title : null);
  const Heading = page ? "h1" : "h2";
  return (
    <section className="card">
      {(title || actions) && (
        <header className="card-header">
          <div className="card-title">
            <Heading>{title}</Heading>
            {titleExtra}
          </div>
          <div className="card-actions">{actions}</div>
        </header>
      )}
      <div className="card-body">{children}</div>
    </section>
  );
}
