"""Tasmota's own discovery messages → a node's name, its relays' names and how to reach it.

Tasmota (``SetOption19 0``, the default since 9.2) publishes, retained, on ``tasmota/discovery/<MAC>/config``::

    {"ip": "192.168.1.50", "dn": "Kitchen Plug", "fn": ["Kettle", null, …], "hn": "kitchen-plug-1234",
     "mac": "A4CF12ABCDEF", "md": "Sonoff Basic", "sw": "13.2.0", "t": "tasmota_ABCDEF", "ft": "%prefix%/%topic%/",
     "tp": ["cmnd", "stat", "tele"], "rl": [1, 0, …], "lt_st": 0, "bat": 0, "dslp": 0, "state": ["OFF", "ON", …],
     "so": {"4": 0, …}, "ver": 1}

``dn`` is the device name, ``fn`` the friendly name of each relay (``FriendlyName1..8``), ``rl`` each relay's kind
(0 none, 1 relay, 2 light, 3 shutter), ``t`` the device's ``%topic%``, ``ft`` its FullTopic and ``tp`` its three
prefixes (command, stat, tele). The node is ``t`` (as for its other messages); it is named ``dn`` (the first
``fn`` without one); ``others`` get the relay names by POWER field (``POWER`` alone on a one-relay device, else
``POWER1..n``), the address, host name, MAC, module, light type and the topic facts, so commands reach the device
before it has sent anything else. The edge sends a config once more with the relay states it then sees
(``"power": {"POWER1": "ON"}``): those become the relays' fields, named with their friendly names.

``tasmota/discovery/<MAC>/sensors`` (``{"sn": {<a SENSOR message>}, "ver": 1}``, with ``t`` added by the edge,
which knows the MAC's config) announces the device's sensors as sources; its values, a snapshot of the device's
start, are not taken as readings.
"""

from __future__ import annotations

from typing import Any, Final

from mycontroller_protocol.tasmota.codec import FULL_TOPIC_KEY, TOPIC_KEY, decode_object, sanitize_id

from ...ops import FieldValue, InterpretError, NodeInfo, Op, SourceInfo

CONTROL: Final = "Control"
DEFAULT_PREFIXES: Final = ["cmnd", "stat", "tele"]
LIGHT_TYPES: Final = {1: "dimmer", 2: "cold_warm", 3: "rgb", 4: "rgbw", 5: "rgbcw"}
_RELAY_KINDS: Final = {1: "relay", 2: "light", 3: "shutter"}
_SENSOR_SKIP: Final = frozenset({"Time", "TempUnit", "PressureUnit", "SpeedUnit", "Epoch"})
_PLAIN: Final = {"hn": "hostname", "md": "module"}


def is_discovery_topic(topic: str) -> bool:
    """``…/discovery/<MAC>/config`` or ``…/sensors``."""
    parts = topic.rsplit("/", 3)
    return len(parts) == 4 and parts[1] == "discovery" and parts[3] in ("config", "sensors") and bool(parts[2])


def interpret_discovery(topic: str, raw: str) -> list[Op]:
    """The operations of one discovery message; ``InterpretError`` naming the topic when it cannot be read."""
    try:
        data = decode_object(raw, topic)
    except ValueError as error:
        raise InterpretError(str(error)) from None
    device = data.get("t")
    if not isinstance(device, str) or not sanitize_id(device):
        raise InterpretError(f"Tasmota {topic}: a discovery message needs the device's topic 't'")
    node = sanitize_id(device)
    if topic.endswith("/sensors"):
        return _sensors(node, data, topic)
    return _config(node, device, data)


def _names(data: dict[str, Any]) -> list[str | None]:
    names = data.get("fn")
    return [name if isinstance(name, str) and name else None for name in names] if isinstance(names, list) else []


def _relays(data: dict[str, Any]) -> dict[str, str]:
    """POWER field → kind, as Tasmota numbers them: ``POWER`` alone when the device has one."""
    kinds = data.get("rl")
    present = [(index, kind) for index, kind in enumerate(kinds if isinstance(kinds, list) else [])
               if isinstance(kind, int) and not isinstance(kind, bool) and kind > 0]
    if len(present) == 1 and present[0][0] == 0:
        return {"POWER": _RELAY_KINDS.get(present[0][1], "relay")}
    return {f"POWER{index + 1}": _RELAY_KINDS.get(kind, "relay") for index, kind in present}


def _relay_names(data: dict[str, Any], relays: dict[str, str]) -> dict[str, str]:
    names = _names(data)
    out: dict[str, str] = {}
    for key in relays:
        index = int(key[5:] or 1) - 1
        name = names[index] if index < len(names) else None
        if name:
            out[key] = name
    return out


def _others(device: str, data: dict[str, Any], relays: dict[str, str], relay_names: dict[str, str]) -> dict[str, Any]:
    others: dict[str, Any] = {TOPIC_KEY: device}
    full_topic = data.get("ft")
    if isinstance(full_topic, str) and "%prefix%" in full_topic and "%topic%" in full_topic:
        others[FULL_TOPIC_KEY] = full_topic
    prefixes = data.get("tp")
    if isinstance(prefixes, list) and prefixes and prefixes != DEFAULT_PREFIXES:
        others["tasmota_prefixes"] = prefixes
    names = [name for name in _names(data) if name]
    if names:
        others["friendly_name"] = names[0]
    ip = data.get("ip")
    if isinstance(ip, str) and ip not in ("", "0.0.0.0"):
        others["ip_address"] = ip
        others["node_web_url"] = f"http://{ip}"
    mac = data.get("mac")
    if isinstance(mac, str) and len(mac) == 12:
        others["mac"] = ":".join(mac[i:i + 2] for i in range(0, 12, 2)).upper()
    for key, target in _PLAIN.items():
        if isinstance(data.get(key), str) and data[key]:
            others[target] = data[key]
    if relays:
        others["relays"] = relays
    if relay_names:
        others["relay_names"] = relay_names
    light = data.get("lt_st")
    if isinstance(light, int) and light in LIGHT_TYPES:
        others["light_type"] = LIGHT_TYPES[light]
    for key, target in (("bat", "battery_powered"), ("dslp", "deep_sleep")):
        if data.get(key) in (0, 1):
            others[target] = bool(data[key])
    return others


def _config(node: str, device: str, data: dict[str, Any]) -> list[Op]:
    relays = _relays(data)
    relay_names = _relay_names(data, relays)
    device_name = data.get("dn")
    first = next((name for name in _names(data) if name), None)
    name = device_name if isinstance(device_name, str) and device_name else first
    version = data.get("sw")
    labels = {"version": version} if isinstance(version, str) and version else {}
    ops: list[Op] = [NodeInfo(node, name=name, labels=labels, others=_others(device, data, relays, relay_names))]
    power = data.get("power")  # added by the edge: the relay states it saw after this config
    if isinstance(power, dict):
        for key, value in power.items():
            if key in relays and isinstance(value, str) and value:
                ops.append(FieldValue(node, CONTROL, key, value, "binary", name=relay_names.get(key, "")))
    return ops


def _sensors(node: str, data: dict[str, Any], topic: str) -> list[Op]:
    sensors = data.get("sn")
    if not isinstance(sensors, dict):
        raise InterpretError(f"Tasmota {topic}: a discovery sensors message needs 'sn', an object")
    ops: list[Op] = []
    for key, value in sensors.items():
        source = sanitize_id(key)
        if key in _SENSOR_SKIP or not isinstance(value, dict) or not source:
            continue
        sensor_id = value.get("Id")
        labels = {"sensor_id": str(sensor_id)} if isinstance(sensor_id, str | int) and not isinstance(
            sensor_id, bool) else {}
        ops.append(SourceInfo(node, source, labels=labels))
    return ops
