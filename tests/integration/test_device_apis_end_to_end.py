"""ESPHome and Philips Hue from the device to the API and back, through the very parts the local stack runs: the
edge agent (``LocalGatewayHost``, its spool and uplink) with the gateway, the ingest queue and function, the
processor and the provider's interpreter, the REST API; then ``POST /api/action`` → the downlink port → the agent →
the gateway → the fake device or bridge, which reports its new state back up the same way."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.core.providers.hue import parse_color
from chalicelib.local.gateways import LocalGatewayHost
from chalicelib.local.ingest_queue import LocalIngestQueue
from tests.integration.api_helpers import Api
from tests.integration.edge_helpers import wait_until
from tests.integration.esphome_fake import FakeEspHomeDevice, new_key
from tests.integration.hue_fake import FakeHueBridge

pytestmark = pytest.mark.parametrize("api", ["memory"], indirect=True)


@pytest.fixture
def stack(api: Api, tmp_path: Path) -> Iterator[Callable[[list[dict[str, Any]]], LocalGatewayHost]]:
    """Starts the local stack's edge agent with the given gateways, its publishes going to the ingest function."""
    queue = LocalIngestQueue(api.container.ingest.handle, dead_letter_path=tmp_path / "dead.jsonl", linger_s=0.0)
    queue.start()
    hosts: list[LocalGatewayHost] = []

    def start(gateways: list[dict[str, Any]]) -> LocalGatewayHost:
        host = LocalGatewayHost(gateways, queue.send, api.container.downlink, tmp_path / "stack")
        host.start()
        hosts.append(host)
        return host

    yield start
    for host in hosts:
        host.stop()
    queue.stop()


def field(api: Api, quick: str) -> dict[str, Any] | None:
    status, body, _ = api.call("GET", f"/api/field/{quick}")
    return body if status == 200 else None


def value_of(api: Api, quick: str) -> Any:
    found = field(api, quick)
    return found["current"]["value"] if found else None


def test_an_esphome_device_in_the_api_and_commands_back(api: Api, stack: Any) -> None:
    key = new_key()
    device = FakeEspHomeDevice("kitchen-node", encryption_key=key)
    device.add("sensor", "temperature", "Temperature", {"state": 21.37}, unit_of_measurement="°C",
               accuracy_decimals=1, device_class="temperature")
    device.add("switch", "relay", "Relay", {"state": False})
    device.add("light", "ceiling", "Ceiling", {"state": False, "brightness": 1.0, "red": 1.0, "green": 1.0,
                                               "blue": 1.0, "color_mode": 35}, supported_color_modes=[35])
    device.add("cover", "blind", "Blind", {"position": 1.0}, supports_position=True)
    device.add("button", "restart", "Restart", device_class="restart")
    device.start()
    try:
        stack([{"id": "esp", "reconnectDelay": "1s", "provider": {
            "type": "esphome", "encryptionKey": key, "nodes": {"kitchen": {"address": device.address}}}}])
        temperature = wait_until(lambda: field(api, "esp.kitchen.temperature.state"), 20, "the temperature field")
        assert (temperature["metricType"], temperature["unit"], temperature["current"]["value"]) == (
            "gauge_float", "°C", 21.4)
        node = api.ok("GET", "/api/node/esp.kitchen")
        assert node["name"] == "Kitchen" and node["labels"]["library_version"] == "2026.6.0"
        assert node["others"]["mac_address"] == "AC:67:B2:11:22:33"
        assert api.ok("GET", "/api/source/esp.kitchen.ceiling")["labels"]["esphome_type"] == "light"
        assert api.ok("GET", "/api/gateway/esp")["state"]["status"] == "up"
        wait_until(lambda: field(api, "esp.kitchen.restart.press"), 10, "the button's field")
        brightness = wait_until(lambda: field(api, "esp.kitchen.ceiling.brightness"), 10, "the brightness field")
        assert (brightness["metricType"], brightness["unit"]) == ("gauge_float", "%")

        api.ok("POST", "/api/action", [{"resource": "field:esp.kitchen.relay.state", "payload": "toggle"},
                                       {"resource": "field:esp.kitchen.ceiling.rgb", "payload": "#ff8000"},
                                       {"resource": "field:esp.kitchen.blind.position", "payload": 25},
                                       {"resource": "field:esp.kitchen.restart.press", "payload": "press"}])
        wait_until(lambda: value_of(api, "esp.kitchen.relay.state") is True, 20, "the relay reported on")
        wait_until(lambda: value_of(api, "esp.kitchen.ceiling.rgb") == "#ff8000", 20, "the colour reported")
        wait_until(lambda: value_of(api, "esp.kitchen.blind.position") == 25.0, 20, "the blind reported")
        assert device.commands_named("SwitchCommandRequest")[0]["state"] is True
        rgb = device.commands_named("LightCommandRequest")[0]
        assert (rgb["red"], rgb["green"], round(rgb["blue"], 3)) == (1.0, pytest.approx(0.502, abs=1e-3), 0.0)
        assert len(device.commands_named("ButtonCommandRequest")) == 1
        assert value_of(api, "esp.kitchen.ceiling.state") is True  # an rgb command turns the light on

        status, body, _ = api.call("POST", "/api/action", [{"resource": "field:esp.kitchen.ceiling.brightness",
                                                            "payload": 140}])
        assert status == 400 and "0-100" in str(body)

        device.drop_connections()
        wait_until(lambda: api.ok("GET", "/api/node/esp.kitchen")["state"]["status"] == "down", 20,
                   "the node down while its connection is lost")
        wait_until(lambda: api.ok("GET", "/api/node/esp.kitchen")["state"]["status"] == "up", 20,
                   "the node up again after the reconnect")
    finally:
        device.stop()


def test_a_hue_bridge_in_the_api_and_commands_back(api: Api, stack: Any, tmp_path: Path) -> None:
    bridge = FakeHueBridge(tmp_path / "bridge")
    home = bridge.home()
    bridge.start()
    try:
        stack([{"id": "hue", "reconnectDelay": "1s", "provider": {
            "type": "philips_hue", "host": bridge.host, "applicationKey": bridge.app_key}}])
        lamp = f"hue.{home.lamp}"
        colour = wait_until(lambda: field(api, f"{lamp}.light.color"), 20, "the lamp's colour field")
        assert colour["metricType"] == "string" and colour["current"]["value"].startswith("#")
        assert api.ok("GET", f"/api/node/{lamp}")["name"] == "Sofa lamp"
        room = api.ok("GET", f"/api/node/hue.{home.room}")
        assert room["name"] == "Living room" and room["labels"]["hue_type"] == "room"
        sensor = f"hue.{home.motion_sensor}"
        temperature = wait_until(lambda: field(api, f"{sensor}.temperature.temperature"), 10, "the temperature")
        assert (temperature["metricType"], temperature["unit"], temperature["current"]["value"]) == (
            "gauge_float", "°C", 21.56)
        assert api.ok("GET", f"/api/node/{sensor}")["others"]["battery_level"] == 87

        bridge.update(home.motion, {"motion": {"motion": True, "motion_report": {"changed": "2026-07-01T10:00:00Z",
                                                                                  "motion": True}}})
        wait_until(lambda: value_of(api, f"{sensor}.motion.motion") is True, 20, "motion through the event stream")
        bridge.update(home.buttons[0], {"button": {"button_report": {"updated": "2026-07-01T10:00:01Z",
                                                                      "event": "long_press"}}})
        wait_until(lambda: value_of(api, f"hue.{home.dimmer}.button_1.event") == "long_press", 20, "a button press")

        api.ok("POST", "/api/action", [{"resource": f"field:{lamp}.light.color", "payload": "#0000ff"},
                                       {"resource": f"field:hue.{home.room}.grouped_light.on", "payload": "on"},
                                       {"resource": f"field:{lamp}.light.brightness", "payload": 80}])
        wait_until(lambda: value_of(api, f"{lamp}.light.color") == "#0000ff", 20, "the new colour reported")
        wait_until(lambda: value_of(api, f"hue.{home.room}.grouped_light.on") is True, 20, "the room on")
        wait_until(lambda: value_of(api, f"{lamp}.light.brightness") == 80.0, 20, "the brightness")
        x, y = parse_color("#0000ff")
        assert ("light", home.lamp_light, {"on": {"on": True}, "color": {"xy": {"x": x, "y": y}}}) in bridge.puts
        assert ("grouped_light", home.room_group, {"on": {"on": True}}) in bridge.puts
        status, body, _ = api.call("POST", "/api/action", [{"resource": f"field:{lamp}.light.color_temperature",
                                                            "payload": 90}])
        assert status == 400 and "mirek" in str(body)
    finally:
        bridge.stop()
