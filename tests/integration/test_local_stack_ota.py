"""MySensors firmware over the air in the local stack, end to end: a firmware HEX file uploaded to the store, assigned
to a node and sent by node action ``firmware_update``; the stack's edge agent fetches it straight from the store,
reboots the node on its serial gateway (a real pty) and serves its bootloader, and the node record shows the
update's progress and end."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chalicelib.core.model import Kind
from mycontroller_protocol.mysensors.firmware import FirmwareImage
from tests.integration.gateway_helpers import PtyDevice, Received
from tests.integration.ota_node import BootloaderNode, intel_hex
from tests.integration.services import free_port

pytestmark = pytest.mark.integration


def wait(condition: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


def test_firmware_update_of_a_node_on_the_local_stacks_serial_gateway(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"DATA_DIR": str(tmp_path / "data"), "POWERTOOLS_TRACE_DISABLED": "true",
                        "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING",
                        "AWS_DEFAULT_REGION": "us-east-1", "HANDLER_QUEUE": "local", "SECRETS": "local"}.items():
        monkeypatch.setenv(name, value)
    from chalicelib.local.stack import LocalStack

    device = PtyDevice(tmp_path / "ttyMySensors")
    gateway = {"id": "ms", "reconnectDelay": "1s",
               "provider": {"type": "mysensors_v2", "protocol": {"type": "serial", "portname": str(device.link)}}}
    app = random.Random(5).randbytes(2500)
    hex_file = intel_hex(app).encode()
    stack = LocalStack("127.0.0.1", free_port(), tmp_path / "data", [gateway])
    stack.start()
    try:
        services = stack.container
        repository = services.repository
        services.firmware.store("blink", hex_file, name="blink.hex",
                                extra={"labels": {"ms_type_id": "10", "ms_version_id": "2"}})
        # the node presents itself; the user assigns it the firmware
        device.write("7;255;0;0;17;2.3.2\n")
        node = wait(lambda: repository.get(Kind.NODE, "ms.7"), "the node")
        repository.put(Kind.NODE, {**node, "labels": {**node["labels"], "assigned_firmware": "blink"}})

        received = Received(device)
        assert services.actions.node_actions("firmware_update", ["ms.7"]) == {"sent": 1, "skipped": 0}
        assert repository.get(Kind.NODE, "ms.7")["others"]["ota_state"] == "assigned"  # type: ignore[index]
        wait(received.having(lambda line: line == "7;255;3;0;13;"), "the edge rebooting the node")

        bootloader = BootloaderNode(device, 7, type_id=1, version=1)
        assert asyncio.run(bootloader.boot()) == "updated"
        image = FirmwareImage.load(hex_file, 10, 2)
        assert bootloader.flash == image.data and bootloader.flash[:len(app)] == app

        others = wait(lambda: (n := repository.get(Kind.NODE, "ms.7")) and n["others"].get("ota_state") == "sent"
                      and n["others"], "the progress on the node")
        assert (others["ota_blocks_sent"], others["ota_block_total"], others["ota_firmware"]) == (
            image.blocks, image.blocks, "blink")
        assert asyncio.run(bootloader.boot()) == "current"
        others = wait(lambda: (n := repository.get(Kind.NODE, "ms.7")) and n["others"].get("ota_state") == "done"
                      and n["others"], "done on the node")
        assert others["ota_progress"] == 100 and others["ota_end_time"]
    finally:
        stack.stop()
        device.unplug()
