// Users (`/api/user`, admins only): list, create, edit (role included), delete; and "my profile"
// (`/api/user/profile`, anyone). A password is never shown: the API does not return one, and the password inputs
// only ever set a new one. A changed password or role ends the tokens issued before it, so changing one's own
// password signs in again with the new one (and an admin changing their own gives the current one too).

import { useQuery } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";

import { newPasswordProblem, PASSWORD_HINT, userBody, type UserRecord, FormError } from "../api/admin";
import { api, ApiError, getOne, getUsername, login, remove, save } from "../api/client";
import { ROLES } from "../api/roles";
import { useInvalidate } from "../api/queries";
import { useOne } from "../api/queries";
import { Card, ErrorBox, errorText, formatTime, Labels, labelsToText, textToLabels } from "../components/common";
import { FieldProblem, FormInput, invalidProps, type Problem, ProblemBox, problemOf } from "../components/Form";

const NAMES = ["username", "fullName", "email", "role", "currentPassword", "password", "confirmPassword", "labels"];
import { type Column, ResourceTable } from "../components/ResourceTable";

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

const BLANK: UserRecord = { id: "", username: "", email: "", fullName: "", role: "user", labels: {} };

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

function UserEditor({ isNew, initial }: { isNew: boolean; initial: UserRecord }) {
  const navigate = useNavigate();
  const [user, setUser] = useState<UserRecord>(initial);
  const [labelsText, setLabelsText] = useState(() => labelsToText(initial.labels));
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const [current, setCurrent] = useState("");
  const [problem, setProblem] = useState<Problem | null>(null);
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);
  const u = user;
  const set = (changes: Partial<UserRecord>) => {
    setSaved(false);
    setUser({ ...u, ...changes });
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setProblem(null);
    setSaved(false);
    setBusy(true);
    try {
      const wasMe = !isNew && initial.username === getUsername();
      if (isNew || password || confirm) {
        const bad = newPasswordProblem(password, confirm, u.username);
        if (bad) throw bad;
        if (wasMe && !current) {
          throw new FormError("type your current password to set a new one", "currentPassword");
        }
      }
      const body = userBody(u, password, textToLabels(labelsText));
      if (wasMe && password) body.currentPassword = current;
      if (isNew) {
        // POST /api/user is an upsert: a new user must not silently replace one with the same id.
        const taken = await getOne<UserRecord>("user", String(body.id)).then(() => true, (err: unknown) => {
          if (err instanceof ApiError && err.status === 404) return false;
          throw err;
        });
        if (taken) throw new FormError(`${String(body.id)} is taken`, "username");
      }
      const stored = await save<UserRecord>("user", body);
      if (wasMe && password) await login(stored.username, password); // the old token ended with the old password
      setPassword("");
      setConfirm("");
      setCurrent("");
      setUser(stored);
      setSaved(true);
      if (isNew) navigate(userPath(stored.id), { replace: true });
    } catch (err) {
      setProblem(problemOf(err, NAMES));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Card title={isNew ? "New user" : `User ${u.username}`} page actions={<Link to="/users">all users</Link>}>
      <form className="editor" onSubmit={submit} noValidate>
        <div className="row">
          <FormInput label="Username" name="username" value={u.username} onChange={(v) => set({ username: v })}
            problem={problem} autoComplete="off" required />
          <FormInput label="Full name" name="fullName" value={u.fullName ?? ""} onChange={(v) => set({ fullName: v })}
            problem={problem} />
          <FormInput label="E-mail" name="email" type="email" value={u.email ?? ""} onChange={(v) => set({ email: v })}
            problem={problem} />
          <label>
            Role
            <select aria-label="Role" value={u.role ?? "user"} onChange={(e) => set({ role: e.target.value })}
              {...invalidProps(problem, "role")}>
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
            {!isNew && initial.username === getUsername() && (
              <FormInput label="Current password" name="currentPassword" type="password" value={current}
                onChange={setCurrent} problem={problem} autoComplete="current-password" />
            )}
            <FormInput label="New password" name="password" type="password" value={password} onChange={setPassword}
              problem={problem} autoComplete="new-password" hint={PASSWORD_HINT} />
            <FormInput label="Repeat new password" name="confirmPassword" type="password" value={confirm}
              onChange={setConfirm} problem={problem} autoComplete="new-password" />
          </div>
        </fieldset>
        <label>
          Labels <small className="muted">key=value, one a line</small>
          <textarea aria-label="Labels" rows={2} value={labelsText} onChange={(e) => setLabelsText(e.target.value)} />
        </label>
        <ProblemBox problem={problem} />
        {saved && <div className="ok" role="status">Saved.</div>}
        <div className="actions">
          <button type="submit" className="primary" disabled={busy}>Save</button>
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

function ProfileEditor({ initial }: { initial: UserRecord }) {
  const [user, setUser] = useState<UserRecord>(initial);
  const [labelsText, setLabelsText] = useState(() => labelsToText(initial.labels));
  const [current, setCurrent] = useState("");
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const [problem, setProblem] = useState<Problem | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const u = user;

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setProblem(null);
    setSaved(null);
    setBusy(true);
    try {
      const body: Record<string, unknown> = { email: (u.email ?? "").trim(), fullName: (u.fullName ?? "").trim(),
        labels: textToLabels(labelsText) };
      const changing = Boolean(current || password || confirm);
      if (changing) {
        if (!current) throw new FormError("currentPassword: type your current password to set a new one",
          "currentPassword");
        const bad = newPasswordProblem(password, confirm, u.username);
        if (bad) throw bad;
        body.currentPassword = current;
        body.password = password;
      }
      const stored = await api<UserRecord>("/api/user/profile", { method: "POST", body });
      if (changing) await login(stored.username, password); // the old token ended with the old password
      setCurrent("");
      setPassword("");
      setConfirm("");
      setUser(stored);
      setSaved(changing ? "Saved; the new password is in use." : "Saved.");
    } catch (err) {
      setProblem(problemOf(err, NAMES));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Card title={`My profile (${u.username}, ${u.role ?? "user"})`} page="My profile">
      <form className="editor" onSubmit={submit} noValidate>
        <div className="row">
          <FormInput label="Full name" name="fullName" value={u.fullName ?? ""} problem={problem}
            onChange={(v) => setUser({ ...u, fullName: v })} />
          <FormInput label="E-mail" name="email" type="email" value={u.email ?? ""} problem={problem}
            onChange={(v) => setUser({ ...u, email: v })} />
        </div>
        <label>
          Labels <small className="muted">key=value, one a line</small>
          <textarea aria-label="Labels" rows={2} value={labelsText} onChange={(e) => setLabelsText(e.target.value)} />
        </label>
        <fieldset className="section">
          <legend>Change password</legend>
          <p className="muted">Other sessions and logins with the old password end.</p>
          <div className="row">
            <FormInput label="Current password" name="currentPassword" type="password" value={current}
              onChange={setCurrent} problem={problem} autoComplete="current-password" />
            <FormInput label="New password" name="password" type="password" value={password} onChange={setPassword}
              problem={problem} autoComplete="new-password" hint={PASSWORD_HINT} />
            <FormInput label="Repeat new password" name="confirmPassword" type="password" value={confirm}
              onChange={setConfirm} problem={problem} autoComplete="new-password" />
          </div>
        </fieldset>
        <ProblemBox problem={problem} />
        {saved && <div className="ok" role="status">{saved}</div>}
        <div className="actions">
          <button type="submit" className="primary" disabled={busy}>Save</button>
        </div>
      </form>
    </Card>
  );
}
