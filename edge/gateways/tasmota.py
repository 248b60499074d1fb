"""Tasmota devices over MQTT: the edge forwards, the cloud decodes.

Tasmota's default full topic is ``%prefix%/%topic%/`` (``tele/tasmota_ABC/SENSOR``, ``stat/…/RESULT``,
``cmnd/…/POWER``). Some installations put one more level in front (the reference's
``<prefix>/<tele|stat|cmnd>/<node>/<cmd>``); provider ``topicPrefix`` says so. Payloads go up unchanged with
their full topic, so the cloud's Tasmota decoder sees exactly what the device said.

Config: ``provider: {type: tasmota, topicPrefix: "" or fullTopic: "%prefix%/%topic%/", protocol: {type: mqtt,
broker, subscribe (optional, default "<topicPrefix/>tele/#,<topicPrefix/>stat/#", or derived from fullTopic),
username, password, qos}}``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import ClassVar

from chalicelib.core.envelope import Downlink

from .mqtt_base import MqttGateway

_PLACEHOLDER = re.compile(r"%[a-z]+%")


class TasmotaGateway(MqttGateway):
    provider: ClassVar[str] = "tasmota"

    def subscriptions(self) -> Sequence[str]:
        full_topic = str(self.provider_config.get("fullTopic") or "").strip("/")
        if full_topic:  # e.g. "%topic%/%prefix%/": every other placeholder matches any one level
            return tuple(_PLACEHOLDER.sub("+", full_topic.replace("%prefix%", prefix)) + "/#"
                         for prefix in ("tele", "stat"))
        lead = str(self.provider_config.get("topicPrefix") or "").strip("/")
        lead = f"{lead}/" if lead else ""
        return (f"{lead}tele/#", f"{lead}stat/#")

    def handle_publish(self, topic: str, payload: bytes) -> None:
        # stat/… answers a command (RESULT, STATUS…): the spool keeps it when full; tele/… is telemetry
        levels = topic.split("/")
        self.emit(payload.decode("utf-8", errors="replace"), topic, command="stat" in levels[:-1])

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
