"""MySensors 2.x messages → processor operations, and the controller's answers to MySensors nodes.

Follows MyController v2's mapping: sensor presentation → source name and ``ms_type_string`` label; node
presentation → ``library_version``; set/request → the field named by the V_ type; internal messages →
node facts (battery level, sketch name and version, heartbeat, signal, parent, smart sleep); the controller
answers I_TIME (gateway time zone), I_CONFIG (metric or imperial) and I_ID_REQUEST (first free id).

A node is a smart-sleep node (label ``sleep_node``) from its first I_PRE_SLEEP/I_POST_SLEEP notification until it
presents itself again (a sketch re-flashed to stay awake); ``ignore_sleep_node=true`` pins the label as set.
The edge's own reports about a node travel as JSON objects beside the lines (``node_ota``: a firmware update's
state and progress, served by the edge's gateway), onto the node's ``others`` as the reference names them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mycontroller_protocol.envelope import Downlink, Envelope
from mycontroller_protocol.mysensors.codec import MAX_PAYLOAD, CodecError, decode_line, encode_value
from mycontroller_protocol.mysensors.protocol import (
    VALUE_METRIC,
    Command,
    Internal,
    Sensor,
    sensor_name,
    value_id,
    value_name,
)

from ...model import Record, iso_from_ms
from ...ops import (
    FieldRequest,
    FieldValue,
    GatewayState,
    InterpretError,
    NodeIdRequest,
    NodeInfo,
    NodeSeen,
    Op,
    Reply,
    SourceInfo,
    json_object,
)

PROVIDER = "mysensors_v2"
BROADCAST = 255
_IDS = tuple(str(i) for i in range(256))
_SET = int(Command.SET)
_REQ = int(Command.REQ)
_PRESENTATION = int(Command.PRESENTATION)
_INTERNAL = int(Command.INTERNAL)
_VALUE_NAMES = {i: value_name(i) for i in range(256)}
_VALUE_METRICS = {i: VALUE_METRIC.get(i, ("string", "")) for i in range(256)}
_REPEATER = int(Sensor.S_ARDUINO_REPEATER_NODE)
_SENSOR_NAMES: dict[int, str] = {}


def _sensor_name(type_id: int) -> str:
    name = _SENSOR_NAMES.get(type_id)
    if name is None:
        name = _SENSOR_NAMES[type_id] = sensor_name(type_id)
    return name


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def local_epoch_seconds(timezone_name: str | None, now: float | None = None) -> int:
    """Unix seconds shifted by the zone's UTC offset: MySensors nodes keep local time without zones."""
    now = time.time() if now is None else now
    zone = _zone(timezone_name) if timezone_name else None
    if zone is None:
        return int(now)
    offset = datetime.fromtimestamp(now, UTC).astimezone(zone).utcoffset()
    return int(now) + (int(offset.total_seconds()) if offset else 0)


def _answered_at_edge(provider: dict[str, Any]) -> bool:
    """The edge agent answers I_TIME and I_CONFIG at once for the gateways it runs (they have a protocol in
    their configuration); answering again from the cloud would cost a downlink and confuse the node.
    ``provider.answerAtEdge`` overrides."""
    explicit = provider.get("answerAtEdge")
    if explicit is not None:
        return bool(explicit)
    protocol = provider.get("protocol")
    return isinstance(protocol, dict) and protocol.get("type") in ("serial", "ethernet", "mqtt")


def _number(payload: str, what: str) -> float:
    try:
        return float(payload)
    except ValueError:
        raise InterpretError(f"{what} payload {payload!r} is not a number") from None


def _line(node: int | str, child: int | str, command: int, type_id: int, payload: Any) -> str:
    return f"{node};{child};{command};0;{type_id};{payload}"


class MySensorsInterpreter:
    provider = PROVIDER
    route_key_tail: Final = (";", MAX_PAYLOAD)
    """Route keys end at the last ';' and the value after it is printable and at most this long: the processor
    finds a known key by splitting the message (``core/processor/batch.py``)."""

    def __init__(self, clock: Any = time.time,
                 firmware_link: Callable[[str, str], Downlink | None] | None = None) -> None:
        self.clock = clock
        self.firmware_link = firmware_link
        """(gateway id, node id) → a control downlink with a new URL of the node's assigned firmware, for an edge
        whose URL expired before it could fetch the file (set by the composition root; ``None``: not here)."""

    @staticmethod
    def route_key(raw: str) -> tuple[str, str] | None:
        """For a set message: (``node;child;1;ack;type``, payload). The processor caches what a key means, so
        a known sensor's values skip decoding. Anything else, or anything odd (a payload holding ';' too),
        takes the full path. Runs for every message: one ``rpartition``, no list."""
        head, _sep, payload = raw.rpartition(";")
        if head.count(";") != 4 or len(payload) > MAX_PAYLOAD or not payload.isprintable():
            return None
        second = head.find(";", head.find(";") + 1)
        if head[second + 1:second + 3] != "1;":
            return None
        return head, payload

    def interpret(self, envelope: Envelope, gateway: Record) -> list[Op]:
        try:
            msg = decode_line(envelope.raw)
        except CodecError as error:
            if envelope.raw.startswith("{"):
                return edge_report(envelope, gateway, self.firmware_link)
            raise InterpretError(str(error)) from None
        command = msg.command
        node_id = msg.node_id
        node = _IDS[node_id]
        if command == _SET:
            metric_type, unit = _VALUE_METRICS[msg.type]
            return [FieldValue(node, _IDS[msg.child_id], _VALUE_NAMES[msg.type], msg.payload, metric_type, unit)]
        if node_id == BROADCAST:
            if command == _INTERNAL and msg.type == Internal.I_ID_REQUEST:
                return [NodeIdRequest()]
            return []
        if command == _REQ:
            return [FieldRequest(node, _IDS[msg.child_id], _VALUE_NAMES[msg.type])]
        if command == _PRESENTATION:
            return [self._presentation(node, msg.child_id, msg.type, msg.payload)]
        if command == _INTERNAL:
            return self._internal(gateway, node, msg.type, msg.payload)
        return [NodeSeen(node)]  # stream (firmware) traffic: the node is alive

    @staticmethod
    def _presentation(node: str, child: int, type_id: int, payload: str) -> Op:
        if child == BROADCAST:  # the node (re)starts: a smart-sleep node again once it says it sleeps
            labels: dict[str, str | None] = {"library_version": payload, "sleep_node": None,
                                             "ms_node_type": "repeater" if type_id == _REPEATER else "node"}
            return NodeInfo(node, labels=labels)
        type_name = _sensor_name(type_id)
        return SourceInfo(node, _IDS[child], name=payload or None,
                          labels={"ms_type_string": type_name, "ms_type_id": str(type_id)})

    def _internal(self, gateway: Record, node: str, type_id: int, payload: str) -> list[Op]:
        answered = self._answer(gateway, node, type_id)
        if answered is not None:
            return answered
        report = _NODE_REPORTS.get(type_id)
        if report is not None:
            return report(node, payload)
        if type_id in _CHATTER:
            return []  # the gateway's own chatter, or our own commands echoed: nothing to store
        return [NodeSeen(node)]

    def _answer(self, gateway: Record, node: str, type_id: int) -> list[Op] | None:
        """Requests the controller answers (time, unit system, registration); None for other messages."""
        provider = gateway.get("provider") or {}
        gateway_id = gateway["id"]
        if (type_id == Internal.I_TIME or type_id == Internal.I_CONFIG) and _answered_at_edge(provider):
            return [NodeSeen(node)]
        if type_id == Internal.I_TIME:
            seconds = local_epoch_seconds(provider.get("timezone"), self.clock())
            return [NodeSeen(node), Reply(self._downlink(gateway_id, node, _line(node, 255, _INTERNAL, 1, seconds)))]
        if type_id == Internal.I_CONFIG:
            system = str(provider.get("unitSystem") or provider.get("unitsConfig") or "metric").lower()
            answer = "I" if system in ("imperial", "i") else "M"
            return [NodeSeen(node),
                    Reply(self._downlink(gateway_id, node, _line(node, 255, _INTERNAL, 6, answer)))]
        if type_id == Internal.I_REGISTRATION_REQUEST:
            return [NodeSeen(node),
                    Reply(self._downlink(gateway_id, node, _line(node, 255, _INTERNAL, 27, 1)))]
        return None

    @staticmethod
    def _downlink(gateway_id: str, node: str, raw: str, key: str = "") -> Downlink:
        return Downlink(gateway_id=gateway_id, provider=PROVIDER, raw=raw, node_id=node, key=key)

    def reply_value(self, gateway: Record, field: Record) -> Downlink | None:
        try:
            type_id = value_id(field["fieldId"])
            node, child = int(field["nodeId"]), int(field["sourceId"])
        except (KeyError, ValueError):
            return None
        try:
            payload = encode_value(field["current"]["value"], field.get("metricType", "string"))
        except (CodecError, ValueError):
            return None
        raw = _line(node, child, _SET, type_id, payload)
        return self._downlink(gateway["id"], str(node), raw, key=f"{node};{child};{type_id}")

    def node_id_response(self, gateway: Record, node_id: int) -> Downlink:
        return self._downlink(gateway["id"], "255", _line(255, 255, _INTERNAL, int(Internal.I_ID_RESPONSE), node_id))


OTA_STATES: Final = frozenset({"fetching", "ready", "running", "sent", "done", "failed"})


def edge_report(envelope: Envelope, gateway: Record | None = None,
                firmware_link: Callable[[str, str], Downlink | None] | None = None) -> list[Op]:
    """What the edge says about a node: ``{"type": "node_ota", "node", "firmware", "state", "message",
    "blocksSent", "blocks"}`` (an update's progress; with ``urlRequest: true`` the edge asks for a new URL of the
    file, answered by ``firmware_link``) or ``{"type": "node_ota", "node", "eepromErased": true}``."""
    data = json_object(envelope.raw, "MySensors edge report")
    node = str(data.get("node"))
    if data.get("type") != "node_ota" or node not in _IDS[:BROADCAST]:
        raise InterpretError("a MySensors edge report is {'type': 'node_ota', 'node': <0-254>, ...}")
    at = iso_from_ms(envelope.timestamp)
    if data.get("eepromErased"):
        return [NodeInfo(node, labels={"ms_erase_eeprom": None}, others={"ota_state": "eeprom_erased",
                                                                           "ota_status_on": at})]
    state = data.get("state")
    sent, total = data.get("blocksSent"), data.get("blocks")
    if state not in OTA_STATES or not isinstance(sent, int) or not isinstance(total, int) or not 0 <= sent <= total:
        raise InterpretError(f"a node_ota report needs a state of {sorted(OTA_STATES)} and blocksSent <= blocks")
    others: dict[str, Any] = {
        "ota_state": state, "ota_running": state == "running", "ota_firmware": str(data.get("firmware") or ""),
        "ota_message": str(data.get("message") or "")[:300], "ota_blocks_sent": sent, "ota_block_total": total,
        "ota_progress": 100 if state == "done" else sent * 100 // total if total else 0, "ota_status_on": at}
    if state == "done":
        others["ota_end_time"] = at
    ops: list[Op] = [NodeInfo(node, others=others)]
    if data.get("urlRequest") is True and firmware_link is not None and gateway is not None:
        downlink = firmware_link(str(gateway["id"]), node)
        if downlink is not None:
            ops.append(Reply(downlink))
    return ops


def _battery(node: str, payload: str) -> list[Op]:
    level = _number(payload, "I_BATTERY_LEVEL")
    return [NodeInfo(node, others={"battery_level": level}, metric=("battery_level", "gauge_float", level))]


def _sleep_notice(notice: str) -> Callable[[str, str], list[Op]]:
    return lambda node, _payload: [NodeInfo(node, labels={"sleep_node": "true"}, others={"sleep_notification": notice})]


_NODE_REPORTS: Final[dict[int, Callable[[str, str], list[Op]]]] = {
    Internal.I_BATTERY_LEVEL: _battery,
    Internal.I_VERSION: lambda node, payload: [NodeInfo(node, labels={"library_version": payload})],
    Internal.I_SKETCH_NAME: lambda node, payload: [NodeInfo(node, name=payload, others={"name": payload})],
    Internal.I_SKETCH_VERSION: lambda node, payload: [NodeInfo(node, labels={"version": payload})],
    Internal.I_HEARTBEAT_RESPONSE: lambda node, payload: [NodeInfo(node, others={
        "heartbeat": _number(payload, "I_HEARTBEAT_RESPONSE") if payload else 0})],
    Internal.I_SIGNAL_REPORT_RESPONSE: lambda node, payload: [NodeInfo(node, others={
        "signal_strength": _number(payload, "I_SIGNAL_REPORT_RESPONSE")})],
    Internal.I_DISCOVER_RESPONSE: lambda node, payload: [NodeInfo(node, others={"parent_id": payload})],
    Internal.I_LOCKED: lambda node, payload: [NodeInfo(node, others={"locked": payload})],
    Internal.I_PRE_SLEEP_NOTIFICATION: _sleep_notice("pre_sleep"),
    Internal.I_POST_SLEEP_NOTIFICATION: _sleep_notice("post_sleep"),
    Internal.I_GATEWAY_READY: lambda _node, payload: [GatewayState("up", payload or "gateway ready")],
}
"""Internal messages that report something about the node (or the gateway): what each becomes."""
_CHATTER: Final = frozenset({Internal.I_LOG_MESSAGE, Internal.I_DEBUG, Internal.I_ID_RESPONSE,
                             Internal.I_INCLUSION_MODE, Internal.I_REBOOT, Internal.I_HEARTBEAT_REQUEST,
                             Internal.I_PRESENTATION, Internal.I_DISCOVER_REQUEST, Internal.I_REGISTRATION_RESPONSE})
