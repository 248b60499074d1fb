"""MySensors firmware over the air: the image a bootloader flashes, and the stream messages that carry it.

What MySensors' bootloaders expect (MYSBootloader, and DualOptiboot with the library's ``MY_OTA_FIRMWARE_FEATURE``):

* the image is the application's flash from address 0, cut in **16-byte blocks**, padded with ``0xFF`` to a whole
  128-byte page (an ATmega328's); a node asks for the blocks by index, the last first;
* its **CRC16** is the one avr-libc's ``_crc16_update`` computes (reflected polynomial 0xA001, start 0xFFFF, no
  final XOR; CRC-16/MODBUS), over every byte of the padded image;
* the stream messages (``C_STREAM``) carry little-endian ``uint16`` structs, written as hex on the gateway's line:
  ``ST_FIRMWARE_CONFIG_REQUEST`` ``{type, version, blocks, crc, bootloaderVersion}`` (older bootloaders send less),
  ``ST_FIRMWARE_CONFIG_RESPONSE`` ``{type, version, blocks, crc}``, ``ST_FIRMWARE_REQUEST`` ``{type, version,
  block}`` and ``ST_FIRMWARE_RESPONSE`` ``{type, version, block, data[16]}``;
* MYSBootloader also takes commands in a config response with ``blocks`` 0 and ``crc`` 0xDA7A: ``type`` 1 erases
  the EEPROM (what the reference's node action ``reset`` asks for).

A firmware file is Intel HEX (``.hex``, what the Arduino IDE exports) or a raw binary image. ``FirmwareImage.load``
reads either; ``parse_intel_hex`` checks every record's checksum and places the data at its address (types 00, 01,
02 and 04; gaps are ``0xFF``, as erased flash reads).

The cloud tells an edge about an update with a control downlink (``control.ota_control``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from ..errors import ProtocolError

BLOCK_SIZE: Final = 16
"""Bytes a ``ST_FIRMWARE_RESPONSE`` carries (``FIRMWARE_BLOCK_SIZE``)."""
PAGE_SIZE: Final = 128
"""An ATmega328's flash page: the image is padded to whole pages, as MySensors' controllers do."""
MAX_BLOCKS: Final = 0xFFFF
"""``blocks`` is a uint16: 1 MiB less one block at most."""
ERASE_EEPROM_CRC: Final = 0xDA7A
"""A config response with ``blocks`` 0 and this ``crc`` is a bootloader command (MYSBootloader)."""
ERASE_EEPROM_COMMAND: Final = 0x01


class FirmwareError(ProtocolError, ValueError):
    """A firmware file or stream payload that cannot be used; the message says what is wrong."""


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """The CRC MySensors' bootloaders check an image with (avr-libc ``_crc16_update`` from 0xFFFF)."""
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


# --------------------------------------------------------------------------------------------- Intel HEX


def _hex_record(line: str, number: int) -> tuple[int, int, bytes]:
    """(record type, 16-bit address, data) of one ``:``-line, its length and checksum checked."""
    try:
        raw = bytes.fromhex(line[1:])
    except ValueError:
        raise FirmwareError(f"line {number}: not hexadecimal") from None
    if len(raw) < 5 or len(raw) != raw[0] + 5:
        raise FirmwareError(f"line {number}: its length does not match its byte count")
    if sum(raw) & 0xFF:
        raise FirmwareError(f"line {number}: checksum mismatch")
    return raw[3], (raw[1] << 8) | raw[2], raw[4:-1]


def parse_intel_hex(text: str) -> bytes:
    """The flash image an Intel HEX file describes, from address 0 (gaps and the start filled with ``0xFF``).

    Data records (00) are placed at their address, extended segment (02) and linear (04) addresses honoured, the
    end record (01) stops reading; start addresses (03, 05) are ignored. ``FirmwareError`` for a bad record, data
    written twice to one address, no data, or an image larger than a bootloader can take."""
    chunks: list[tuple[int, bytes]] = []
    base = 0
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if not line.startswith(":"):
            raise FirmwareError(f"line {number}: an Intel HEX record starts with ':'")
        kind, address, data = _hex_record(line, number)
        if kind == 0x00:
            if data:
                chunks.append((base + address, data))
        elif kind == 0x01:
            break
        elif kind in (0x02, 0x04):
            if len(data) != 2:
                raise FirmwareError(f"line {number}: an extended address record carries 2 bytes")
            base = int.from_bytes(data, "big") << (4 if kind == 0x02 else 16)
        elif kind not in (0x03, 0x05):
            raise FirmwareError(f"line {number}: unknown record type {kind:02X}")
    if not chunks:
        raise FirmwareError("the file holds no data records")
    end = max(start + len(data) for start, data in chunks)
    if end > MAX_BLOCKS * BLOCK_SIZE:
        raise FirmwareError(f"the image ends at {end:#x}, beyond what a MySensors bootloader takes")
    image = bytearray(b"\xff" * end)
    written = bytearray(end)
    for start, data in chunks:
        if any(written[start:start + len(data)]):
            raise FirmwareError(f"address {start:#06x} is written twice")
        image[start:start + len(data)] = data
        written[start:start + len(data)] = b"\x01" * len(data)
    return bytes(image)


def looks_like_hex(content: bytes) -> bool:
    """Whether a firmware file is Intel HEX rather than a raw image (its first visible character is ':')."""
    return content.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b":"


# --------------------------------------------------------------------------------------------- the image


@dataclass(frozen=True, slots=True)
class FirmwareImage:
    """A firmware as a node receives it: ``type``/``version`` (the firmware's ``ms_type_id``/``ms_version_id``
    labels), the padded image, its block count and CRC."""

    type: int
    version: int
    data: bytes
    blocks: int
    crc: int

    @classmethod
    def load(cls, content: bytes, type_id: int, version_id: int) -> FirmwareImage:
        """From a firmware file (Intel HEX or raw binary); ``FirmwareError`` when it cannot be used."""
        for name, value in (("type", type_id), ("version", version_id)):
            if not 0 <= int(value) <= 0xFFFF:
                raise FirmwareError(f"firmware {name} id {value} is not 0-65535")
        if looks_like_hex(content):
            try:
                text = content.decode("ascii")
            except UnicodeDecodeError:
                raise FirmwareError("an Intel HEX file is ASCII text") from None
            image = parse_intel_hex(text)
        else:
            image = bytes(content)
        if not image:
            raise FirmwareError("the firmware file is empty")
        padded = image + b"\xff" * (-len(image) % PAGE_SIZE)
        blocks = len(padded) // BLOCK_SIZE
        if blocks > MAX_BLOCKS:
            raise FirmwareError(f"the image has {blocks} blocks, more than a MySensors bootloader takes")
        return cls(int(type_id), int(version_id), padded, blocks, crc16(padded))

    def block(self, index: int) -> bytes:
        """The 16 bytes of block ``index``; ``FirmwareError`` beyond the image."""
        if not 0 <= index < self.blocks:
            raise FirmwareError(f"block {index} is not in 0-{self.blocks - 1}")
        return self.data[index * BLOCK_SIZE:(index + 1) * BLOCK_SIZE]


# --------------------------------------------------------------------------------------------- stream payloads


@dataclass(frozen=True, slots=True)
class FirmwareConfig:
    """What a node says it runs (``ST_FIRMWARE_CONFIG_REQUEST``); missing trailing fields are 0."""

    type: int
    version: int
    blocks: int = 0
    crc: int = 0
    bootloader: int = 0

    def runs(self, image: FirmwareImage) -> bool:
        """Whether the node already runs ``image`` (a bootloader then boots it instead of updating)."""
        return (self.type, self.version, self.blocks, self.crc) == (image.type, image.version, image.blocks,
                                                                     image.crc)


def _words(payload: str, what: str, least: int) -> tuple[int, ...]:
    try:
        raw = bytes.fromhex(payload)
    except ValueError:
        raise FirmwareError(f"{what} payload {payload[:40]!r} is not hex") from None
    count = len(raw) // 2
    if count < least:
        raise FirmwareError(f"{what} payload has {len(raw)} bytes, needs {least * 2}")
    return struct.unpack(f"<{count}H", raw[:count * 2])


def read_config_request(payload: str) -> FirmwareConfig:
    words = _words(payload, "ST_FIRMWARE_CONFIG_REQUEST", 2)
    return FirmwareConfig(*words[:5])


def read_block_request(payload: str) -> tuple[int, int, int]:
    """(type, version, block) of a ``ST_FIRMWARE_REQUEST``."""
    type_id, version, block = _words(payload, "ST_FIRMWARE_REQUEST", 3)[:3]
    return type_id, version, block


def config_response(image: FirmwareImage) -> str:
    return struct.pack("<4H", image.type, image.version, image.blocks, image.crc).hex().upper()


def erase_eeprom_response() -> str:
    """The MYSBootloader command that erases the node's EEPROM (its id and routing included)."""
    return struct.pack("<4H", ERASE_EEPROM_COMMAND, 0, 0, ERASE_EEPROM_CRC).hex().upper()


def block_response(image: FirmwareImage, index: int) -> str:
    return (struct.pack("<3H", image.type, image.version, index) + image.block(index)).hex().upper()
