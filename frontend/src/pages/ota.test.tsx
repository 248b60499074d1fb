// @vitest-environment jsdom
import { cleanup, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";

import { OtaProgress } from "./Devices";

afterEach(cleanup);

describe("a node's firmware update on its page", () => {
  it("shows the firmware, the state in words and the blocks sent", () => {
    render(<OtaProgress others={{ ota_state: "running", ota_firmware: "blink-2", ota_blocks_sent: 40,
      ota_block_total: 160, ota_message: "" }} />);
    const bar = screen.getByRole("progressbar", { name: "firmware blocks sent: 40 of 160" }) as HTMLProgressElement;
    expect(bar.value).toBe(40);
    expect(bar.max).toBe(160);
    expect(screen.getByTestId("ota").textContent).toContain("blink-2: sending blocks");
    expect(screen.getByTestId("ota").textContent).toContain("40/160 blocks");
  });

  it("says why an update failed, and a finished one is full", () => {
    const { rerender } = render(<OtaProgress others={{ ota_state: "failed", ota_blocks_sent: 0, ota_block_total: 0,
      ota_message: "the fetched file's checksum is wrong" }} />);
    expect(screen.getByTestId("ota").textContent).toContain("failed the fetched file's checksum is wrong");
    expect(screen.queryByRole("progressbar")).toBeNull();
    rerender(<OtaProgress others={{ ota_state: "done", ota_blocks_sent: 158, ota_block_total: 160 }} />);
    expect((screen.getByRole("progressbar") as HTMLProgressElement).value).toBe(160);
  });
});
