// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, renderHook, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod/mini";

import { ApiError } from "../api/client";
import { useApiForm, useSubmit } from "./apiForm";
import { FormInput, ProblemBox, SubmitButton } from "./Form";

afterEach(cleanup);

const Schema = z.object({
  latitude: z.string().check(z.refine((v) => v === "" || Number.isFinite(Number(v)), "is not a number")),
  name: z.string(),
});

function Harness({ submit }: { submit: (values: z.infer<typeof Schema>) => Promise<unknown> }) {
  const { form, onSubmit, busy, saved, problem } = useApiForm({
    schema: Schema, defaultValues: { latitude: "", name: "" },
    names: { latitude: "geoLocation.latitude", name: "name" }, submit,
  });
  return (
    <form onSubmit={onSubmit} noValidate>
      <FormInput label="Latitude" name="geoLocation.latitude" field={form.register("latitude")} problem={problem} />
      <FormInput label="Name" name="name" field={form.register("name")} problem={problem} />
      <ProblemBox problem={problem} />
      {saved && <div role="status">Saved.</div>}
      <SubmitButton busy={busy}>Save</SubmitButton>
    </form>
  );
}

describe("useApiForm: the one submit path", () => {
  it("checks before sending, and says what is wrong once, at the input", async () => {
    const sent: unknown[] = [];
    render(<Harness submit={async (v) => sent.push(v)} />);
    fireEvent.change(screen.getByLabelText("Latitude"), { target: { value: "north" } });
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toBe("is not a number");
    expect(screen.getByLabelText("Latitude").getAttribute("aria-invalid")).toBe("true");
    expect(screen.getAllByRole("alert")).toHaveLength(1);
    expect(sent).toEqual([]);
  });

  it("sends once however often Save is pressed while it is on its way, busy meanwhile", async () => {
    let release: () => void = () => undefined;
    let calls = 0;
    render(<Harness submit={() => {
      calls += 1;
      return new Promise<void>((resolve) => (release = resolve));
    }} />);
    fireEvent.change(screen.getByLabelText("Name"), { target: { value: "home" } });
    const button = screen.getByRole("button", { name: "Save" });
    fireEvent.submit(button.closest("form")!);
    fireEvent.submit(button.closest("form")!);
    await waitFor(() => expect(screen.getByRole("button").textContent).toBe("Saving…"));
    fireEvent.submit(button.closest("form")!);
    expect((screen.getByRole("button") as HTMLButtonElement).disabled).toBe(true);
    await act(async () => release());
    await screen.findByRole("status");
    expect(calls).toBe(1);
  });

  it("puts the server's refusal at the input it names, in plain words", async () => {
    render(<Harness submit={() => Promise.reject(new ApiError(400,
      "geoLocation.latitude: Input should be less than or equal to 90", "geoLocation.latitude"))} />);
    fireEvent.change(screen.getByLabelText("Latitude"), { target: { value: "123" } });
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    expect((await screen.findByRole("alert")).textContent).toBe("latitude must be at most 90");
    expect(screen.getByLabelText("Latitude").getAttribute("aria-invalid")).toBe("true");
    expect(screen.getByLabelText("Name").getAttribute("aria-invalid")).toBeNull();
  });
});

describe("useSubmit: the same path for the dashboard and automation editors", () => {
  it("sends once when run twice in the same tick, and says the server's refusal once", async () => {
    let sends = 0;
    const { result } = renderHook(() => useSubmit(async (n: number) => {
      sends += 1;
      if (n < 0) throw new ApiError(400, "id: must not be empty", "id");
      return n;
    }, { names: ["id"] }));
    await act(async () => {
      await Promise.all([result.current.run(1), result.current.run(2)]);
    });
    expect(sends).toBe(1);
    expect(result.current.saved).toBe(true);
    await act(async () => result.current.run(-1));
    expect(result.current.problem).toEqual({ message: "id: must not be empty", field: "id", at: "id" });
    expect(result.current.saved).toBe(false);
  });
});
