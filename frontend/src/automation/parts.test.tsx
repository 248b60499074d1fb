// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";

import { JsonArea, JsonTextSchema, jsonProblem } from "./parts";

afterEach(cleanup);

describe("JsonArea (react-hook-form + zod)", () => {
  it("the schema refuses text that does not parse; empty reads as {}", () => {
    expect(jsonProblem("")).toBeNull();
    expect(jsonProblem('{"a": 1}')).toBeNull();
    expect(jsonProblem("{a")).toMatch(/^not valid JSON: /);
    expect(JsonTextSchema.safeParse({ text: "{a" }).success).toBe(false);
    expect(JsonTextSchema.safeParse({ text: "[1]" }).success).toBe(true);
  });

  it("keeps invalid text as typed, says so once, never sends it; sends what parses", async () => {
    const onChange = vi.fn();
    const onValidity = vi.fn();
    render(<JsonArea label="Spec" value={{ url: "https://example.org/hook" }} onChange={onChange} onValidity={onValidity} />);
    const box = screen.getByRole("textbox", { name: "Spec" }) as HTMLTextAreaElement;
    expect(JSON.parse(box.value)).toEqual({ url: "https://example.org/hook" });
    fireEvent.change(box, { target: { value: '{"url": ' } });
    expect((await screen.findByRole("alert")).textContent).toMatch(/^not valid JSON/);
    expect(screen.getAllByRole("alert")).toHaveLength(1);
    expect(box.getAttribute("aria-invalid")).toBe("true");
    expect(box.value).toBe('{"url": ');
    expect(onValidity).toHaveBeenLastCalledWith("Spec", expect.stringMatching(/^not valid JSON/));
    expect(onChange).not.toHaveBeenCalled();
    fireEvent.change(box, { target: { value: '{"url": "https://example.com/x"}' } });
    await waitFor(() => expect(screen.queryByRole("alert")).toBeNull());
    expect(onValidity).toHaveBeenLastCalledWith("Spec", null);
    expect(onChange).toHaveBeenLastCalledWith({ url: "https://example.com/x" });
  });

  it("follows a change made elsewhere (the form), but not over text being typed", async () => {
    const props = { label: "Variables", onChange: vi.fn(), onValidity: vi.fn() };
    const { rerender } = render(<JsonArea {...props} value={{ a: 1 }} />);
    const box = screen.getByRole("textbox", { name: "Variables" }) as HTMLTextAreaElement;
    rerender(<JsonArea {...props} value={{ a: 2 }} />);
    await waitFor(() => expect(JSON.parse(box.value)).toEqual({ a: 2 }));
    expect(props.onChange).not.toHaveBeenCalled(); // showing the form's value is not an edit
    fireEvent.change(box, { target: { value: "{oops" } });
    rerender(<JsonArea {...props} value={{ a: 3 }} />);
    await screen.findByRole("alert");
    expect(box.value).toBe("{oops");
  });
});
