"""A Philips Hue gateway's options, in the reference's shape, checked when the gateway is built.

::

    provider:
      type: philips_hue
      host: 192.168.1.2            # the bridge (host or host:port)
      applicationKey: "…"          # written by `python -m edge pair-hue`; the reference's `username` is read too
      syncInterval: 15m            # a full read of the bridge besides its event stream (only changes go up)
      timeout: 10s                 # connect and request timeout
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from ...errors import EdgeError
from ..util import parse_duration, reconnect_delay

DEFAULT_SYNC_S: Final = 15 * 60.0
DEFAULT_TIMEOUT_S: Final = 10.0


class HueConfigError(EdgeError, ValueError):
    """Hue options that cannot work; the message says what to do."""


@dataclass(frozen=True, slots=True)
class HueSettings:
    host: str
    app_key: str
    sync_s: float
    timeout_s: float
    reconnect_cap_s: float


def parse_settings(config: dict[str, Any]) -> HueSettings:
    provider = config.get("provider") or {}
    host = str(provider.get("host") or "").strip()
    for scheme in ("https://", "http://"):
        host = host.removeprefix(scheme)
    host = host.rstrip("/")
    if not host:
        raise HueConfigError("provider.host is required: the bridge's address (see the Hue app, or "
                             "https://discovery.meethue.com)")
    key = str(provider.get("applicationKey") or provider.get("username") or "").strip()
    if not key:
        raise HueConfigError(f"provider.applicationKey is missing: pair with the bridge first "
                             f"(python -m edge pair-hue --host {host} --config <edge.yaml>)")
    return HueSettings(host=host, app_key=key,
                       sync_s=max(10.0, parse_duration(provider.get("syncInterval"), DEFAULT_SYNC_S)),
                       timeout_s=max(1.0, parse_duration(provider.get("timeout"), DEFAULT_TIMEOUT_S)),
                       reconnect_cap_s=reconnect_delay(config))
