"""Gateway plugins: importing this package registers every plugin in the base registry.

``build_gateway(gateway_id, config, ctx)`` picks the plugin by ``provider.type`` and ``provider.protocol.type``.
All registrations are here, in one table, so that the set of gateway types can be read in one place. A plugin's
module is imported when a gateway of its type is built, not before: an agent that runs a serial gateway loads
neither the MQTT, ESPHome and Hue plugins nor the cloud codecs they read (memory on a small device).
"""

from __future__ import annotations

import importlib
from typing import Any

from .base import GATEWAY_TYPES, Gateway, GatewayContext, GatewayFactory, build_gateway, register_gateway

PLUGINS: dict[tuple[str, str], str] = {
    ("mysensors_v2", "serial"): "mysensors.gateway:MySensorsSerialGateway",
    ("mysensors_v2", "ethernet"): "mysensors.gateway:MySensorsEthernetGateway",
    ("mysensors_v2", "mqtt"): "mysensors.gateway:MySensorsMqttGateway",
    ("mysensors_v2", "simulator"): "simulator:MySensorsSimulator",
    ("tasmota", "mqtt"): "tasmota:TasmotaGateway",
    ("generic", "mqtt"): "generic_mqtt:GenericMqttGateway",
    ("system_monitoring", ""): "system_monitor:SystemMonitor",  # the reference's name
    ("system_monitor", ""): "system_monitor:SystemMonitor",
    ("esphome", ""): "esphome:EspHomeGateway",
    ("philips_hue", ""): "hue:HueGateway",
}
"""(provider.type, provider.protocol.type) → ``<module of this package>:<plugin class>``; "" where the provider has
no protocol block."""


def plugin_class(path: str) -> type[Gateway]:
    """The plugin class a ``PLUGINS`` entry names (its module imported now)."""
    module, _, name = path.partition(":")
    plugin: type[Gateway] = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    return plugin


def _lazy(path: str) -> GatewayFactory:
    def build(gateway_id: str, config: dict[str, Any], ctx: GatewayContext) -> Gateway:
        return plugin_class(path)(gateway_id, config, ctx)

    build.__qualname__ = build.__name__ = path.partition(":")[2]
    return build


for (_provider_type, _protocol_type), _path in PLUGINS.items():
    GATEWAY_TYPES[f"{_provider_type}/{_protocol_type}" if _protocol_type else _provider_type] = _lazy(_path)

__all__ = [
    "GATEWAY_TYPES",
    "PLUGINS",
    "Gateway",
    "GatewayContext",
    "build_gateway",
    "plugin_class",
    "register_gateway",
]
