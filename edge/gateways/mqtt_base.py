"""What the MQTT-only gateways (Tasmota, generic JSON) share: one broker connection, state, counters."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

from mycontroller_protocol.envelope import MAX_RAW_BYTES

from .base import Gateway, GatewayContext
from .transport import MqttSettings, MqttTransport
from .util import reconnect_delay


class MqttGateway(Gateway):
    """Subscribe, hand each publish to ``handle_publish``, report up/down on every transition.

    The broker connection is kept by awscrt; the gateway only reacts. ``handle_publish`` must never raise
    for bad input: it counts and logs, because one bad device must not stop the others on the same broker.
    """

    protocol_type: ClassVar[str] = "mqtt"
    default_subscriptions: ClassVar[Sequence[str]] = ()

    def __init__(self, gateway_id: str, config: dict[str, Any], ctx: GatewayContext) -> None:
        self.gateway_id = gateway_id
        self.config = config
        self.ctx = ctx
        self.logger: logging.Logger = ctx.logger
        self.provider_config: dict[str, Any] = config.get("provider") or {}
        self.protocol: dict[str, Any] = self.provider_config.get("protocol") or {}
        self.settings = MqttSettings.from_protocol(self.protocol, gateway_id, self.subscriptions())
        self.mqtt: MqttTransport | None = None
        self.connected = False
        self.state_message = ""
        self.counters: dict[str, int] = {"received": 0, "emitted": 0, "invalid": 0, "published": 0,
                                         "publish_failures": 0}

    def subscriptions(self) -> Sequence[str]:
        """Topics to subscribe to when the protocol block names none."""
        return self.default_subscriptions

    def handle_publish(self, topic: str, payload: bytes) -> None:
        raise NotImplementedError

    def _on_state(self, up: bool, message: str) -> None:
        self.connected = up
        self.state_message = message
        self.ctx.set_state("up" if up else "down", message)

    def emit(self, raw: str, topic: str | None = None, *, command: bool = False) -> bool:
        """Emit one message unless it is larger than an envelope may carry (counted, logged)."""
        if len(raw) > MAX_RAW_BYTES:
            self.invalid(f"message of {len(raw)} characters on {topic!r} is larger than {MAX_RAW_BYTES}")
            return False
        self.ctx.emit(raw, topic, command=command)
        self.counters["emitted"] += 1
        return True

    def invalid(self, reason: str) -> None:
        self.counters["invalid"] += 1
        count = self.counters["invalid"]
        if count <= 10 or count % 100 == 0:
            self.logger.warning("%s: ignored: %s (%d so far)", self.gateway_id, reason, count)

    async def publish(self, topic: str, payload: str | bytes) -> None:
        if self.mqtt is None:
            from .transport import TransportClosed

            raise TransportClosed("gateway is not running")
        try:
            await self.mqtt.publish(topic, payload)
        except ConnectionError:
            self.counters["publish_failures"] += 1
            raise
        self.counters["published"] += 1

    async def run(self) -> None:
        self.mqtt = MqttTransport(self.settings, reconnect_cap=reconnect_delay(self.config), on_state=self._on_state,
                                  logger=self.logger)
        try:
            await self.mqtt.start()
            while True:
                topic, payload = await self.mqtt.get()
                self.counters["received"] += 1
                try:
                    self.handle_publish(topic, payload)
                except Exception as error:  # a plugin bug on one message must not stop the gateway
                    self.logger.exception("%s: failed on a message on %r", self.gateway_id, topic)
                    self.invalid(f"{type(error).__name__} on {topic!r}")
        finally:
            await self.mqtt.stop()
            self.connected = False
            self.ctx.set_state("down", "gateway stopped")

    def status(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "protocol": self.protocol_type,
            "connected": self.connected,
            "transport": f"mqtt {self.settings.broker}",
            "subscriptions": list(self.settings.subscriptions),
            "message": self.state_message,
            **self.counters,
        }
