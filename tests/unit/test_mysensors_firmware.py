"""MySensors OTA: Intel HEX to the image a bootloader flashes, its CRC16, and the stream payloads."""

from __future__ import annotations

import random
import struct

import pytest

from mycontroller_protocol.mysensors.control import ControlError, ota_control, read_control, sleep_control
from mycontroller_protocol.mysensors.firmware import (
    FirmwareError,
    FirmwareImage,
    block_response,
    config_response,
    crc16,
    erase_eeprom_response,
    parse_intel_hex,
    read_block_request,
    read_config_request,
)
from tests.integration.ota_node import intel_hex

WIKIPEDIA_HEX = """\
:10010000214601360121470136007EFE09D2190140
:100110002146017E17C20001FF5F16002148011928
:10012000194E79234623965778239EDA3F01B2CAA7
:100130003F0156702B5E712B722B732146013421C7
:00000001FF
"""


def _avr_crc16_update(crc: int, byte: int) -> int:
    """avr-libc's documented C equivalent of ``_crc16_update``, transcribed bit by bit."""
    crc ^= byte
    for _ in range(8):
        crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def test_crc16_is_crc16_modbus_as_avr_libc_computes_it() -> None:
    assert crc16(b"123456789") == 0x4B37  # the catalogued check value of CRC-16/MODBUS
    assert crc16(b"") == 0xFFFF
    data = random.Random(7).randbytes(3000)
    expected = 0xFFFF
    for byte in data:
        expected = _avr_crc16_update(expected, byte)
    assert crc16(data) == expected
    assert crc16(data[1000:], crc16(data[:1000])) == expected  # it continues where it stopped


def test_intel_hex_records_land_at_their_addresses() -> None:
    image = parse_intel_hex(WIKIPEDIA_HEX)
    assert len(image) == 0x140
    assert image[:0x100] == b"\xff" * 0x100  # erased flash below the first record
    assert image[0x100:0x110] == bytes.fromhex("214601360121470136007EFE09D21901")
    assert image[0x130:0x140] == bytes.fromhex("3F0156702B5E712B722B732146013421")


def test_intel_hex_round_trips_a_random_image_and_fills_gaps() -> None:
    data = random.Random(1).randbytes(1234)
    assert parse_intel_hex(intel_hex(data)) == data
    gap = intel_hex(b"\x01\x02", start=0, end=False) + intel_hex(b"\x03", start=8)
    assert parse_intel_hex(intel_hex(b"\x01\x02") + intel_hex(b"\x03", start=8)) == b"\x01\x02"  # read to the end
    assert parse_intel_hex(gap) == b"\x01\x02" + b"\xff" * 6 + b"\x03"
    # Windows line ends, blank lines and an extended linear address past 64 KiB
    high = intel_hex(b"\xaa\xbb", start=0x10000).replace("\n", "\r\n\r\n")
    assert parse_intel_hex(high)[0x10000:] == b"\xaa\xbb"


@pytest.mark.parametrize(("text", "reason"), [
    (":10010000214601360121470136007EFE09D2190141\n", "checksum"),
    (":0F010000214601360121470136007EFE09D2190140\n", "length"),
    ("10010000214601360121470136007EFE09D2190140\n", "starts with ':'"),
    (":1001000021460136012147013600ZZFE09D2190140\n", "hexadecimal"),
    (":00000001FF\n", "no data"),
    (intel_hex(b"\x01\x02\x03", end=False) + intel_hex(b"\x09", start=1), "written twice"),
    (":0200000600FFF9\n", "unknown record type"),
])
def test_a_bad_intel_hex_file_says_what_is_wrong(text: str, reason: str) -> None:
    with pytest.raises(FirmwareError, match=reason):
        parse_intel_hex(text)


def test_the_image_is_padded_to_a_page_with_its_blocks_and_crc() -> None:
    data = bytes(range(200))
    image = FirmwareImage.load(intel_hex(data).encode(), 10, 3)
    assert len(image.data) == 256 and image.data[:200] == data and image.data[200:] == b"\xff" * 56
    assert image.blocks == 16 and image.crc == crc16(image.data)
    assert image.block(15) == image.data[240:256]
    with pytest.raises(FirmwareError):
        image.block(16)
    # a raw binary image is taken as it is; a page-sized one gets no extra page
    raw = FirmwareImage.load(bytes(256), 1, 1)
    assert raw.blocks == 16 and raw.data == bytes(256)
    with pytest.raises(FirmwareError, match="0-65535"):
        FirmwareImage.load(bytes(16), 70000, 1)


def test_stream_payloads_are_little_endian_words_in_hex() -> None:
    image = FirmwareImage(0x000A, 0x0002, bytes(range(32)), 2, 0xABCD)
    assert config_response(image) == "0A0002000200CDAB"
    assert erase_eeprom_response() == "0100000000007ADA"
    assert block_response(image, 1) == "0A0002000100" + bytes(range(16, 32)).hex().upper()
    # MySensors 2.x sends {type, version, blocks, crc, bootloader version}; early bootloaders only the first two
    request = read_config_request(struct.pack("<5H", 10, 2, 600, 0x1234, 0x0103).hex().upper())
    assert (request.type, request.version, request.blocks, request.crc, request.bootloader) == (10, 2, 600, 0x1234,
                                                                                               0x0103)
    assert read_config_request("0A000200").blocks == 0
    assert not read_config_request("0A000200").runs(image)
    assert read_config_request("0A0002000200CDAB").runs(image)
    assert read_block_request("0A0002000100") == (10, 2, 1)
    for bad in ("0A", "XYZW", "0A0002"):
        with pytest.raises(FirmwareError):
            read_block_request(bad)


def test_control_downlinks_read_back_and_refuse_what_they_cannot_be() -> None:
    assert read_control("7;255;3;0;13;") is None
    assert read_control(ota_control("7", firmware="fw", type=1)) == {"ctl": "ota", "node": "7", "firmware": "fw",
                                                                      "type": 1}
    assert read_control(sleep_control("12", sleep=True, pinned=False)) == {"ctl": "sleep", "node": "12",
                                                                           "sleep": True, "pinned": False}
    for bad in ("{", '{}', '{"ctl": "ota"}', '{"ctl": "ota", "node": "255"}', '{"node": "1"}'):
        with pytest.raises(ControlError):
            read_control(bad)
