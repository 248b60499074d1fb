"""Tasmota MQTT messages → processor operations, after MyController v2's Tasmota provider.

* ``tele/STATE`` (and ``stat/STATUS11``'s ``StatusSTS``, ``tele/UPTIME``): source ``Control`` (POWER*, Dimmer*,
  Color, HSBColor and its three parts, CT, White, Channel1..n, Fade, Speed, Scheme…), ``WiFi`` (RSSI, Signal,
  Channel…), ``Memory`` (Heap), ``Time`` (Uptime, UptimeSec, LoadAvg, Sleep); SleepMode and MqttCount go to
  node ``others``; other objects (``Berry``) become sources of their own.
* ``stat/RESULT`` (and ``tele/RESULT``, and ``stat/<COMMAND>`` JSON with SetOption4): the same, for the keys
  present — it is how a switch or light reports a change; command errors and restart notices are skipped.
* ``tele/SENSOR`` (and ``StatusSNS``): each top-level object is a source named by its key (``ENERGY``,
  ``AM2301``, ``DS18B20-1``…), each member a field typed by its name (Temperature in ``TempUnit``, Humidity %,
  Pressure in ``PressureUnit``, Voltage V, Power W, Total kWh, ``COUNTER`` counters, ``ANALOG`` A0…); nested
  objects are flattened with '_', arrays get a 1-based index suffix (phases and channels count from 1 in
  Tasmota); a sensor's ``Id`` becomes the source label ``sensor_id``.
* ``tele/LWT``, ``tele/INFO1..3``, ``stat/STATUS..STATUS11``: node facts (name, version, IP address, web URL,
  hostname, MAC, module…).
* ``cmnd/…``: our own commands echoed by the broker; nothing to do.
* ``tasmota/discovery/<MAC>/config`` and ``…/sensors``: the node's name, its relays' names, how to reach it, its
  sensors (``discovery.py``).

Hot path: one ``json.loads`` per message, dict lookups per key, cached topic parsing, no pydantic.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from mycontroller_protocol.envelope import Downlink, Envelope
from mycontroller_protocol.tasmota.codec import (
    DEFAULT_FULL_TOPIC,
    FULL_TOPIC_KEY,
    MAX_ID_LENGTH,
    TOPIC_KEY,
    TasmotaTopic,
    TopicError,
    parse_topic,
    sanitize_id,
)

from ...model import Record
from ...ops import FieldValue, InterpretError, NodeInfo, NodeSeen, NodeState, Op, SourceInfo
from .discovery import interpret_discovery, is_discovery_topic

PROVIDER: Final = "tasmota"

CONTROL: Final = "Control"
WIFI: Final = "WiFi"
MEMORY: Final = "Memory"
TIME: Final = "Time"
SENSOR_SCALARS: Final = "Sensor"
"""Source for top-level scalars of a SENSOR message (``"Switch1":"ON"`` with a detached switch)."""

_MAX_DEPTH: Final = 6
"""Nesting levels flattened into field ids; deeper levels are no sensor's and are dropped."""
_INT_LIMIT: Final = 2**63

_STATE_FIELDS: Final[dict[str, tuple[str, str, str]]] = {
    # key: (source, metric type, unit)
    "Uptime": (TIME, "string", ""),
    "UptimeSec": (TIME, "counter", "s"),
    "LoadAvg": (TIME, "gauge", ""),
    "Sleep": (TIME, "gauge", "ms"),
    "Heap": (MEMORY, "gauge", "kB"),
    "Dimmer": (CONTROL, "gauge", "%"),
    "Color": (CONTROL, "string", ""),
    "HSBColor": (CONTROL, "string", ""),
    "White": (CONTROL, "gauge", "%"),
    "CT": (CONTROL, "gauge", "mired"),
    "Fade": (CONTROL, "binary", ""),
    "Speed": (CONTROL, "gauge", ""),
    "Scheme": (CONTROL, "gauge", ""),
    "LedTable": (CONTROL, "binary", ""),
    "Wakeup": (CONTROL, "gauge", ""),
    "FanSpeed": (CONTROL, "gauge", ""),
}
"""Keys of STATE and RESULT with a fixed place; POWER<n>, Dimmer<n>, Channel and objects are handled apart."""

_HSB_PARTS: Final = (("HSBColor1", "°"), ("HSBColor2", "%"), ("HSBColor3", "%"))
"""HSBColor split into hue, saturation and brightness: Tasmota takes each as a command of that name."""

_WIFI_FIELDS: Final[dict[str, tuple[str, str]]] = {
    "RSSI": ("gauge", "%"),
    "Signal": ("gauge", "dBm"),
    "Channel": ("gauge", ""),
    "AP": ("gauge", ""),
    "SSId": ("string", ""),
    "BSSId": ("string", ""),
    "Mode": ("string", ""),
    "LinkCount": ("counter", ""),
    "Downtime": ("string", ""),
}

_STATE_OTHERS: Final[dict[str, str]] = {"SleepMode": "sleep_mode", "MqttCount": "mqtt_count"}
"""STATE keys that describe the node rather than measure anything: node ``others``."""

_STATE_SKIP: Final = frozenset({"Time", "Epoch", "Command", "Restart", "Reset", "Upgrade", "Status"})
"""Never fields: the device clock (changes every message) and command replies that are not state."""

_TEMP: Final = "@temp"
_PRESSURE: Final = "@pressure"
_SPEED: Final = "@speed"
_SENSOR_FIELDS: Final[dict[str, tuple[str, str]]] = {
    "Temperature": ("gauge_float", _TEMP),
    "DewPoint": ("gauge_float", _TEMP),
    "HeatIndex": ("gauge_float", _TEMP),
    "Humidity": ("gauge_float", "%"),
    "Pressure": ("gauge_float", _PRESSURE),
    "SeaPressure": ("gauge_float", _PRESSURE),
    "Gas": ("gauge_float", "kΩ"),
    "Illuminance": ("gauge_float", "lx"),
    "Distance": ("gauge_float", "cm"),
    "CarbonDioxide": ("gauge_float", "ppm"),
    "CO2": ("gauge_float", "ppm"),
    "eCO2": ("gauge_float", "ppm"),
    "TVOC": ("gauge_float", "ppb"),
    "PM1": ("gauge_float", "µg/m³"),
    "PM2.5": ("gauge_float", "µg/m³"),
    "PM10": ("gauge_float", "µg/m³"),
    "Moisture": ("gauge_float", "%"),
    "Weight": ("gauge_float", "kg"),
    "Speed": ("gauge_float", _SPEED),
    "Total": ("gauge_float", "kWh"),
    "Today": ("gauge_float", "kWh"),
    "Yesterday": ("gauge_float", "kWh"),
    "ExportActive": ("gauge_float", "kWh"),
    "Period": ("gauge_float", "Wh"),
    "Power": ("gauge_float", "W"),
    "ApparentPower": ("gauge_float", "VA"),
    "ReactivePower": ("gauge_float", "VAr"),
    "Factor": ("gauge_float", ""),
    "Frequency": ("gauge_float", "Hz"),
    "Voltage": ("gauge_float", "V"),
    "Current": ("gauge_float", "A"),
    "HeapUsed": ("gauge", "kB"),
    "Objects": ("gauge", ""),
    "Range": ("gauge", ""),
}
_SENSOR_SKIP: Final = frozenset({"Time", "TempUnit", "PressureUnit", "SpeedUnit", "Epoch"})
_TEMP_UNITS: Final = {"C": "°C", "F": "°F", "K": "K"}

_COUNTER: Final = "COUNTER"
_ANALOG: Final = "ANALOG"
_ANALOG_KEY: Final = re.compile(r"^A\d+\Z")
_POWER_KEY: Final = re.compile(r"^POWER\d+\Z")
_LEVEL_KEY: Final = re.compile(r"^(?:Dimmer|Channel)\d+\Z")
"""Dimmer1/Dimmer2 (split lights) and Channel1..n: a level in percent, each also the command that sets it."""
_INFO_KEY: Final = re.compile(r"^Info\d\Z")

_FACTS_OTHERS: Final[dict[str, str]] = {
    "Module": "module",
    "Hostname": "hostname",
    "Mac": "mac",
    "Hardware": "hardware",
    "SDK": "sdk",
    "BuildDateTime": "build_date_time",
    "CpuFrequency": "cpu_frequency",
    "RestartReason": "restart_reason",
    "BootCount": "boot_count",
    "StartupUTC": "startup_utc",
    "OtaUrl": "ota_url",
    "GroupTopic": "group_topic",
    "FallbackTopic": "fallback_topic",
    "WebServerMode": "web_server_mode",
    "TelePeriod": "tele_period",
    "Timezone": "timezone",
    "MqttClient": "mqtt_client",
    "MqttHost": "mqtt_host",
    "FlashSize": "flash_size",
}
"""Device facts from STATUS and INFO messages, by Tasmota key → node ``others`` key (reference's snake case)."""
_FACTS_LABELS: Final[dict[str, str]] = {"Version": "version", "Core": "library_version"}

_STATUS_FACTS: Final = frozenset({"Status", "StatusPRM", "StatusFWR", "StatusLOG", "StatusMEM", "StatusNET",
                                  "StatusMQT", "StatusTIM"})
_NO_IP: Final = frozenset({"", "0.0.0.0"})


def _no_constant(_name: str) -> None:
    """NaN and Infinity are no readings: read them as null, which is skipped."""
    return None


_DECODER: Final = json.JSONDecoder(parse_constant=_no_constant)
"""Built once: ``json.loads`` with an option builds a decoder per call."""


class _Message:
    """What one message builds up: field operations, and node facts folded into one ``NodeInfo``."""

    __slots__ = ("labels", "name", "node", "ops", "others", "raw_topic", "topic")

    def __init__(self, topic: TasmotaTopic, raw_topic: str) -> None:
        self.topic = topic
        self.raw_topic = raw_topic
        self.node = topic.node_id
        self.ops: list[Op] = []
        self.others: dict[str, Any] = {}
        self.labels: dict[str, str] = {}
        self.name: str | None = None

    def fail(self, problem: str) -> InterpretError:
        return InterpretError(f"Tasmota {self.raw_topic}: {problem}")

    def topic_facts(self, always: bool) -> None:
        """Remember how to reach the device when its node id or FullTopic differ from what commands assume."""
        topic = self.topic
        if always or topic.device != topic.node_id or topic.full_topic != DEFAULT_FULL_TOPIC:
            self.others[TOPIC_KEY] = topic.device
            self.others[FULL_TOPIC_KEY] = topic.full_topic

    def result(self) -> list[Op]:
        ops = self.ops
        if self.others or self.labels or self.name is not None:
            ops.insert(0, NodeInfo(self.node, name=self.name, labels=self.labels, others=self.others))
        elif not ops:
            ops.append(NodeSeen(self.node))
        return ops


class TasmotaInterpreter:
    """Decodes Tasmota traffic by topic; stateless, so one instance serves every gateway."""

    provider = PROVIDER

    def interpret(self, envelope: Envelope, gateway: Record) -> list[Op]:
        topic = envelope.topic
        if not topic:
            raise InterpretError("Tasmota message has no MQTT topic")
        try:
            parsed = parse_topic(topic)
        except TopicError as error:
            if is_discovery_topic(topic):  # tasmota/discovery/<MAC>/config: no prefix level, rare
                return interpret_discovery(topic, envelope.raw)
            raise InterpretError(str(error)) from None
        prefix = parsed.prefix
        if prefix == "cmnd":
            return []  # our own command, echoed by the broker
        command = parsed.command
        msg = _Message(parsed, topic)
        if prefix == "tele":
            if command == "STATE" or command == "UPTIME":
                self._state(msg, self._object(msg, envelope.raw))
                msg.topic_facts(False)
            elif command == "SENSOR":
                self._sensor(msg, self._object(msg, envelope.raw))
                msg.topic_facts(False)
            elif command == "RESULT":
                self._state(msg, self._object(msg, envelope.raw))
                msg.topic_facts(False)
            elif command == "LWT":
                return self._lwt(msg, envelope.raw)
            elif command in ("INFO1", "INFO2", "INFO3"):
                self._info(msg, self._object(msg, envelope.raw))
                msg.topic_facts(True)
            else:
                msg.topic_facts(False)  # MARGINS, HASS_STATE…: the device is alive, nothing we map
        elif command == "RESULT":
            self._state(msg, self._object(msg, envelope.raw))
            msg.topic_facts(False)
        elif command.startswith("STATUS"):
            self._status(msg, self._object(msg, envelope.raw))
            msg.topic_facts(True)
        elif envelope.raw.lstrip().startswith("{"):
            # SetOption4 1: results go to stat/<device>/<COMMAND> instead of RESULT, same JSON
            self._state(msg, self._object(msg, envelope.raw))
            msg.topic_facts(False)
        else:
            msg.topic_facts(False)  # stat/<device>/POWER "ON": the plain twin of the RESULT just sent
        return msg.result()

    def reply_value(self, gateway: Record, field: Record) -> Downlink | None:
        """Tasmota devices never ask the controller for a value."""
        return None

    def node_id_response(self, gateway: Record, node_id: int) -> Downlink:
        raise InterpretError("Tasmota devices name themselves (their topic); they never ask for a node id")

    # ----------------------------------------------------------------------------------------- payloads

    @staticmethod
    def _object(msg: _Message, raw: str) -> dict[str, Any]:
        try:
            data = _DECODER.decode(raw)
        except (ValueError, RecursionError) as error:
            raise msg.fail(f"payload is not JSON ({error}): {raw[:60]!r}") from None
        if not isinstance(data, dict):
            raise msg.fail(f"payload must be a JSON object, got {type(data).__name__}: {raw[:60]!r}")
        return data

    @staticmethod
    def _lwt(msg: _Message, raw: str) -> list[Op]:
        state = raw.strip().lower()
        if state == "online":
            msg.others["lwt"] = "Online"
            msg.topic_facts(True)
            return [*msg.result(), NodeSeen(msg.node)]
        if state == "offline":
            # The broker speaks for a device gone: record it and mark the node down.
            msg.others["lwt"] = "Offline"
            msg.topic_facts(True)
            return [*msg.result(), NodeState(msg.node, "down", "MQTT last will: Offline")]
        raise msg.fail(f"LWT payload must be Online or Offline, got {raw[:40]!r}")

    # ----------------------------------------------------------------------------------------- STATE, RESULT

    def _state(self, msg: _Message, data: dict[str, Any]) -> None:
        """STATE, StatusSTS and RESULT: control state, WiFi, memory and time, by key."""
        for key, value in data.items():
            if value is None or key in _STATE_SKIP:
                continue
            spec = _STATE_FIELDS.get(key)
            if spec is not None:
                _scalar(msg, key, value)
                msg.ops.append(FieldValue(msg.node, spec[0], key, value, spec[1], spec[2]))
                if key == "HSBColor":
                    self._hsb_parts(msg, value)
            elif not _control(msg, key, value):
                self._state_other(msg, key, value)

    def _state_other(self, msg: _Message, key: str, value: Any) -> None:
        """A state key that is not a control: network, known facts, or anything else flattened into fields."""
        if key == "Wifi" and isinstance(value, dict):
            self._wifi(msg, value)
        elif key == "Ethernet" and isinstance(value, dict):
            self._facts(msg, value, fill_only=True)
        elif key in _STATE_OTHERS:
            _scalar(msg, key, value)
            msg.others[_STATE_OTHERS[key]] = value
        elif isinstance(value, dict):
            source = sanitize_id(key)
            if source:
                _flatten(msg, source, "", value, 1, source, _DEFAULT_UNITS)
        else:
            field = sanitize_id(key)
            if field:
                _flatten(msg, CONTROL, field, value, 1, key, _DEFAULT_UNITS)

    @staticmethod
    def _hsb_parts(msg: _Message, value: Any) -> None:
        parts = value.split(",") if isinstance(value, str) else ()
        if len(parts) == 3 and all(part.strip().isdigit() for part in parts):
            for (field, unit), part in zip(_HSB_PARTS, parts, strict=True):
                msg.ops.append(FieldValue(msg.node, CONTROL, field, int(part), "gauge", unit))

    @staticmethod
    def _wifi(msg: _Message, wifi: dict[str, Any]) -> None:
        node = msg.node
        ops = msg.ops
        for key, value in wifi.items():
            if value is None:
                continue
            spec = _WIFI_FIELDS.get(key)
            if spec is not None:
                _scalar(msg, f"Wifi.{key}", value)
                ops.append(FieldValue(node, WIFI, key, value, spec[0], spec[1]))
            else:
                field = sanitize_id(key)
                if field:
                    _flatten(msg, WIFI, field, value, 2, key, _DEFAULT_UNITS)

    # ----------------------------------------------------------------------------------------- SENSOR

    def _sensor(self, msg: _Message, data: dict[str, Any]) -> None:
        """SENSOR and StatusSNS: a source per top-level object, fields typed by name and the unit keys."""
        units = _DEFAULT_UNITS
        temp_unit, pressure_unit, speed_unit = data.get("TempUnit"), data.get("PressureUnit"), data.get("SpeedUnit")
        if temp_unit is not None or pressure_unit is not None or speed_unit is not None:
            units = {
                _TEMP: _TEMP_UNITS.get(str(temp_unit), "°C") if temp_unit is not None else "°C",
                _PRESSURE: str(pressure_unit) if isinstance(pressure_unit, str) and pressure_unit else "hPa",
                _SPEED: str(speed_unit) if isinstance(speed_unit, str) else "",
            }
        for key, value in data.items():
            if value is None or key in _SENSOR_SKIP:
                continue
            if isinstance(value, dict):
                source = sanitize_id(key)
                if not source:
                    continue
                sensor_id = value.get("Id")
                if isinstance(sensor_id, str | int) and not isinstance(sensor_id, bool):
                    msg.ops.append(SourceInfo(msg.node, source, labels={"sensor_id": str(sensor_id)}))
                _flatten(msg, source, "", value, 1, key, units)
            else:
                field = sanitize_id(key)
                if field:
                    _flatten(msg, SENSOR_SCALARS, field, value, 1, key, units)

    # ----------------------------------------------------------------------------------------- node facts

    def _status(self, msg: _Message, data: dict[str, Any]) -> None:
        """STATUS..STATUS11 (STATUS0 holds them all): node facts, plus STATE and SENSOR values."""
        for header, body in data.items():
            if header == "StatusSTS" or header == "StatusSNS" or header in _STATUS_FACTS:
                if not isinstance(body, dict):
                    raise msg.fail(f"{header} must be an object, got {type(body).__name__}")
                if header == "StatusSTS":
                    self._state(msg, body)
                elif header == "StatusSNS":
                    self._sensor(msg, body)
                else:
                    self._facts(msg, body)
                    if header == "StatusMEM" and body.get("Heap") is not None:
                        _scalar(msg, "StatusMEM.Heap", body["Heap"])
                        msg.ops.append(FieldValue(msg.node, MEMORY, "Heap", body["Heap"], "gauge", "kB"))
                    elif header == "StatusNET" and isinstance(body.get("Ethernet"), dict):
                        self._facts(msg, body["Ethernet"], fill_only=True)
            # StatusPTH (power thresholds) and anything newer: nothing we keep

    def _info(self, msg: _Message, data: dict[str, Any]) -> None:
        """INFO1..3 at boot: ``{"Info1": {...}}`` since Tasmota 9, the bare object before."""
        if len(data) == 1:
            (key, body), = data.items()
            if _INFO_KEY.match(key):
                if not isinstance(body, dict):
                    raise msg.fail(f"{key} must be an object, got {type(body).__name__}")
                data = body
        self._facts(msg, data)

    @staticmethod
    def _facts(msg: _Message, data: dict[str, Any], *, fill_only: bool = False) -> None:
        """Name, version labels and ``others`` from whichever known keys ``data`` holds."""
        others = msg.others
        for key, value in data.items():
            if value is None or isinstance(value, dict):
                continue
            if key == "DeviceName":
                if isinstance(value, str) and value:
                    msg.name = value
            elif key == "FriendlyName":
                first = value[0] if isinstance(value, list) and value else value
                if isinstance(first, str) and first:
                    others["friendly_name"] = first
                    if msg.name is None and "DeviceName" not in data:
                        msg.name = first
            elif key == "IPAddress":
                if isinstance(value, str) and value not in _NO_IP and not (fill_only and "ip_address" in others):
                    others["ip_address"] = value
                    others["node_web_url"] = f"http://{value}"
            elif isinstance(value, list):
                continue
            elif key == "Module" and isinstance(value, int):
                others["module_id"] = value  # STATUS gives the module's number, INFO1 its name
            elif key in _FACTS_OTHERS:
                target = _FACTS_OTHERS[key]
                if not (fill_only and target in others):
                    others[target] = value
            elif key in _FACTS_LABELS:
                msg.labels[_FACTS_LABELS[key]] = str(value)


_DEFAULT_UNITS: Final[dict[str, str]] = {_TEMP: "°C", _PRESSURE: "hPa", _SPEED: ""}


def _scalar(msg: _Message, key: str, value: Any) -> None:
    """A key Tasmota always sends as one value: anything else is a message we do not understand."""
    kind = type(value)
    if kind is str:
        return
    if kind is dict or kind is list:
        raise msg.fail(f"{key} must be a single value, got {kind.__name__}")
    if kind is int and not -_INT_LIMIT <= value < _INT_LIMIT:
        raise msg.fail(f"{key} number {value} is out of range")


def _flatten(msg: _Message, source: str, path: str, value: Any, depth: int, name: str,
             units: dict[str, str]) -> None:
    """Fields from a value: objects by member ('_'-joined ids), arrays by 1-based index, scalars typed by name.

    ``name`` is the Tasmota key that types the leaves (an array's elements share their key's type).
    """
    kind = type(value)
    if kind is dict:
        _members(msg, source, path, value, depth, units)
    elif kind is list:
        if path:
            _items(msg, source, path, name, value, depth, units)
    elif path:
        msg.ops.append(_leaf(msg, source, path, name, value, units))


def _members(msg: _Message, source: str, path: str, obj: dict[str, Any], depth: int, units: dict[str, str]) -> None:
    """An object's members; a source's own ``Id`` (DS18B20…) is a label, not a field."""
    ops = msg.ops
    for key, member in obj.items():
        if member is None:
            continue
        kind = type(member)
        if kind is dict or kind is list:
            part = sanitize_id(key)
            if part and depth < _MAX_DEPTH:
                sub = f"{path}_{part}" if path else part
                if kind is dict:
                    _members(msg, source, sub, member, depth + 1, units)
                else:
                    _items(msg, source, sub, key, member, depth + 1, units)
        elif key != "Id" or path:
            part = sanitize_id(key)
            if part:
                ops.append(_leaf(msg, source, f"{path}_{part}" if path else part, key, member, units))


def _items(msg: _Message, source: str, path: str, name: str, items: list[Any], depth: int,
           units: dict[str, str]) -> None:
    """An array's elements, 1-based as Tasmota counts phases and channels; they share their key's type."""
    for index, item in enumerate(items, 1):
        if item is None:
            continue
        kind = type(item)
        sub = f"{path}_{index}"
        if kind is dict:
            if depth < _MAX_DEPTH:
                _members(msg, source, sub, item, depth + 1, units)
        elif kind is list:
            if depth < _MAX_DEPTH:
                _items(msg, source, sub, name, item, depth + 1, units)
        else:
            msg.ops.append(_leaf(msg, source, sub, name, item, units))


def _leaf(msg: _Message, source: str, field: str, name: str, value: Any, units: dict[str, str]) -> FieldValue:
    kind = type(value)
    if kind is int:
        if not -_INT_LIMIT <= value < _INT_LIMIT:
            raise msg.fail(f"{source}.{field} number {value} is out of range")
        value_kind = "n"
    elif kind is float:
        value_kind = "n"
    elif kind is bool:
        value_kind = "b"
    else:
        value_kind = "o" if value in _ON_OFF else "s"
    group = source if source in (_COUNTER, _ANALOG) else ""
    key = (group, name, value_kind)
    spec = _TYPE_CACHE.get(key)
    if spec is None:
        if len(_TYPE_CACHE) > 4096:
            _TYPE_CACHE.clear()  # keys come from devices: keep the cache bounded
        spec = _TYPE_CACHE[key] = _typing(group, name, value_kind)
    metric_type, unit = spec
    if unit and unit[0] == "@":
        unit = units.get(unit, "")
    return FieldValue(msg.node, source, field[:MAX_ID_LENGTH], value, metric_type, unit)


_ON_OFF: Final = frozenset({"ON", "OFF", "on", "off", "On", "Off"})
_TYPE_CACHE: dict[tuple[str, str, str], tuple[str, str]] = {}


def _typing(group: str, name: str, value_kind: str) -> tuple[str, str]:
    """Metric type and unit of a sensor value: by its Tasmota name first, by the value's kind otherwise.

    ``value_kind``: ``n`` number, ``b`` boolean, ``o`` ON/OFF text, ``s`` other text. The unit may be a
    ``@temp``-style marker, resolved against the message's unit keys.
    """
    is_number = value_kind == "n"
    if group == _COUNTER and is_number:
        return "counter", ""
    if group == _ANALOG and is_number and _ANALOG_KEY.match(name):
        return "gauge", ""
    spec = _SENSOR_FIELDS.get(name)
    if spec is None and name[-1:].isdigit():
        spec = _SENSOR_FIELDS.get(name.rstrip("0123456789"))  # Temperature1, Voltage2…
    if spec is not None and value_kind != "b":
        return spec
    if value_kind == "b" or value_kind == "o":
        return "binary", ""
    if is_number:
        return "gauge_float", ""  # one type whether a reading comes as 20 or 20.5: no flapping metric type
    return "string", ""


def _control(msg: _Message, key: str, value: Any) -> bool:
    """``POWER<n>``, dimmer levels and ``Channel`` lists as control fields; False for any other key."""
    if key.startswith("POWER") and (key == "POWER" or _POWER_KEY.match(key)):
        _scalar(msg, key, value)
        msg.ops.append(FieldValue(msg.node, CONTROL, key, value, "binary"))
    elif key[-1:].isdigit() and _LEVEL_KEY.match(key):
        _scalar(msg, key, value)
        msg.ops.append(FieldValue(msg.node, CONTROL, key, value, "gauge", "%"))
    elif key == "Channel" and isinstance(value, list):
        for index, level in enumerate(value, 1):  # Channel<n> is also the command that sets it
            if level is not None:
                _scalar(msg, key, level)
                msg.ops.append(FieldValue(msg.node, CONTROL, f"Channel{index}", level, "gauge", "%"))
    else:
        return False
    return True
