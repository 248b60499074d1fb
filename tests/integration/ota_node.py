"""The node's side of MySensors OTA, for tests: an Intel HEX writer, and a bootloader on the far end of a pty.

``BootloaderNode`` does what MYSBootloader (and the library's DualOptiboot path) does on boot: it asks for its
firmware config with what it runs, and when the answer differs it asks for every block, the last first, checks
each answer's type, version and index, then the image's CRC16, and "flashes" it (keeps it). It retries a request
that gets no answer, as a bootloader does, and can be told to lose power part way.
"""

from __future__ import annotations

import asyncio
import struct
import time

from mycontroller_protocol.mysensors.firmware import BLOCK_SIZE, crc16
from tests.integration.gateway_helpers import PtyDevice


def intel_hex(data: bytes, start: int = 0, per_line: int = 16, *, end: bool = True) -> str:
    """``data`` at ``start`` as an Intel HEX file (with extended linear address records past 64 KiB); without
    ``end``, no end record (to put more records after)."""
    lines: list[str] = []
    upper = -1

    def record(kind: int, address: int, payload: bytes) -> str:
        body = bytes([len(payload), (address >> 8) & 0xFF, address & 0xFF, kind]) + payload
        return ":" + (body + bytes([(-sum(body)) & 0xFF])).hex().upper()

    for offset in range(0, len(data), per_line):
        address = start + offset
        if address >> 16 != upper:
            upper = address >> 16
            lines.append(record(0x04, 0, upper.to_bytes(2, "big")))
        lines.append(record(0x00, address & 0xFFFF, data[offset:offset + per_line]))
    if end:
        lines.append(record(0x01, 0, b""))
    return "\n".join(lines) + "\n"


class BootloaderNode:
    """A MySensors node in its bootloader, on a pty."""

    def __init__(self, device: PtyDevice, node_id: int, *, type_id: int = 0, version: int = 0, blocks: int = 0,
                 crc: int = 0, timeout: float = 1.0) -> None:
        self.device = device
        self.node_id = node_id
        self.config = (type_id, version, blocks, crc)
        self.timeout = timeout
        self.flash = b""
        self.requests = 0
        self.retries = 0
        self.heard: list[str] = []

    async def _ask(self, type_id: int, payload: bytes, answer_type: int) -> bytes:
        """Send a stream request, return the payload of its answer (retrying as a bootloader does)."""
        line = f"{self.node_id};255;4;0;{type_id};{payload.hex().upper()}\n"
        for _attempt in range(5):
            self.requests += 1
            self.device.write(line)
            deadline = time.monotonic() + self.timeout
            while time.monotonic() < deadline:
                for heard in self.device.poll_lines():
                    self.heard.append(heard)
                    parts = heard.split(";")
                    if parts[:3] == [str(self.node_id), "255", "4"] and parts[4] == str(answer_type):
                        return bytes.fromhex(parts[5])
                await asyncio.sleep(0.002)
            self.retries += 1
        raise AssertionError(f"node {self.node_id}: no answer to {line.strip()!r}")

    async def boot(self, *, lose_power_after: int | None = None) -> str:
        """One boot: ask for the config and update when it differs. Returns what happened: ``"current"`` (runs
        the assigned firmware), ``"updated"``, ``"erased"`` or ``"power lost"``."""
        type_id, version, blocks, crc = self.config
        answer = await self._ask(0, struct.pack("<5H", type_id, version, blocks, crc, 0x0103), 1)
        new = struct.unpack("<4H", answer[:8])
        if new[2] == 0 and new[3] == 0xDA7A:
            return "erased" if new[0] == 1 else f"command {new[0]}"
        if new == self.config:
            return "current"
        new_type, new_version, new_blocks, new_crc = new
        image = bytearray(new_blocks * BLOCK_SIZE)
        for count, block in enumerate(range(new_blocks - 1, -1, -1)):
            if lose_power_after is not None and count == lose_power_after:
                return "power lost"
            data = await self._ask(2, struct.pack("<3H", new_type, new_version, block), 3)
            got_type, got_version, got_block = struct.unpack("<3H", data[:6])
            assert (got_type, got_version, got_block) == (new_type, new_version, block), (got_block, block)
            assert len(data) == 6 + BLOCK_SIZE
            image[block * BLOCK_SIZE:(block + 1) * BLOCK_SIZE] = data[6:]
        assert crc16(bytes(image)) == new_crc, "the image does not match the CRC of its config"
        self.flash = bytes(image)
        self.config = (new_type, new_version, new_blocks, new_crc)
        return "updated"
