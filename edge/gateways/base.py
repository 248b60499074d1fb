"""The gateway plugin interface: what the agent gives a gateway (its context) and what a gateway does.

A gateway talks to one device network (a MySensors serial gateway, a Tasmota broker…). It hands every device
message to ``ctx.emit`` (which wraps it in an envelope and makes it durable in the spool) and writes downlinks
to the device in ``send``. Plugins register under ``<provider.type>`` or ``<provider.type>/<protocol.type>``.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, Protocol, TypeVar

from mycontroller_protocol.envelope import Downlink

from ..errors import EdgeError


class GatewayContext(Protocol):
    gateway_id: str
    provider: str

    def emit(self, raw: str, topic: str | None = None, *, command: bool = False) -> None:
        """Wrap a device message in an envelope (timestamp now, next per-gateway sequence, message id) and put it
        in the spool. Thread-safe, fast, synchronous. Called on the agent's loop, the message is committed with the
        others of the same loop turn, before the agent reads more or publishes; from another thread, before it
        returns. ``command=True`` marks messages the spool must never drop when full (only telemetry is evicted)."""
        ...

    def set_state(self, status: str, message: str = "") -> None:
        """Report gateway state (up/down/error + message) to the cloud (an envelope with provider ``edge`` and raw
        JSON ``{"type": "gateway_state", "status": ..., "message": ...}``) and keep it for ``status``."""
        ...

    @property
    def logger(self) -> logging.Logger: ...


class Gateway(ABC):
    provider: ClassVar[str]
    """The provider name envelopes carry: ``mysensors_v2``, ``tasmota``, ``mc_json``."""

    def __init__(self, gateway_id: str, config: dict[str, Any], ctx: GatewayContext) -> None:
        self.gateway_id = gateway_id
        self.config = config
        self.ctx = ctx

    @abstractmethod
    async def run(self) -> None:
        """Connect, read forever, reconnect with backoff; returns only when cancelled."""

    @abstractmethod
    async def send(self, downlink: Downlink) -> None:
        """Write one downlink to the device (may hold it for a sleeping node)."""

    def status(self) -> dict[str, Any]:
        """Connection state and counters for ``python -m edge status``."""
        return {}


class GatewayConfigError(EdgeError, ValueError):
    """A gateway configuration that names no known plugin or lacks what the plugin needs."""


GatewayFactory = Callable[[str, dict[str, Any], GatewayContext], Gateway]
GATEWAY_TYPES: dict[str, GatewayFactory] = {}

_G = TypeVar("_G", bound=type[Gateway])


def register_gateway(provider_type: str, protocol_type: str = "") -> Callable[[_G], _G]:
    """Register a plugin class for ``provider.type`` (and ``provider.protocol.type`` when it matters)."""

    def decorate(cls: _G) -> _G:
        GATEWAY_TYPES[f"{provider_type}/{protocol_type}" if protocol_type else provider_type] = cls
        return cls

    return decorate


def gateway_key(config: dict[str, Any]) -> tuple[str, str]:
    provider = config.get("provider") or {}
    if not isinstance(provider, dict) or not provider.get("type"):
        raise GatewayConfigError("gateway config needs provider.type")
    protocol = provider.get("protocol") or {}
    protocol_type = protocol.get("type", "") if isinstance(protocol, dict) else ""
    return str(provider["type"]), str(protocol_type)


def build_gateway(gateway_id: str, config: dict[str, Any], ctx: GatewayContext) -> Gateway:
    """The plugin for a gateway config, by ``provider.type`` and ``provider.protocol.type``."""
    provider_type, protocol_type = gateway_key(config)
    factory = GATEWAY_TYPES.get(f"{provider_type}/{protocol_type}") or GATEWAY_TYPES.get(provider_type)
    if factory is None:
        known = ", ".join(sorted(GATEWAY_TYPES)) or "none"
        raise GatewayConfigError(
            f"gateway {gateway_id!r}: no plugin for provider.type={provider_type!r} protocol.type={protocol_type!r} "
            f"(known: {known})")
    return factory(gateway_id, config, ctx)
