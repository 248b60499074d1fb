"""ESPHome devices over their native API (``aioesphomeapi``), several a gateway, each a node.

``config`` reads the gateway's options, ``device`` keeps one device's connection, ``entities`` maps entities and
states to the cloud's messages and commands back, ``discovery`` finds devices by mDNS (off by default).
"""

from __future__ import annotations

from .config import EspHomeConfigError, EspHomeNodeConfig, EspHomeSettings, parse_settings
from .gateway import EspHomeGateway

__all__ = ["EspHomeConfigError", "EspHomeGateway", "EspHomeNodeConfig", "EspHomeSettings", "parse_settings"]
