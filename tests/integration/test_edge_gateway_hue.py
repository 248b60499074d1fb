"""The Philips Hue gateway against a fake bridge serving the CLIP v2 API and its event stream over HTTPS: the house
goes up placed on nodes and sources, changes arrive through the event stream, commands the cloud builds become the
bridge's PUTs, a lost stream or bridge is reconnected without sending what did not change, a refused key says to
pair again, and ``python -m edge pair-hue`` gets a key by the link button and writes it into the config."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from chalicelib.core.actions import node_action, set_field
from chalicelib.core.model import FieldModel, Gateway, Node, Record
from edge.config import load_config
from edge.gateways import build_gateway
from edge.gateways.hue import HueCommandRefused
from tests.integration.gateway_helpers import FakeContext, running, wait_for
from tests.integration.hue_fake import FakeHueBridge, Home

REPO = Path(__file__).resolve().parents[2]
GATEWAY: Record = Gateway(id="hue", provider={"type": "philips_hue"}).record()


@pytest.fixture
def bridge(tmp_path: Path) -> Iterator[FakeHueBridge]:
    fake = FakeHueBridge(tmp_path / "bridge")
    yield fake
    fake.stop()


def gateway_for(bridge: FakeHueBridge, key: str | None = None, **provider: Any) -> tuple[Any, FakeContext]:
    ctx = FakeContext("hue", "philips_hue")
    config = {"id": "hue", "reconnectDelay": "1s", "provider": {
        "type": "philips_hue", "host": bridge.host, "applicationKey": key or bridge.app_key, "timeout": "5s",
        **provider}}
    return build_gateway("hue", config, ctx), ctx


def sent(ctx: FakeContext) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in ctx.lines]


def of(ctx: FakeContext, rid: str) -> list[dict[str, Any]]:
    return [m["r"] for m in sent(ctx) if m["r"]["id"] == rid]


def field(node: str, source: str, field_id: str, metric_type: str, value: Any = None) -> Record:
    return FieldModel.model_validate({"gatewayId": "hue", "nodeId": node, "sourceId": source, "fieldId": field_id,
                                      "metricType": metric_type, "current": {"value": value}}).record()


def test_the_house_goes_up_events_arrive_and_commands_reach_the_bridge(bridge: FakeHueBridge) -> None:
    home: Home = bridge.home()
    bridge.start()
    gateway, ctx = gateway_for(bridge)

    async def act(node: str, source: str, field_id: str, metric_type: str, payload: Any, current: Any = None) -> None:
        await gateway.send(set_field(GATEWAY, field(node, source, field_id, metric_type, current), payload))

    async def scenario() -> None:
        async with running(gateway):
            await wait_for(lambda: ctx.status == "up" and bridge.streams == 1, what="connected, event stream open")
            messages = sent(ctx)
            nodes = [m["n"] for m, (_raw, _topic, command) in zip(messages, ctx.emits, strict=True) if command]
            assert set(nodes) == {home.bridge_device, home.lamp, home.white, home.motion_sensor, home.dimmer,
                                  home.room}  # devices and rooms are presentations: never dropped, never wait
            placed = {(m["n"], m.get("s")) for m in messages if "s" in m}
            assert {(home.lamp, "light"), (home.white, "light"), (home.room, "grouped_light"),
                    (home.motion_sensor, "motion"), (home.motion_sensor, "temperature"),
                    (home.motion_sensor, "light_level"), (home.motion_sensor, "device_power"),
                    (home.dimmer, "device_power"), (home.lamp, "zigbee_connectivity")} == placed
            assert not any(m["r"]["type"] == "button" for m in messages)  # a button's last press is no news
            lamp = of(ctx, home.lamp_light)[0]
            assert lamp == {"id": home.lamp_light, "type": "light", "owner": {"rid": home.lamp, "rtype": "device"},
                            "on": {"on": False}, "dimming": {"brightness": 50.0},
                            "color_temperature": {"mirek": 366, "mirek_valid": True},
                            "color": {"xy": {"x": 0.4573, "y": 0.41}}}
            assert ctx.states[-1] == ("up", "connected to bridge 001788fffe000001 (6 devices, rooms and zones)")

            # the bridge's own changes (a sensor, a button, the Hue app) come through the event stream
            bridge.update(home.motion, {"motion": {"motion": True, "motion_report": {"changed": "2026-07-01T10:00:00Z",
                                                                                      "motion": True}}})
            bridge.update(home.buttons[1], {"button": {"last_event": "initial_press", "button_report": {
                "updated": "2026-07-01T10:00:01Z", "event": "initial_press"}}})
            bridge.update(home.temperature, {"temperature": {"temperature_report": {"changed": "2026-07-01T10:00:02Z",
                                                                                    "temperature": 19.25}}})
            await wait_for(lambda: len(of(ctx, home.temperature)) == 2, what="three events")
            assert of(ctx, home.motion)[-1]["motion"]["motion_report"] == {"motion": True}
            press = [m for m in sent(ctx) if m["r"]["id"] == home.buttons[1]]
            assert press[0]["s"] == "button_2" and press[0]["r"]["button"]["button_report"] == {"event":
                                                                                                "initial_press"}
            assert of(ctx, home.temperature)[-1]["temperature"]["temperature_report"] == {"temperature": 19.25}

            # what the API's actions send becomes the bridge's own PUTs, and the change comes back as an event
            await act(home.lamp, "light", "on", "binary", "toggle", current=False)
            await act(home.lamp, "light", "brightness", "gauge_float", 75)
            await act(home.lamp, "light", "color", "string", "#ff0000")
            await act(home.white, "light", "brightness", "gauge_float", "10")
            await act(home.room, "grouped_light", "on", "binary", "off")
            await act(home.room, "grouped_light", "color_temperature", "gauge", 454)
            assert bridge.puts == [
                ("light", home.lamp_light, {"on": {"on": True}}),
                ("light", home.lamp_light, {"on": {"on": True}, "dimming": {"brightness": 75.0}}),
                ("light", home.lamp_light, {"on": {"on": True}, "color": {"xy": {"x": 0.6401, "y": 0.33}}}),
                ("light", home.white_light, {"on": {"on": True}, "dimming": {"brightness": 10.0}}),
                ("grouped_light", home.room_group, {"on": {"on": False}}),
                ("grouped_light", home.room_group, {"on": {"on": True}, "color_temperature": {"mirek": 454}}),
            ]
            await wait_for(lambda: of(ctx, home.lamp_light)[-1]["color"]["xy"] == {"x": 0.6401, "y": 0.33},
                           what="the lamp's new colour reported")
            assert of(ctx, home.lamp_light)[-1]["dimming"] == {"brightness": 75.0}
            await wait_for(lambda: of(ctx, home.room_group)[-1].get("color_temperature") == {"mirek": 454},
                           what="the room's change reported")

            with pytest.raises(HueCommandRefused, match="no light or group"):
                await act(home.motion_sensor, "motion", "on", "binary", "on")

            node = Node(gateway_id="hue", node_id=home.motion_sensor).record()
            before = len(ctx.emits)
            await gateway.send(node_action(GATEWAY, node, "refresh_node_info"))
            again = sent(ctx)[before:]
            assert {m["r"]["type"] for m in again} == {"device", "motion", "temperature", "light_level",
                                                       "device_power"}
            assert gateway.status()["commands"] == 6

    asyncio.run(scenario())


def test_a_lost_event_stream_or_bridge_is_reconnected_and_only_changes_go_up(bridge: FakeHueBridge) -> None:
    home = bridge.home()
    bridge.start()
    gateway, ctx = gateway_for(bridge)

    async def scenario() -> None:
        async with running(gateway):
            await wait_for(lambda: ctx.status == "up" and bridge.streams == 1, what="connected")
            first = len(ctx.emits)

            bridge.drop_event_streams()  # a bridge reboot or a Wi-Fi blip
            await wait_for(lambda: ctx.status == "down", what="down when the stream is lost")
            assert ctx.states[-1] == ("down", "the bridge's event stream was lost")
            await wait_for(lambda: ctx.status == "up" and bridge.streams == 1, timeout=15, what="reconnected")
            assert len(ctx.emits) == first  # the bridge was read again; nothing had changed

            bridge.stop()
            await wait_for(lambda: ctx.status == "down", what="down while the bridge is away")
            # meanwhile the lamp was switched on with the Hue app
            bridge.resources[home.lamp_light]["on"] = {"on": True}
            await asyncio.sleep(2)
            bridge.start()
            await wait_for(lambda: ctx.status == "up" and bridge.streams == 1, timeout=20, what="back")
            news = sent(ctx)[first:]
            assert [(m["r"]["id"], m["r"]["on"]) for m in news] == [(home.lamp_light, {"on": True})]

    asyncio.run(scenario())
    assert "cannot reach the bridge" in " ".join(message for _status, message in ctx.states)


def test_a_refused_key_says_to_pair_again(bridge: FakeHueBridge) -> None:
    bridge.home()
    bridge.start()
    gateway, ctx = gateway_for(bridge, key="not-the-key")

    async def scenario() -> None:
        async with running(gateway):
            await wait_for(lambda: ctx.status == "down", what="down")
            assert ctx.states[-1][1] == ("the bridge refused the application key: pair again "
                                         f"(python -m edge pair-hue --host {bridge.host})")
            assert not ctx.lines

    asyncio.run(scenario())


def test_a_key_removed_in_the_hue_app_while_connected_is_noticed(bridge: FakeHueBridge) -> None:
    bridge.home()
    bridge.start()
    gateway, ctx = gateway_for(bridge)

    async def scenario() -> None:
        async with running(gateway):
            await wait_for(lambda: ctx.status == "up" and bridge.streams == 1, what="connected")
            bridge.app_key = "another-app-now"  # the user removed our app in the Hue app: the bridge ends the stream
            bridge.drop_event_streams()
            await wait_for(lambda: ctx.status == "down" and "pair again" in ctx.states[-1][1], timeout=15,
                           what="told to pair again")

    asyncio.run(scenario())


def test_pair_hue_gets_a_key_by_the_link_button_and_writes_it_into_the_config(bridge: FakeHueBridge,
                                                                             tmp_path: Path) -> None:
    home = bridge.home()
    bridge.start()
    config = tmp_path / "edge.yaml"
    config.write_text(yaml.safe_dump({
        "edge": {"id": "pi-garage", "data_dir": "data"},
        "uplink": {"type": "mqtt", "host": "127.0.0.1", "password": "${BROKER_PASSWORD}"},
        "gateways": [{"id": "house", "provider": {"type": "mysensors_v2", "protocol": {
            "type": "ethernet", "server": "tcp://192.168.1.50:5003"}}}]}, sort_keys=False))
    config.chmod(0o644)
    process = subprocess.Popen([sys.executable, "-m", "edge", "pair-hue", "--host", bridge.host, "--config",
                                str(config), "--timeout", "30"], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while len(bridge.pair_requests) < 2:  # it keeps asking while nobody has pressed the button
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.1)
    bridge.press_link_button()
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "Press the link button" in out and "Paired" in out
    assert bridge.pair_requests[0] == {"devicetype": "mycontroller#edge"}

    written = yaml.safe_load(config.read_text())
    assert written["uplink"]["password"] == "${BROKER_PASSWORD}"  # references stay references
    assert written["gateways"][1] == {"id": "hue", "provider": {"type": "philips_hue", "host": bridge.host,
                                                                "applicationKey": bridge.issued_keys[0]}}
    assert config.stat().st_mode & 0o077 == 0  # it holds a secret now
    assert (tmp_path / "edge.yaml.bak").exists()

    # the agent's own reading of the file: the key is there, masked when shown
    import os

    os.environ.setdefault("BROKER_PASSWORD", "x")
    loaded = load_config(config)
    section = next(g for g in loaded.gateways if g.id == "hue")
    assert loaded.redacted()["gateways"][1]["provider"]["applicationKey"] == "***"
    ctx = FakeContext("hue", "philips_hue")
    gateway = build_gateway("hue", section.plugin_config(), ctx)

    async def scenario() -> None:
        async with running(gateway):
            await wait_for(lambda: ctx.status == "up", what="the paired key accepted by the bridge")
            assert any(json.loads(raw)["n"] == home.lamp for raw in ctx.lines)

    asyncio.run(scenario())

    # paired again (a new key), into the same gateway; --print only prints
    bridge.press_link_button()
    again = subprocess.run([sys.executable, "-m", "edge", "pair-hue", "--host", bridge.host, "--print"], cwd=REPO,
                           capture_output=True, text=True, timeout=30)
    assert again.returncode == 0 and again.stdout.strip().splitlines()[-1] == bridge.issued_keys[1]


def test_pair_hue_without_the_button_gives_up_with_the_reason(bridge: FakeHueBridge, tmp_path: Path) -> None:
    bridge.start()
    config = tmp_path / "edge.yaml"
    config.write_text("edge: {id: pi}\n")
    result = subprocess.run([sys.executable, "-m", "edge", "pair-hue", "--host", bridge.host, "--config", str(config),
                             "--timeout", "1"], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "link button of the bridge at" in result.stderr and "was not pressed within 1 s" in result.stderr
    assert config.read_text() == "edge: {id: pi}\n"
