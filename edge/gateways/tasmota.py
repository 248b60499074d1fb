"""Tasmota devices over MQTT: the edge forwards, the cloud decodes.

Tasmota's default full topic is ``%prefix%/%topic%/`` (``tele/tasmota_ABC/SENSOR``, ``stat/…/RESULT``,
``cmnd/…/POWER``). Some installations put one more level in front (the reference's
``<prefix>/<tele|stat|cmnd>/<node>/<cmd>``); provider ``topicPrefix`` says so. Payloads go up unchanged with
their full topic, so the cloud's Tasmota decoder sees exactly what the device said.

Discovery: Tasmota (``SetOption19 0``, the default since 9.2) publishes, retained, ``tasmota/discovery/<MAC>/config``
(its topic ``t``, FullTopic ``ft``, prefixes ``tp``, device name ``dn``, friendly names ``fn``, relays ``rl``, IP,
MAC, module, version…) and ``…/sensors`` (its sensors, ``sn``). Both go up (the cloud names the node and its relays,
and knows how to reach the device before it has said anything else); the sensors message names no device, so the
edge adds the ``t`` of that MAC's config to it. A config with relays makes the edge ask the device for its state
(``cmnd/<t>/STATE``, an empty payload) and, at the first relay states it then sees, send the config once more with
them (``"power": {"POWER1": "ON", …}``), so that the relay fields get their friendly names with their values.

Config: ``provider: {type: tasmota, topicPrefix: "" or fullTopic: "%prefix%/%topic%/", discovery: true,
discoveryPrefix: "tasmota/discovery", protocol: {type: mqtt, broker, subscribe (optional, default
"<topicPrefix/>tele/#,<topicPrefix/>stat/#" or derived from fullTopic, and the discovery prefix's "/#"), username,
password, qos}}``.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from mycontroller_protocol.envelope import Downlink
from mycontroller_protocol.tasmota.codec import TopicError, parse_topic

from .mqtt_base import MqttGateway

_PLACEHOLDER = re.compile(r"%[a-z]+%")
DISCOVERY_PREFIX = "tasmota/discovery"


@dataclass
class _Discovered:
    """What a device's discovery config says, for its sensors message and its relays' names."""

    mac: str
    topic: str
    """The config's topic (its last level: ``config``)."""
    config: dict[str, Any]
    relays: bool
    named: bool = False
    """Whether the config went up once more with relay states since it arrived."""


class TasmotaGateway(MqttGateway):
    provider: ClassVar[str] = "tasmota"

    def __init__(self, gateway_id: str, config: dict[str, Any], ctx: Any) -> None:
        provider = config.get("provider") or {}
        self.discovery = provider.get("discovery", True) not in (False, "false", "0", 0)
        self.discovery_prefix = str(provider.get("discoveryPrefix") or DISCOVERY_PREFIX).strip("/")
        super().__init__(gateway_id, config, ctx)
        self.discovered: dict[str, _Discovered] = {}
        """By device topic (``t``)."""
        self._by_mac: dict[str, str] = {}
        self._pending_sensors: dict[str, bytes] = {}
        self._requests: set[asyncio.Task[None]] = set()
        self.counters.update({"discovered": 0})

    def subscriptions(self) -> Sequence[str]:
        # discovery first: the broker sends retained messages in the order of the filters, so a retained LWT
        # "Offline" (tele/…) comes after the retained discovery config and leaves an absent device down
        discovery = (f"{self.discovery_prefix}/#",) if self.discovery else ()
        full_topic = str(self.provider_config.get("fullTopic") or "").strip("/")
        if full_topic:  # e.g. "%topic%/%prefix%/": every other placeholder matches any one level
            return discovery + tuple(_PLACEHOLDER.sub("+", full_topic.replace("%prefix%", prefix)) + "/#"
                                     for prefix in ("tele", "stat"))
        lead = str(self.provider_config.get("topicPrefix") or "").strip("/")
        lead = f"{lead}/" if lead else ""
        return (*discovery, f"{lead}tele/#", f"{lead}stat/#")

    def handle_publish(self, topic: str, payload: bytes) -> None:
        if self.discovery and topic.startswith(self.discovery_prefix + "/"):
            self._discovery(topic, payload)
            return
        if self.discovered and b"POWER" in payload:  # first: the relays' names come with their first values
            self._name_relays(topic, payload)
        # stat/… answers a command (RESULT, STATUS…): the spool keeps it when full; tele/… is telemetry
        levels = topic.split("/")
        self.emit(payload.decode("utf-8", errors="replace"), topic, command="stat" in levels[:-1])

    # ----------------------------------------------------------------------------------------- discovery

    def _discovery(self, topic: str, payload: bytes) -> None:
        """``<prefix>/<MAC>/config`` and ``…/sensors``: up as they are (sensors with the device's ``t``)."""
        levels = topic[len(self.discovery_prefix) + 1:].split("/")
        if len(levels) != 2 or levels[1] not in ("config", "sensors") or not payload.strip():
            return  # a retained message being cleared (empty payload), or something else under the prefix
        mac, kind = levels
        try:
            data = json.loads(payload)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            self.invalid(f"Tasmota discovery {topic!r} is not a JSON object")
            return
        if kind == "sensors":
            self._pending_sensors[mac] = payload
            self._send_sensors(mac)
            return
        device = data.get("t")
        if not isinstance(device, str) or not device:
            self.invalid(f"Tasmota discovery config {topic!r} has no topic 't'")
            return
        relays = any(isinstance(relay, int) and relay > 0 for relay in data.get("rl") or [])
        old = self._by_mac.get(mac)
        if old is not None and old != device:
            self.discovered.pop(old, None)
        self.discovered[device] = _Discovered(mac, topic, data, relays)
        self._by_mac[mac] = device
        self.counters["discovered"] += 1
        self.emit(payload.decode("utf-8", errors="replace"), topic, command=True)
        self._send_sensors(mac)
        if relays:
            self._ask_state(device, data)

    def _send_sensors(self, mac: str) -> None:
        device = self._by_mac.get(mac)
        payload = self._pending_sensors.get(mac) if device is not None else None
        if device is None or payload is None:
            return  # sent when the config of that MAC arrives
        del self._pending_sensors[mac]
        data = json.loads(payload)
        raw = json.dumps({"t": device, **data}, separators=(",", ":"), ensure_ascii=False)
        self.emit(raw, f"{self.discovery_prefix}/{mac}/sensors", command=True)

    def _ask_state(self, device: str, config: dict[str, Any]) -> None:
        """``cmnd/<t>/STATE`` (empty payload): the device answers with its relays' states on ``stat/<t>/RESULT``."""
        full_topic = str(config.get("ft") or "%prefix%/%topic%/")
        prefixes = config.get("tp")
        command = prefixes[0] if isinstance(prefixes, list) and prefixes and isinstance(prefixes[0], str) else "cmnd"
        topic = full_topic.replace("%prefix%", command).replace("%topic%", device).rstrip("/") + "/STATE"
        if "%" in topic or self.mqtt is None:
            return
        task = asyncio.ensure_future(self._request(topic))
        self._requests.add(task)
        task.add_done_callback(self._requests.discard)

    async def _request(self, topic: str) -> None:
        try:
            await self.publish(topic, b"")
        except ConnectionError as error:  # TransportClosed: the next config (or a STATE) will do
            self.logger.info("%s: state request to %s not sent: %s", self.gateway_id, topic, error)

    def _name_relays(self, topic: str, payload: bytes) -> None:
        """The first relay states after a config: the config goes up once more with them, before them (the cloud
        takes a field's name from the first of its values in a batch)."""
        try:
            device = parse_topic(topic).device
        except TopicError:
            return
        found = self.discovered.get(device)
        if found is None or found.named or not found.relays:
            return
        try:
            data = json.loads(payload)
        except ValueError:
            return
        if not isinstance(data, dict):
            return
        power = {k: v for k, v in data.items() if k.startswith("POWER") and isinstance(v, str)}
        if power:
            found.named = True
            raw = json.dumps({**found.config, "power": power}, separators=(",", ":"), ensure_ascii=False)
            self.emit(raw, found.topic, command=True)

    def command_topic(self, topic: str) -> str:
        """The cloud builds ``cmnd/<device>/<command>`` (Tasmota's default); put it in this site's layout."""
        parts = topic.split("/")
        if len(parts) != 3 or parts[0] != "cmnd":
            return topic  # already in some other layout: as given
        full_topic = str(self.provider_config.get("fullTopic") or "").strip("/")
        if full_topic:
            return full_topic.replace("%prefix%", "cmnd").replace("%topic%", parts[1]) + "/" + parts[2]
        lead = str(self.provider_config.get("topicPrefix") or "").strip("/")
        return f"{lead}/{topic}" if lead else topic

    async def send(self, downlink: Downlink) -> None:
        """Publish the command the cloud built (``cmnd/<node>/<command>`` and its payload)."""
        if not downlink.topic:
            self.invalid(f"Tasmota downlink without a topic: {downlink.raw!r}")
            return
        await self.publish(self.command_topic(downlink.topic), downlink.raw)
