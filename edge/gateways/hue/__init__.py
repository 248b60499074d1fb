"""Philips Hue bridges over CLIP v2 (``aiohue``): lights, rooms and zones, sensors and buttons.

``config`` reads the gateway's options, ``resources`` places each bridge resource on a node and source,
``gateway`` keeps the bridge connection and its event stream, ``pairing`` gets the application key by the
bridge's link button (``python -m edge pair-hue``).
"""

from __future__ import annotations

from .config import HueConfigError, HueSettings, parse_settings
from .gateway import HueCommandRefused, HueGateway

__all__ = ["HueCommandRefused", "HueConfigError", "HueGateway", "HueSettings", "parse_settings"]
