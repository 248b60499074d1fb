"""An ESPHome gateway's options, in the reference's shape, checked when the gateway is built.

::

    provider:
      type: esphome
      password: ""                 # the API password of every node that sets none (ESPHome < 2026.1)
      encryptionKey: "base64…"     # the api.encryption.key of every node that sets none
      timeout: 5s                  # connect and request timeout
      aliveCheckInterval: 15s      # ping interval; a device that does not answer is reconnected
      discovery: false             # also connect to devices found by mDNS (_esphomelib._tcp), with the keys above
      discoveryInterfaces: []      # addresses of the interfaces to browse on (default: all)
      nodes:
        kitchen:                   # the node id (letters, digits, _ - : @ ~)
          address: 192.168.1.60    # host or host:port (native API port 6053)
          encryptionKey: "base64…" # this device's own key (or password); else the global one
          useGlobalEncryptionKey: true
          useGlobalPassword: true
          disabled: false
          timeout: 5s
          aliveCheckInterval: 15s

A wrong key is reported when the gateway is built, so the user sees it at once, not after the first connect.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from typing import Any, Final

from mycontroller_protocol.ids import ID_PATTERN

from ...errors import EdgeError
from ..util import parse_duration, reconnect_delay

DEFAULT_PORT: Final = 6053
DEFAULT_TIMEOUT_S: Final = 5.0
DEFAULT_ALIVE_CHECK_S: Final = 15.0


class EspHomeConfigError(EdgeError, ValueError):
    """ESPHome options that cannot work; the message names the node and the key."""


@dataclass(frozen=True, slots=True)
class EspHomeNodeConfig:
    """How to reach one device."""

    node_id: str
    host: str
    port: int = DEFAULT_PORT
    password: str | None = None
    encryption_key: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    alive_check_s: float = DEFAULT_ALIVE_CHECK_S
    discovered: bool = False

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class EspHomeSettings:
    nodes: tuple[EspHomeNodeConfig, ...]
    password: str | None
    encryption_key: str | None
    timeout_s: float
    alive_check_s: float
    discovery: bool
    reconnect_cap_s: float
    discovery_interfaces: tuple[str, ...] = ()

    def discovered_node(self, node_id: str, host: str, port: int) -> EspHomeNodeConfig:
        """A device found by mDNS, reached with the global password and key."""
        return EspHomeNodeConfig(node_id, host, port, self.password, self.encryption_key, self.timeout_s,
                                 self.alive_check_s, discovered=True)


def split_address(address: str, where: str) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[v6]:port`` → (host, port)."""
    text = address.strip()
    if not text:
        raise EspHomeConfigError(f"{where}: address is required (host or host:port)")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""  # a bare host or a bare IPv6 address
    if not host:
        raise EspHomeConfigError(f"{where}: no host in address {address!r}")
    if not port_text:
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise EspHomeConfigError(f"{where}: port of address {address!r} must be 1-65535")
    return host, int(port_text)


def check_key(key: str | None, where: str) -> str | None:
    """The API encryption key as ESPHome prints it: base64 of 32 bytes."""
    if key is None or key == "":
        return None
    try:
        raw = binascii.a2b_base64(key.strip())
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise EspHomeConfigError(f"{where}: encryptionKey must be the base64 32-byte key of the device's "
                                 "'api: encryption: key:'")
    return key.strip()


def _text(value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str | int):
        raise EspHomeConfigError(f"{where} must be text")
    return str(value)


def _flag(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def parse_settings(config: dict[str, Any]) -> EspHomeSettings:
    """The gateway config (the reference's shape) → settings; ``EspHomeConfigError`` naming what is wrong."""
    provider = config.get("provider") or {}
    password = _text(provider.get("password"), "provider.password")
    key = check_key(_text(provider.get("encryptionKey"), "provider.encryptionKey"), "provider")
    timeout = max(0.5, parse_duration(provider.get("timeout"), DEFAULT_TIMEOUT_S))
    alive = max(1.0, parse_duration(provider.get("aliveCheckInterval"), DEFAULT_ALIVE_CHECK_S))
    discovery = _flag(provider.get("discovery"), False)
    raw_nodes = provider.get("nodes") or {}
    if isinstance(raw_nodes, list):  # also accepted: a list of {id: …, address: …}
        listed: dict[str, Any] = {}
        for index, item in enumerate(raw_nodes):
            if not isinstance(item, dict) or not item.get("id"):
                raise EspHomeConfigError(f"provider.nodes[{index}] needs an 'id'")
            listed[str(item["id"])] = item
        raw_nodes = listed
    if not isinstance(raw_nodes, dict):
        raise EspHomeConfigError("provider.nodes must map node ids to {address: …}")
    nodes = []
    for node_id, item in raw_nodes.items():
        where = f"provider.nodes.{node_id}"
        if not ID_PATTERN.match(str(node_id)):
            raise EspHomeConfigError(f"{where}: node id must be 1-128 letters, digits, '_', '-', ':', '@' or '~'")
        if not isinstance(item, dict):
            raise EspHomeConfigError(f"{where} must be an object with an 'address'")
        if _flag(item.get("disabled"), False):
            continue
        host, port = split_address(str(item.get("address") or ""), where)
        own_password = _text(item.get("password"), f"{where}.password")
        own_key = check_key(_text(item.get("encryptionKey"), f"{where}.encryptionKey"), where)
        use_password = _flag(item.get("useGlobalPassword"), True)
        use_key = _flag(item.get("useGlobalEncryptionKey"), True)
        nodes.append(EspHomeNodeConfig(
            node_id=str(node_id), host=host, port=port,
            password=own_password if own_password is not None else (password if use_password else None),
            encryption_key=own_key if own_key is not None else (key if use_key else None),
            timeout_s=max(0.5, parse_duration(item.get("timeout"), timeout)),
            alive_check_s=max(1.0, parse_duration(item.get("aliveCheckInterval"), alive)),
        ))
    if not nodes and not discovery:
        raise EspHomeConfigError("provider.nodes names no (enabled) device and discovery is off: nothing to connect to")
    interfaces = provider.get("discoveryInterfaces") or []
    if not isinstance(interfaces, list) or not all(isinstance(i, str) for i in interfaces):
        raise EspHomeConfigError("provider.discoveryInterfaces must be a list of interface addresses")
    return EspHomeSettings(tuple(nodes), password, key, timeout, alive, discovery, reconnect_delay(config),
                           tuple(interfaces))
