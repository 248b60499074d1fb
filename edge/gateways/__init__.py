"""Gateway plugins: importing this package registers every plugin in the base registry.

``build_gateway(gateway_id, config, ctx)`` picks the plugin by ``provider.type`` and ``provider.protocol.type``.
All registrations are here, in one table, so that the set of gateway types can be read in one place.
"""

from __future__ import annotations

from .base import GATEWAY_TYPES, Gateway, GatewayContext, build_gateway, register_gateway
from .esphome import EspHomeGateway
from .generic_mqtt import GenericMqttGateway
from .hue import HueGateway
from .mysensors.gateway import MySensorsEthernetGateway, MySensorsMqttGateway, MySensorsSerialGateway
from .simulator import MySensorsSimulator
from .system_monitor import SystemMonitor
from .tasmota import TasmotaGateway

PLUGINS: dict[tuple[str, str], type[Gateway]] = {
    ("mysensors_v2", "serial"): MySensorsSerialGateway,
    ("mysensors_v2", "ethernet"): MySensorsEthernetGateway,
    ("mysensors_v2", "mqtt"): MySensorsMqttGateway,
    ("mysensors_v2", "simulator"): MySensorsSimulator,
    ("tasmota", "mqtt"): TasmotaGateway,
    ("generic", "mqtt"): GenericMqttGateway,
    ("system_monitoring", ""): SystemMonitor,  # the reference's name
    ("system_monitor", ""): SystemMonitor,
    ("esphome", ""): EspHomeGateway,
    ("philips_hue", ""): HueGateway,
}
"""(provider.type, provider.protocol.type) → plugin; "" where the provider has no protocol block."""


for (_provider_type, _protocol_type), _plugin in PLUGINS.items():
    register_gateway(_provider_type, _protocol_type)(_plugin)

__all__ = [
    "GATEWAY_TYPES",
    "PLUGINS",
    "Gateway",
    "GatewayContext",
    "build_gateway",
    "register_gateway",
]
