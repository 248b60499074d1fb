"""Outbound actions: what the API (and later automation) sends to devices, as provider-native downlinks.

Pure functions: records in, ``Downlink``s out. Looking records up, sending and announcing are the caller's job.
Follows MyController v2's actions (set a field, also ``toggle``; node actions; gateway discover) and its
per-provider wire forms:

* MySensors (``mysensors_v2``): a line ``node;child;command;ack;type;payload``. Set field →
  ``node;source;1;0;<V_ id>;<value>`` (binary as 1/0; at most 25 characters, what a radio message carries; no
  ';' unless the gateway speaks MQTT). Node actions are internal messages to child 255:
  reboot ``I_REBOOT`` (13), heartbeat_request ``I_HEARTBEAT_REQUEST`` (18), refresh_node_info
  ``I_PRESENTATION`` (19). ``reset`` is the reference's EEPROM erase, which only the MYSBootloader can do: the
  node gets the label ``ms_erase_eeprom=true`` (``reset_node_labels``), the edge a control downlink
  (``erase_eeprom``) and the node an ``I_REBOOT``; when its bootloader then asks for its firmware config, the edge
  answers with the erase command. ``firmware_update`` is a control downlink (``firmware_assignment``): the edge
  fetches the node's assigned firmware from the URL it names, reboots the node and serves its bootloader the
  blocks (``mycontroller_protocol.mysensors.firmware``, ``edge/gateways/mysensors/ota.py``). Gateway ``discover_nodes``
  → ``I_DISCOVER_REQUEST`` (20) broadcast ``255;255;3;0;20;``. A node's sleep mode set from its labels is a
  control downlink too (``sleep_mode``).
* Tasmota: topic ``cmnd/<node>/<command>`` with a plain payload. Set field → ``cmnd/<node>/<fieldId>`` (binary
  as ON/OFF); heartbeat_request ``STATUS 1``; reboot ``Restart 1``; refresh_node_info ``STATUS 0``; reset
  ``Reset 6`` (erase flash settings but keep Wi-Fi and MQTT, as the reference does). No discover.
* ``mc_json`` (generic JSON devices): set field → ``{"n", "s", "f", "v"}``; no node or gateway actions.
* ESPHome (``esphome``): set field → ``{"n", "s", "f", "v"}`` with the value in ESPHome's units
  (``mycontroller_protocol.esphome``: percent → 0..1, ``#rrggbb`` → three channels…); the edge finds the entity.
  Node actions ``{"n", "a"}``: heartbeat_request, reboot (the device's restart button), refresh_node_info.
* Philips Hue (``philips_hue``): set ``on``, ``brightness``, ``color_temperature`` (mirek) or ``color``
  (``#rrggbb`` or ``x,y`` → CIE xy) of a light or room → ``{"n", "s", "f", "v"}``
  (``mycontroller_protocol/hue/codec.py``); node action refresh_node_info.

``Downlink.key`` names the target (``<node>;<child>;<type>`` for MySensors, ``<node>;<command>`` for Tasmota) so
that the edge's sleep queue replaces an older command for the same target with a newer one.
"""

from __future__ import annotations

import json
from typing import Any, Final

from mycontroller_protocol.envelope import Downlink
from mycontroller_protocol.mysensors.protocol import BROADCAST, INTERNAL_CHILD, Command, Internal
from mycontroller_protocol.values import ConversionError, convert_value, to_binary

from .errors import DomainError
from .model import MetricType, Record

MYSENSORS: Final = "mysensors_v2"
TASMOTA: Final = "tasmota"
MC_JSON: Final = "mc_json"
ESPHOME: Final = "esphome"
HUE: Final = "philips_hue"

PROVIDER_ALIASES: Final[dict[str, str]] = {
    "mysensors_v2": MYSENSORS,
    "mysensors": MYSENSORS,
    "tasmota": TASMOTA,
    "mc_json": MC_JSON,
    "generic": MC_JSON,
    "esphome": ESPHOME,
    "philips_hue": HUE,
    "hue": HUE,
}
"""Gateway ``provider.type`` (the reference's names, or the envelope provider the processor records) → the
provider whose downlink form we build."""

TOGGLE: Final = "toggle"

NODE_ACTIONS: Final = ("heartbeat_request", "reboot", "refresh_node_info", "reset", "firmware_update")
"""Node actions we send. ``firmware_update`` reboots a MySensors node (its bootloader then asks for the firmware its
``assigned_firmware`` label names, as the reference says a reboot does) and sends Tasmota ``Upgrade 1``."""
GATEWAY_ACTIONS: Final = ("discover_nodes",)

ERASE_EEPROM_LABEL: Final = "ms_erase_eeprom"
"""Node label the reference sets for ``reset``: the next firmware config request is answered with an erase."""

_MS_NODE_ACTIONS: Final[dict[str, int]] = {
    "reboot": Internal.I_REBOOT,
    "heartbeat_request": Internal.I_HEARTBEAT_REQUEST,
    "refresh_node_info": Internal.I_PRESENTATION,
    "reset": Internal.I_REBOOT,
    "firmware_update": Internal.I_REBOOT,
}
_TASMOTA_NODE_ACTIONS: Final[dict[str, tuple[str, str]]] = {
    "heartbeat_request": ("STATUS", "1"),
    "reboot": ("Restart", "1"),
    "refresh_node_info": ("STATUS", "0"),
    "reset": ("Reset", "6"),
    "firmware_update": ("Upgrade", "1"),
}


class ActionError(DomainError, ValueError):
    """An action that cannot be turned into a device message; ``field`` names the input at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# --------------------------------------------------------------------------------------------- helpers


def provider_of(gateway: Record) -> str:
    """The provider a gateway's downlinks are built for; ``ActionError`` when it takes no actions."""
    provider = gateway.get("provider")
    raw = provider.get("type") if isinstance(provider, dict) else None
    name = PROVIDER_ALIASES.get(str(raw or "").strip().lower())
    if name is None:
        raise ActionError(f"gateway {gateway.get('id')!r} has provider {raw!r}, which takes no actions; "
                          f"supported: {', '.join(sorted(PROVIDER_ALIASES))}", "provider")
    return name


def resolve_payload(field: Record, payload: Any) -> Any:
    """The value to send: ``toggle`` flips a binary field's current value; others are converted to the field's
    metric type (``ActionError`` naming the payload when they do not fit)."""
    metric_type = str(field.get("metricType") or MetricType.NONE)
    if isinstance(payload, str) and payload.strip().lower() == TOGGLE:
        if metric_type != MetricType.BINARY:
            raise ActionError(f"toggle needs a binary field; {field.get('id')!r} is {metric_type}", "payload")
        current = field.get("current")
        value = current.get("value") if isinstance(current, dict) else None
        try:
            return not to_binary(value) if value is not None else True
        except ConversionError:
            return True  # an unreadable stored value counts as off: toggling turns it on
    if payload is None or isinstance(payload, dict | list):
        raise ActionError(f"payload must be a string, number or boolean, got {json.dumps(payload)}", "payload")
    try:
        value = convert_value(payload, metric_type)
    except ConversionError as error:
        raise ActionError(f"payload {payload!r} does not fit field {field.get('id')!r}: {error}", "payload") from None
    if value is None:
        raise ActionError("payload must not be empty", "payload")
    return value


def _ms_id(value: Any, what: str, *, allow_broadcast: bool = False) -> int:
    text = str(value)
    top = BROADCAST if allow_broadcast else BROADCAST - 1
    if not (text.isascii() and text.isdigit()) or not 0 <= int(text) <= top:
        raise ActionError(f"MySensors {what} must be a number 0-{top}, got {text!r}", what)
    return int(text)


def _ms_line(node: int, child: int, command: int, type_id: int, payload: str) -> str:
    """One line without its newline (the edge frames it for serial, TCP or MQTT), ack not requested; the codec
    refuses anything its own decoder could not read back."""
    from mycontroller_protocol.mysensors.codec import MySensorsMessage, encode_line

    try:
        return encode_line(MySensorsMessage(node, child, command, False, type_id, payload)).rstrip("\n")
    except ValueError as error:
        raise ActionError(f"cannot build a MySensors message: {error}", "payload") from None


def _ms_value_id(field_id: str) -> int:
    from mycontroller_protocol.mysensors.protocol import value_id

    try:
        return int(value_id(field_id))
    except (KeyError, ValueError):
        raise ActionError(f"field id {field_id!r} is not a MySensors V_ type", "fieldId") from None


def _ms_serial(gateway: Record) -> bool:
    """Whether the gateway reads lines (serial, ethernet), where a payload cannot hold ';'; MQTT gateways can."""
    provider = gateway.get("provider")
    protocol = provider.get("protocol") if isinstance(provider, dict) else None
    kind = protocol.get("type") if isinstance(protocol, dict) else None
    return str(kind or "").strip().lower() != "mqtt"


def _ms_payload(value: Any, metric_type: str, serial: bool) -> str:
    from mycontroller_protocol.mysensors.codec import RADIO_PAYLOAD, encode_value

    try:
        text = str(encode_value(value, metric_type, serial=serial))
    except ValueError as error:  # CodecError is a ValueError: a line break, ';' on a serial line, not binary
        raise ActionError(f"payload cannot be sent to a MySensors node: {error}", "payload") from None
    if len(text) > RADIO_PAYLOAD:
        raise ActionError(f"payload is {len(text)} characters; a MySensors radio message carries {RADIO_PAYLOAD}",
                          "payload")
    return text


def _tasmota_text(value: Any, metric_type: str) -> str:
    if metric_type == MetricType.BINARY:
        return "ON" if value else "OFF"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _tasmota_segment(value: Any, what: str) -> str:
    text = str(value)
    if not text or any(c in text for c in "/+#") or any(c.isspace() for c in text):
        raise ActionError(f"Tasmota {what} {text!r} cannot be part of an MQTT topic", what)
    return text


# --------------------------------------------------------------------------------------------- actions


def set_field(gateway: Record, field: Record, payload: Any) -> Downlink:
    """The message that sets a field on its device (``payload`` may be ``toggle``)."""
    provider = provider_of(gateway)
    value = resolve_payload(field, payload)
    metric_type = str(field.get("metricType") or MetricType.NONE)
    gateway_id = str(gateway["id"])
    node_id, source_id, field_id = str(field["nodeId"]), str(field["sourceId"]), str(field["fieldId"])
    if provider == MYSENSORS:
        node = _ms_id(node_id, "nodeId")
        child = _ms_id(source_id, "sourceId", allow_broadcast=True)
        type_id = _ms_value_id(field_id)
        raw = _ms_line(node, child, Command.SET, type_id, _ms_payload(value, metric_type, _ms_serial(gateway)))
        return Downlink(gateway_id, MYSENSORS, raw, node_id=str(node), key=f"{node};{child};{type_id}")
    if provider == TASMOTA:
        device = _tasmota_segment(node_id, "nodeId")
        command = _tasmota_segment(field_id, "fieldId")
        return Downlink(gateway_id, TASMOTA, _tasmota_text(value, metric_type), node_id=device,
                        key=f"{device};{command}", topic=f"cmnd/{device}/{command}")
    if provider in (ESPHOME, HUE):
        return _device_api_set(provider, gateway_id, node_id, source_id, field_id, metric_type, value)
    raw = json.dumps({"n": node_id, "s": source_id, "f": field_id, "v": value}, separators=(",", ":"))
    return Downlink(gateway_id, MC_JSON, raw, node_id=node_id, key=f"{node_id};{source_id};{field_id}")


def _device_api_set(provider: str, gateway_id: str, node_id: str, source_id: str, field_id: str, metric_type: str,
                    value: Any) -> Downlink:
    """ESPHome and Hue: the value in the device's own terms, checked here so that the API refuses a bad one."""
    if provider == ESPHOME:
        from mycontroller_protocol.esphome import codec as esphome
        try:
            raw = esphome.command_raw(node_id, source_id, field_id, esphome.command_value(field_id, metric_type,
                                                                                            value))
        except esphome.EspHomeCommandError as error:
            raise ActionError(str(error), "payload") from None
    else:
        from mycontroller_protocol.hue import codec as hue
        try:
            raw = hue.command_raw(node_id, source_id, field_id, hue.command_value(field_id, value))
        except hue.HueCommandError as error:
            raise ActionError(str(error), "payload") from None
    return Downlink(gateway_id, provider, raw, node_id=node_id, key=f"{node_id};{source_id};{field_id}")


def node_action(gateway: Record, node: Record, action: str) -> Downlink:
    """The message for a node action (``NODE_ACTIONS``). For ``reset`` also store ``reset_node_labels(node)``."""
    if action not in NODE_ACTIONS:
        raise ActionError(f"unknown node action {action!r}; expected one of {', '.join(NODE_ACTIONS)}", "action")
    provider = provider_of(gateway)
    gateway_id = str(gateway["id"])
    if provider == MYSENSORS:
        node_number = _ms_id(node["nodeId"], "nodeId")
        type_id = int(_MS_NODE_ACTIONS[action])
        raw = _ms_line(node_number, INTERNAL_CHILD, Command.INTERNAL, type_id, "")
        return Downlink(gateway_id, MYSENSORS, raw, node_id=str(node_number),
                        key=f"{node_number};{INTERNAL_CHILD};{type_id}")
    if provider == TASMOTA:
        name = _tasmota_segment(node["nodeId"], "nodeId")
        command, payload = _TASMOTA_NODE_ACTIONS[action]
        return Downlink(gateway_id, TASMOTA, payload, node_id=name, key=f"{name};{command}",
                        topic=f"cmnd/{name}/{command}")
    if provider in (ESPHOME, HUE):
        from mycontroller_protocol.esphome.codec import EspHomeCommandError, node_action_raw
        from mycontroller_protocol.hue.codec import HueCommandError
        from mycontroller_protocol.hue.codec import node_action_raw as hue_node_action_raw

        node_id = str(node["nodeId"])
        try:
            raw = (node_action_raw if provider == ESPHOME else hue_node_action_raw)(node_id, action)
        except (EspHomeCommandError, HueCommandError) as error:
            raise ActionError(str(error), "action") from None
        return Downlink(gateway_id, provider, raw, node_id=node_id, key=f"{node_id};{action}")
    raise ActionError(f"provider {provider} has no node actions", "action")


def _ms_control(gateway: Record, node: Record, raw: str, what: str) -> Downlink:
    if provider_of(gateway) != MYSENSORS:
        raise ActionError(f"{what} is for MySensors gateways", "action")
    number = _ms_id(node["nodeId"], "nodeId")
    return Downlink(str(gateway["id"]), MYSENSORS, raw, node_id=str(number), key=f"{number};{what}")


def _firmware_id(firmware: Record, label_key: str) -> int:
    text = str((firmware.get("labels") or {}).get(label_key) or "").strip()
    if not (text.isascii() and text.isdigit() and int(text) <= 0xFFFF):
        raise ActionError(f"firmware {firmware.get('id')!r} needs label {label_key} (a number 0-65535) for "
                          f"MySensors, got {text!r}", "action")
    return int(text)


def firmware_assignment(gateway: Record, node: Record, firmware: Record, *, url: str,
                        url_expires_ms: int | None, refresh: bool = False) -> Downlink:
    """MySensors ``firmware_update``: the edge fetches ``firmware``'s file from ``url`` (valid until
    ``url_expires_ms``), reboots the node and serves its bootloader; the firmware needs labels ``ms_type_id`` and
    ``ms_version_id`` (what the node is told it gets) and a file. ``refresh``: only a new URL for the update the
    edge has (it asked: its URL expired before it had the file)."""
    from mycontroller_protocol.mysensors.control import ota_control

    file = firmware.get("file") or {}
    if not file.get("checksum") or not file.get("size"):
        raise ActionError(f"firmware {firmware.get('id')!r} has no file uploaded", "action")
    fields: dict[str, Any] = {
        "firmware": str(firmware["id"]), "type": _firmware_id(firmware, "ms_type_id"),
        "version": _firmware_id(firmware, "ms_version_id"), "checksum": str(file["checksum"]),
        "size": int(file["size"]), "url": url, "reboot": not refresh}
    if refresh:
        fields["refresh"] = True
    if url_expires_ms is not None:
        fields["urlExpires"] = url_expires_ms
    return _ms_control(gateway, node, ota_control(str(node["nodeId"]), **fields), "ota")


def erase_eeprom(gateway: Record, node: Record) -> Downlink:
    """MySensors ``reset``: the edge answers the node's next firmware config request with the erase command."""
    from mycontroller_protocol.mysensors.control import ota_control

    return _ms_control(gateway, node, ota_control(str(node["nodeId"]), erase=True), "erase")


def sleep_mode(gateway: Record, node: Record, *, keep_seen: bool = False) -> Downlink | None:
    """A MySensors node's sleep mode from its labels (``sleep_node``, pinned by ``ignore_sleep_node``), for the
    edge; ``keep_seen`` (not pinned, ``sleep_node`` untouched): the edge keeps what it saw of the node. ``None`` for
    other providers."""
    from mycontroller_protocol.mysensors.control import sleep_control

    from .model import label_true

    if provider_of(gateway) != MYSENSORS:
        return None
    labels = node.get("labels") or {}
    pinned = label_true(labels, "ignore_sleep_node")
    sleep = None if keep_seen and not pinned else label_true(labels, "sleep_node")
    return _ms_control(gateway, node, sleep_control(str(node["nodeId"]), sleep=sleep, pinned=pinned), "sleep")


def reset_node_labels(node: Record) -> Record:
    """The node as ``reset`` leaves it for MySensors: flagged so that its bootloader erases the EEPROM."""
    return {**node, "labels": {**(node.get("labels") or {}), ERASE_EEPROM_LABEL: "true"}}


def gateway_action(gateway: Record, action: str) -> Downlink:
    """The message for a gateway action (``GATEWAY_ACTIONS``)."""
    if action not in GATEWAY_ACTIONS:
        raise ActionError(f"unknown gateway action {action!r}; expected one of {', '.join(GATEWAY_ACTIONS)}",
                          "action")
    provider = provider_of(gateway)
    if provider != MYSENSORS:
        raise ActionError(f"provider {provider} does not support {action}", "action")
    raw = _ms_line(BROADCAST, INTERNAL_CHILD, Command.INTERNAL, Internal.I_DISCOVER_REQUEST, "")
    return Downlink(str(gateway["id"]), MYSENSORS, raw, node_id=str(BROADCAST),
                    key=f"{BROADCAST};{INTERNAL_CHILD};{int(Internal.I_DISCOVER_REQUEST)}")
