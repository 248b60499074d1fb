// Service tokens (`/api/servicetoken`) for scripts and other systems: list, create, delete. The secret exists in
// the answer to create only (the server keeps a digest), so it is shown once, in a box to copy it from. A token
// carries a role no higher than its maker's; only an admin sees every token and makes one for another user.

import { useMemo, useRef, useState } from "react";
import { useWatch } from "react-hook-form";
import { z } from "zod/mini";

import { dateToLocalInput, localInputToIso, serviceTokenBody, type ServiceTokenRecord, tokenExpiry, type UserRecord } from "../api/admin";
import { api, list, remove } from "../api/client";
import { rolesUpTo, useRole } from "../api/roles";
import { useInvalidate } from "../api/queries";
import { useQuery } from "@tanstack/react-query";
import { Card, ErrorBox, errorText, formatTime, usePageTitle } from "../components/common";
import { useApiForm } from "../components/apiForm";
import { FieldProblem, FormCheck, FormInput, invalidProps, ProblemBox, SubmitButton } from "../components/Form";

import { type Column, ResourceTable } from "../components/ResourceTable";

const NAMES = ["name", "description", "userId", "role", "neverExpire", "expiresOn"] as const;

const TokenSchema = z.object({
  name: z.string().check(z.trim(), z.minLength(1, "a name is required")),
  description: z.string(),
  userId: z.string(),
  role: z.string(),
  neverExpire: z.boolean(),
  expiresOn: z.string(),
}).check(z.superRefine((token, ctx) => {
  if (token.neverExpire) return;
  const iso = localInputToIso(token.expiresOn);
  if (!iso) ctx.addIssue({ code: "custom", path: ["expiresOn"], message: "pick an expiry date, or choose never expire" });
  else if (Date.parse(iso) <= Date.now()) ctx.addIssue({ code: "custom", path: ["expiresOn"], message: "the expiry date is in the past" });
}));

const DEFAULT_DAYS = 90;

function NewSecret({ token, onDone }: { token: ServiceTokenRecord; onDone: () => void }) {
  const input = useRef<HTMLInputElement>(null);
  const [copied, setCopied] = useState<string | null>(null);
  const secret = token.token ?? "";
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(secret); // needs a secure context (https or localhost)
      setCopied("copied");
    } catch {
      input.current?.select(); // elsewhere: selected, for Ctrl+C
      setCopied(document.execCommand?.("copy") ? "copied" : "selected: press Ctrl+C");
    }
  };
  return (
    <div className="secret-box" role="region" aria-label="new service token">
      <strong>Service token "{token.name}" created.</strong>
      <p>
        Copy it now: <b>it is shown this once</b> and cannot be read again (the server keeps only a digest). Send it
        as <code>Authorization: Bearer &lt;token&gt;</code>. If it is lost, delete this token and create another.
      </p>
      <div className="secret-row">
        <input ref={input} readOnly aria-label="token secret" value={secret} spellCheck={false}
          onFocus={(e) => e.target.select()} />
        <button type="button" className="primary" onClick={copy}>Copy</button>
        {copied && <span className="muted" role="status">{copied}</span>}
      </div>
      <button type="button" onClick={onDone}>I have copied it</button>
    </div>
  );
}

function CreateToken({ onCreated }: { onCreated: (token: ServiceTokenRecord) => void }) {
  const myRole = useRole();
  const admin = myRole === "admin";
  const users = useQuery({ queryKey: ["list", "user", "all"], enabled: admin,
    queryFn: ({ signal }) => list<UserRecord>("user", { limit: 0, sortBy: [{ f: "username", o: "asc" }] }, signal) });
  const min = useMemo(() => dateToLocalInput(new Date()), []);
  const [defaultExpiry] = useState(() => dateToLocalInput(new Date(Date.now() + DEFAULT_DAYS * 86_400_000)));
  const { form, onSubmit, busy, problem } = useApiForm({
    schema: TokenSchema,
    defaultValues: { name: "", description: "", userId: "", role: "", neverExpire: false,
      expiresOn: defaultExpiry },
    names: NAMES,
    submit: (values) => api<ServiceTokenRecord>("/api/servicetoken", { method: "POST", body: serviceTokenBody(values) }),
    onDone: (created, _values, f) => {
      f.resetField("name");
      f.resetField("description");
      onCreated(created);
    },
  });
  const neverExpire = useWatch({ control: form.control, name: "neverExpire" });

  return (
    <form className="editor" onSubmit={onSubmit} noValidate>
      <div className="row">
        <FormInput label="Name" name="name" field={form.register("name")} problem={problem} placeholder="backup script" />
        <FormInput label="Description" name="description" field={form.register("description")} problem={problem} />
        {admin && (
          <label>
            Acts as user
            <select aria-label="Acts as user" {...form.register("userId")}
              {...invalidProps(problem, "userId")}>
              <option value="">me</option>
              {(users.data?.data ?? []).map((u) => <option key={u.id} value={u.id}>{u.username}</option>)}
            </select>
            <FieldProblem problem={problem} name="userId" />
          </label>
        )}
        <label>
          Role
          <select aria-label="Token role" {...form.register("role")}
            {...invalidProps(problem, "role")}>
            <option value="">as its user</option>
            {rolesUpTo(myRole).map((r) => <option key={r} value={r}>{r}</option>)}
          </select>
          <FieldProblem problem={problem} name="role" />
        </label>
      </div>
      <div className="row">
        <FormCheck label="Never expire" name="neverExpire" field={form.register("neverExpire")} />
        <FormInput label="Expires on" name="expiresOn" type="datetime-local" field={form.register("expiresOn")}
          problem={problem} disabled={neverExpire} min={min} />
      </div>
      <ProblemBox problem={problem} />
      <div className="actions">
        <SubmitButton busy={busy} busyText="Creating…">Create token</SubmitButton>
      </div>
    </form>
  );
}

export function ServiceTokensPage() {
  usePageTitle("Service tokens");
  const [created, setCreated] = useState<ServiceTokenRecord | null>(null);
  const [error, setError] = useState<string | null>(null);
  const invalidate = useInvalidate(); // no live events for these: the list is read again after a change
  const columns: Column<ServiceTokenRecord>[] = [
    { key: "name", label: "Name", render: (t) => t.name },
    { key: "userId", label: "User", render: (t) => t.userId },
    { key: "role", label: "Role", render: (t) => t.role || "as its user" },
    { key: "description", label: "Description", render: (t) => t.description || "" },
    { key: "expiresOn", label: "Expires", render: (t) => tokenExpiry(t) },
    { key: "createdOn", label: "Created", render: (t) => formatTime(t.createdOn) },
    { key: "id", label: "Token id", render: (t) => <code className="muted">{t.id.slice(0, 8)}…</code> },
  ];
  const onDelete = async (token: ServiceTokenRecord) => {
    if (!window.confirm(`Delete service token ${token.name}? Whatever uses it is refused from then on.`)) return;
    setError(null);
    try {
      await remove("servicetoken", [token.id]);
      if (created?.id === token.id) setCreated(null);
      void invalidate("servicetoken");
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <>
      <h1>Service tokens</h1>
      <Card title="New service token">
        {created ? <NewSecret token={created} onDone={() => setCreated(null)} />
          : <CreateToken onCreated={(token) => {
            setCreated(token);
            void invalidate("servicetoken");
          }} />}
      </Card>
      <Card title="Tokens">
        <ErrorBox error={error} />
        <ResourceTable<ServiceTokenRecord> resource="servicetoken" columns={columns}
          defaultSort={{ f: "name", o: "asc" }} searchHint="name, or key=value"
          actions={(t) => <button type="button" onClick={() => onDelete(t)}>Delete</button>} />
      </Card>
    </>
  );
}
