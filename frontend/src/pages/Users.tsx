// Users (`/api/user`, admins only): list, create, edit (role included), delete; and "my profile"
// (`/api/user/profile`, anyone). A password is never shown: the API does not return one, and the password inputs
// only ever set a new one. A changed password or role ends the tokens issued before it, so changing one's own
// password signs in again with the new one (and an admin changing their own gives the current one too).

import { useQuery } from "@tanstack/react-query";
import { useMemo, useState } from "react";
import { z } from "zod/mini";
import type { $RefinementCtx } from "zod/v4/core";
import { Link, useLocation, useNavigate, useParams } from "react-router-dom";

import { newPasswordProblem, PASSWORD_HINT, userBody, type UserRecord, FormError } from "../api/admin";
import { api, ApiError, getOne, getUsername, login, remove, save } from "../api/client";
import { ROLES } from "../api/roles";
import { useInvalidate } from "../api/queries";
import { useOne } from "../api/queries";
import { Card, ErrorBox, errorText, formatTime, Labels, labelsToText, textToLabels } from "../components/common";
import { useApiForm } from "../components/apiForm";
import { FieldProblem, FormInput, invalidProps, ProblemBox, SubmitButton } from "../components/Form";
import { type Column, ResourceTable } from "../components/ResourceTable";

const NAMES = [
  "username", "fullName", "email", "role", "currentPassword", "password", "confirmPassword", "labels",
] as const;

const enc = encodeURIComponent;
/** Usernames may hold dots; the trailing slash keeps a reload from looking like a file request. */
export const userPath = (id: string) => `/users/${enc(id)}/`;

export function UsersPage() {
  const [error, setError] = useState<string | null>(null);
  const invalidate = useInvalidate(); // no live events for these: the list is read again after a change
  const me = getUsername();
  const columns: Column<UserRecord>[] = [
    { key: "username", label: "Username", render: (u) => u.username },
    { key: "fullName", label: "Name", render: (u) => u.fullName || "" },
    { key: "role", label: "Role", render: (u) => u.role || "" },
    { key: "email", label: "E-mail", render: (u) => u.email || "" },
    { key: "labels", label: "Labels", sortable: false, render: (u) => <Labels labels={u.labels} /> },
    { key: "modifiedOn", label: "Changed", render: (u) => formatTime(u.modifiedOn) },
  ];
  const onDelete = async (user: UserRecord) => {
    if (!window.confirm(`Delete user ${user.username} and their service tokens?`)) return;
    setError(null);
    try {
      await remove("user", [user.id]);
      void invalidate("user");
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <Card title="Users" page actions={
      <>
        <Link to="/profile">My profile</Link>
        <Link className="button primary" to="/users/new">New user</Link>
      </>
    }>
      <ErrorBox error={error} />
      <ResourceTable<UserRecord> resource="user" columns={columns} link={(u) => userPath(u.id)}
        defaultSort={{ f: "username", o: "asc" }} nameKey="username" searchHint="username, or key=value"
        actions={(u) => (
          <>
            <Link className="button" to={userPath(u.id)}>Edit</Link>
            <button type="button" disabled={u.username === me} title={u.username === me ? "you cannot delete yourself" : ""}
              onClick={() => onDelete(u)}>
              Delete
            </button>
          </>
        )} />
    </Card>
  );
}

const BLANK: UserRecord = { id: "", username: "", email: "", fullName: "", role: "user", labels: {},
  modifiedOn: null };

export function UserEditorPage() {
  const { id = "new" } = useParams();
  const isNew = id === "new";
  const loaded = useOne<UserRecord>("user", id, { enabled: !isNew });
  if (!isNew && !loaded.data) {
    return (
      <Card title={loaded.error instanceof ApiError && loaded.error.status === 404 ? "User not found" : "User"} page>
        <ErrorBox error={loaded.error ? errorText(loaded.error) : null} />{loaded.isPending && "loading…"}
      </Card>
    );
  }
  return <UserEditor key={id} isNew={isNew} initial={isNew ? BLANK : loaded.data!} />;
}

/** The user form: every input as text (labels as key=value lines); the password ones only ever set a new one. */
const UserSchema = z.object({
  username: z.string().check(z.trim(), z.minLength(1, "a username is required")),
  fullName: z.string(),
  email: z.string(),
  role: z.enum(["viewer", "user", "admin"]),
  currentPassword: z.string(),
  password: z.string(),
  confirmPassword: z.string(),
  labels: z.string(),
});
type UserForm = z.infer<typeof UserSchema>;

/** The new password's checks (newPasswordProblem), at the input they concern; `always`: even when left empty. */
function checkNewPassword(form: UserForm, ctx: $RefinementCtx<UserForm>, always: boolean, needsCurrent: boolean) {
  if (!always && !form.password && !form.confirmPassword && !form.currentPassword) return;
  const bad = newPasswordProblem(form.password, form.confirmPassword, form.username);
  if (bad) ctx.addIssue({ code: "custom", path: [bad.field], message: bad.message.replace(/^password: /, "") });
  else if (needsCurrent && !form.currentPassword) {
    ctx.addIssue({ code: "custom", path: ["currentPassword"], message: "type your current password to set a new one" });
  }
}

const userForm = (user: UserRecord): UserForm => ({
  username: user.username, fullName: user.fullName ?? "", email: user.email ?? "", role: user.role ?? "user",
  currentPassword: "", password: "", confirmPassword: "", labels: labelsToText(user.labels),
});

function UserEditor({ isNew, initial }: { isNew: boolean; initial: UserRecord }) {
  const navigate = useNavigate();
  const location = useLocation();
  // A new user's page is a new editor: "Saved." comes along with the navigation, until the form is touched.
  const [created] = useState(() => Boolean((location.state as { created?: boolean } | null)?.created));
  const [user, setUser] = useState<UserRecord>(initial);
  const wasMe = !isNew && initial.username === getUsername();
  const schema = useMemo(() => UserSchema.check(z.superRefine((f, ctx) => checkNewPassword(f, ctx, isNew, wasMe))),
    [isNew, wasMe]);
  const { form, onSubmit, busy, saved, problem } = useApiForm({
    schema,
    defaultValues: userForm(initial),
    names: NAMES,
    submit: async (f) => {
      const body = userBody({ ...user, username: f.username, fullName: f.fullName, email: f.email, role: f.role },
        f.password, textToLabels(f.labels));
      if (wasMe && f.password) body.currentPassword = f.currentPassword;
      if (isNew) {
        // POST /api/user is an upsert: a new user must not silently replace one with the same id.
        const taken = await getOne<UserRecord>("user", String(body.id)).then(() => true, (err: unknown) => {
          if (err instanceof ApiError && err.status === 404) return false;
          throw err;
        });
        if (taken) throw new FormError(`${String(body.id)} is taken`, "username");
      }
      const stored = await save<UserRecord>("user", body);
      if (wasMe && f.password) await login(stored.username, f.password); // the old token ended with the old password
      return stored;
    },
    onDone: (stored, _values, f) => {
      setUser(stored);
      f.reset(userForm(stored));
      if (isNew) navigate(userPath(stored.id), { replace: true, state: { created: true } });
    },
  });
  const u = user;

  return (
    <Card title={isNew ? "New user" : `User ${u.username}`} page actions={<Link to="/users">all users</Link>}>
      <form className="editor" onSubmit={onSubmit} noValidate>
        <div className="row">
          <FormInput label="Username" name="username" field={form.register("username")} problem={problem}
            autoComplete="off" required />
          <FormInput label="Full name" name="fullName" field={form.register("fullName")} problem={problem} />
          <FormInput label="E-mail" name="email" type="email" field={form.register("email")} problem={problem} />
          <label>
            Role
            <select aria-label="Role" {...form.register("role")} {...invalidProps(problem, "role")}>
              {ROLES.map((r) => <option key={r} value={r}>{r}</option>)}
            </select>
            <FieldProblem problem={problem} name="role" />
          </label>
        </div>
        <p className="muted">viewer: reads and subscribes · user: also devices, actions, dashboards, automation and
          their own service tokens · admin: also users, backups, settings and firmware. A new role or password ends
          the user's sessions.</p>
        <fieldset className="section">
          <legend>{isNew ? "Password" : "Set a new password"}</legend>
          {!isNew && <p className="muted">Leave empty to keep the current password (it is never shown).</p>}
          <div className="row">
            {wasMe && (
              <FormInput label="Current password" name="currentPassword" type="password"
                field={form.register("currentPassword")} problem={problem} autoComplete="current-password" />
            )}
            <FormInput label="New password" name="password" type="password" field={form.register("password")}
              problem={problem} autoComplete="new-password" hint={PASSWORD_HINT} />
            <FormInput label="Repeat new password" name="confirmPassword" type="password"
              field={form.register("confirmPassword")} problem={problem} autoComplete="new-password" />
          </div>
        </fieldset>
        <label>
          Labels <small className="muted">key=value, one a line</small>
          <textarea aria-label="Labels" rows={2} {...form.register("labels")} />
        </label>
        <ProblemBox problem={problem} />
        {(saved || (created && !form.formState.isDirty && !form.formState.isSubmitted)) && (
          <div className="ok" role="status">Saved.</div>
        )}
        <div className="actions">
          <SubmitButton busy={busy}>Save</SubmitButton>
          <button type="button" onClick={() => navigate("/users")}>Back</button>
        </div>
      </form>
    </Card>
  );
}

export function ProfilePage() {
  const loaded = useQuery({ queryKey: ["one", "user", "profile"],
    queryFn: ({ signal }) => api<UserRecord>("/api/user/profile", { signal }) });
  if (!loaded.data) {
    return (
      <Card title="My profile" page>
        <ErrorBox error={loaded.error ? errorText(loaded.error) : null} />{loaded.isPending && "loading…"}
      </Card>
    );
  }
  return <ProfileEditor initial={loaded.data} />;
}

const ProfileSchema = UserSchema.check(z.superRefine((f, ctx) => checkNewPassword(f, ctx, false, true)));

function ProfileEditor({ initial }: { initial: UserRecord }) {
  const [user, setUser] = useState<UserRecord>(initial);
  const [changed, setChanged] = useState(false);
  const { form, onSubmit, busy, saved, problem } = useApiForm({
    schema: ProfileSchema,
    defaultValues: userForm(initial),
    names: NAMES,
    submit: async (f) => {
      const body: Record<string, unknown> = { email: f.email.trim(), fullName: f.fullName.trim(),
        labels: textToLabels(f.labels) };
      const changing = Boolean(f.password);
      if (changing) {
        body.currentPassword = f.currentPassword;
        body.password = f.password;
      }
      const stored = await api<UserRecord>("/api/user/profile", { method: "POST", body });
      if (changing) await login(stored.username, f.password); // the old token ended with the old password
      return { stored, changing };
    },
    onDone: ({ stored, changing }, _values, f) => {
      setUser(stored);
      setChanged(changing);
      f.reset(userForm(stored));
    },
  });
  const u = user;

  return (
    <Card title={`My profile (${u.username}, ${u.role ?? "user"})`} page="My profile">
      <form className="editor" onSubmit={onSubmit} noValidate>
        <div className="row">
          <FormInput label="Full name" name="fullName" field={form.register("fullName")} problem={problem} />
          <FormInput label="E-mail" name="email" type="email" field={form.register("email")} problem={problem} />
        </div>
        <label>
          Labels <small className="muted">key=value, one a line</small>
          <textarea aria-label="Labels" rows={2} {...form.register("labels")} />
        </label>
        <fieldset className="section">
          <legend>Change password</legend>
          <p className="muted">Other sessions and logins with the old password end.</p>
          <div className="row">
            <FormInput label="Current password" name="currentPassword" type="password"
              field={form.register("currentPassword")} problem={problem} autoComplete="current-password" />
            <FormInput label="New password" name="password" type="password" field={form.register("password")}
              problem={problem} autoComplete="new-password" hint={PASSWORD_HINT} />
            <FormInput label="Repeat new password" name="confirmPassword" type="password"
              field={form.register("confirmPassword")} problem={problem} autoComplete="new-password" />
          </div>
        </fieldset>
        <ProblemBox problem={problem} />
        {saved && <div className="ok" role="status">{changed ? "Saved; the new password is in use." : "Saved."}</div>}
        <div className="actions">
          <SubmitButton busy={busy}>Save</SubmitButton>
        </div>
      </form>
    </Card>
  );
}
