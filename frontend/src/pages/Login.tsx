// The login page: username and password to POST /api/user/login; the token is kept for this tab only.

import { useEffect, useState } from "react";
import { useLocation, useNavigate } from "react-router-dom";
import { z } from "zod/mini";

import { api, login } from "../api/client";
import { usePageTitle } from "../components/common";
import { useApiForm } from "../components/apiForm";
import { FormInput, ProblemBox, SubmitButton } from "../components/Form";

const LoginSchema = z.object({
  username: z.string().check(z.trim(), z.minLength(1, "type your username")),
  password: z.string().check(z.minLength(1, "type your password")),
});

export function LoginPage() {
  usePageTitle("Sign in");
  const navigate = useNavigate();
  const location = useLocation();
  const next = new URLSearchParams(location.search).get("next") || "/";
  const [message, setMessage] = useState("");

  useEffect(() => {
    api<{ login?: { message?: string } }>("/api/status").then(
      (status) => setMessage(status.login?.message ?? ""),
      () => undefined,
    );
  }, []);

  const { form, onSubmit, busy, problem } = useApiForm({
    schema: LoginSchema,
    defaultValues: { username: "admin", password: "" },
    names: ["username", "password"],
    submit: ({ username, password }) => login(username, password),
    onDone: () => navigate(next.startsWith("/") && !next.startsWith("//") ? next : "/", { replace: true }),
  });
  // A refused login names no input ("invalid username or password"): it is said once, above the button.
  return (
    <div className="login-page">
      <form className="login-card" onSubmit={onSubmit} noValidate>
        <h1>MyController</h1>
        {message && <p className="muted">{message}</p>}
        <FormInput label="Username" name="username" autoComplete="username" field={form.register("username")}
          problem={problem} />
        <FormInput label="Password" name="password" type="password" autoComplete="current-password"
          field={form.register("password")} problem={problem} />
        <ProblemBox problem={problem} />
        <SubmitButton busy={busy} busyText="Signing in…">Sign in</SubmitButton>
      </form>
    </div>
  );
}
