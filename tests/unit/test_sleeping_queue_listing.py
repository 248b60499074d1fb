"""The sleeping queue as the reference's API lists it: a queued MySensors command read back into its parts."""

from __future__ import annotations

from chalicelib.core.sleeping_queue import reference_message
from mycontroller_protocol.envelope import Downlink


def test_a_queued_mysensors_command_is_listed_by_its_parts() -> None:
    wire = {**Downlink("gw", "mysensors_v2", "7;3;1;0;2;1", node_id="7", key="7;3;2").to_wire(),
            "x": 1_767_225_600_000}
    message = reference_message("gw", wire)
    assert (message["nodeId"], message["sourceId"], message["type"]) == ("7", "3", "set")
    assert message["payloads"][0]["key"] == "V_STATUS" and message["payloads"][0]["value"] == "1"
    assert message["validity"] == "2026-01-01T00:00:00.000Z" and message["isSleepNode"] is True
    reboot = reference_message("gw", Downlink("gw", "mysensors_v2", "7;255;3;0;13;", node_id="7").to_wire(), 1)
    assert (reboot["id"], reboot["type"], reboot["payloads"][0]["key"]) == ("gw.7.1", "action", "I_REBOOT")
