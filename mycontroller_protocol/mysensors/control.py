"""Control downlinks: what the cloud tells the edge's MySensors gateway itself, rather than a node.

A control downlink travels as any downlink of the gateway, with a JSON object as its ``raw`` (no MySensors line can
be mistaken for one: a line starts with a digit), ``{"ctl": <kind>, "node": <node id>, ...}``:

* ``ota``: a firmware assigned to a node (``firmware``, ``type``, ``version``, ``checksum`` ``sha256:<hex>`` of the
  file, ``size``, ``url`` where to fetch it once, ``urlExpires`` epoch ms, ``reboot``: reboot the node once the
  firmware is at hand), or ``erase: true`` (the next firmware config request is answered with an EEPROM erase);
  served by ``edge/gateways/mysensors/ota.py``.
* ``sleep``: the node's sleep mode from its labels: ``sleep`` true/false (label ``sleep_node``; ``null``: as the
  edge saw it), ``pinned`` (label ``ignore_sleep_node``: the node's own sleep notices and presentations no longer
  change it).
"""

from __future__ import annotations

import json
from typing import Any, Final

from ..errors import ProtocolError

CONTROL_OTA: Final = "ota"
CONTROL_SLEEP: Final = "sleep"


class ControlError(ProtocolError, ValueError):
    """A control downlink that cannot be read."""


def control(kind: str, node_id: str, **fields: Any) -> str:
    """The ``raw`` of a control downlink."""
    return json.dumps({"ctl": kind, "node": str(node_id), **fields}, separators=(",", ":"))


def ota_control(node_id: str, **fields: Any) -> str:
    return control(CONTROL_OTA, node_id, **fields)


def sleep_control(node_id: str, *, sleep: bool | None, pinned: bool) -> str:
    return control(CONTROL_SLEEP, node_id, sleep=sleep, pinned=pinned)


def read_control(raw: str) -> dict[str, Any] | None:
    """A control downlink's object, or ``None`` when ``raw`` is a device line."""
    text = raw.lstrip()
    if not text.startswith("{"):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        raise ControlError("a control downlink is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("ctl"), str):
        raise ControlError("a control downlink is an object with 'ctl'")
    node = str(data.get("node") or "")
    if not (node.isascii() and node.isdigit() and int(node) < 255):
        raise ControlError(f"a control downlink names a node id 0-254, got {node!r}")
    data["node"] = node
    return data
