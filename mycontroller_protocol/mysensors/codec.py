"""MySensors 2.x wire formats, both directions: the serial/ethernet line and the MQTT topic.

Line: ``node;child;command;ack;type;payload\\n``. MQTT: topic ``<prefix>/node/child/command/ack/type``, payload
the payload. ``decode_line`` is on the ingest hot path: one split, dictionary lookups that both parse and
range-check each field, no regular expressions; only when a lookup fails does the slow path work out what is
wrong. Whatever is wrong raises ``CodecError`` saying what; nothing else escapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from ..errors import ProtocolError
from .protocol import Command, Internal, Sensor, Stream

MAX_PAYLOAD: Final = 256
"""Radio payloads are at most 25 bytes, but gateways send longer log and debug lines (I_LOG_MESSAGE, I_DEBUG)."""
RADIO_PAYLOAD: Final = 25
"""What fits in one radio message; longer payloads sent to a node are cut by the gateway."""
MAX_LINE: Final = 3 + 1 + 3 + 1 + 1 + 1 + 1 + 1 + 3 + 1 + MAX_PAYLOAD + 2
"""The longest well-formed line, ``\\r\\n`` included: anything longer is rejected before it is split."""

_SHOWN: Final = 80
_MAX_ID: Final = 255

# Text of every valid id -> its number. A lookup parses and range-checks at once, and refuses what int() would
# wrongly accept (" 1", "+1", "01", "1_0", non-ASCII digits): a gateway never writes those.
_IDS: Final[dict[str, int]] = {str(i): i for i in range(_MAX_ID + 1)}
_ACKS: Final[dict[str, bool]] = {"0": False, "1": True}
_TYPE_IDS: Final[dict[int, frozenset[int]]] = {
    Command.PRESENTATION: frozenset(int(s) for s in Sensor),
    Command.SET: frozenset(range(_MAX_ID + 1)),  # unknown V_ ids are kept: the reference maps them to V_CUSTOM
    Command.REQ: frozenset(range(_MAX_ID + 1)),
    Command.INTERNAL: frozenset(int(i) for i in Internal),
    Command.STREAM: frozenset(int(s) for s in Stream),
}
# Command text -> (command, {type text -> type id}); one lookup per field on the hot path.
_COMMANDS: Final[dict[str, tuple[int, dict[str, int]]]] = {
    str(int(c)): (int(c), {str(t): t for t in sorted(_TYPE_IDS[c])}) for c in Command
}
_TYPE_FAMILY: Final[dict[int, str]] = {
    Command.PRESENTATION: "presentation (S_)",
    Command.SET: "set (V_)",
    Command.REQ: "req (V_)",
    Command.INTERNAL: "internal (I_)",
    Command.STREAM: "stream (ST_)",
}


class CodecError(ProtocolError, ValueError):
    """A MySensors message that cannot be read or written; ``reason`` says what is wrong, ``raw`` what it was."""

    def __init__(self, reason: str, raw: Any = "") -> None:
        self.reason = reason
        self.raw: str = raw if isinstance(raw, str) else repr(raw)
        shown = self.raw if len(self.raw) <= _SHOWN else self.raw[: _SHOWN - 3] + "..."
        super().__init__(f"{reason} (in {shown!r})" if shown else reason)


@dataclass(slots=True, frozen=True)
class MySensorsMessage:
    """One MySensors message, whatever the transport; ids as numbers, payload as the text on the wire."""

    node_id: int
    child_id: int
    command: int
    ack: bool
    type: int
    payload: str = ""


class _Builder:
    """Same slots as ``MySensorsMessage``, not frozen: the decoder fills one, then makes it a MySensorsMessage.

    A frozen dataclass's ``__init__`` sets each slot through ``object.__setattr__``, which costs more than the rest
    of ``decode_line`` together. Assigning ``__class__`` between classes with identical slots is plain Python;
    what the caller gets is an ordinary, immutable, equal and hashable ``MySensorsMessage``.
    """

    __slots__ = ("node_id", "child_id", "command", "ack", "type", "payload")  # noqa: RUF023 - order as the fields

    def __init__(self, node_id: int, child_id: int, command: int, ack: bool, type: int, payload: str) -> None:
        self.node_id = node_id
        self.child_id = child_id
        self.command = command
        self.ack = ack
        self.type = type
        self.payload = payload


if _Builder.__slots__ != MySensorsMessage.__slots__:  # pragma: no cover - guards a future edit of either class
    raise ImportError("_Builder.__slots__ must match MySensorsMessage's fields")


def decode_line(line: str) -> MySensorsMessage:
    """Read one serial/ethernet line (a trailing ``\\n`` or ``\\r\\n`` is allowed); ``CodecError`` if malformed."""
    try:
        node_text, child_text, command_text, ack_text, type_text, payload = line.rstrip("\r\n").split(";", 5)
        command, types = _COMMANDS[command_text]
        if len(payload) > MAX_PAYLOAD or not payload.isprintable():
            raise ValueError
        message = _Builder(_IDS[node_text], _IDS[child_text], command, _ACKS[ack_text], types[type_text], payload)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise _diagnose_line(line) from None
    message.__class__ = MySensorsMessage  # type: ignore[assignment]
    return message  # type: ignore[return-value]


def _diagnose_line(line: object) -> CodecError:
    """The slow path: say exactly which field of a line that failed to decode is wrong."""
    if not isinstance(line, str):
        return CodecError(f"a MySensors line must be text, got {type(line).__name__}", line)
    if len(line) > MAX_LINE:
        return CodecError(f"line is {len(line)} characters, longer than any MySensors message ({MAX_LINE})", line)
    parts = line.rstrip("\r\n").split(";", 5)
    if len(parts) != 6:
        return CodecError(f"expected 6 ';'-separated fields (node;child;command;ack;type;payload), got {len(parts)}",
                          line)
    return _diagnose_fields(parts, line) or CodecError("malformed MySensors line", line)


def _diagnose_fields(parts: list[str], raw: str) -> CodecError | None:
    node_text, child_text, command_text, ack_text, type_text, payload = parts
    for name, text in (("node id", node_text), ("child sensor id", child_text)):
        if text not in _IDS:
            return _id_error(name, text, raw)
    if command_text not in _COMMANDS:
        if _is_decimal(command_text):
            return CodecError(f"field 'command' is {command_text}, must be 0-4 "
                              "(presentation, set, req, internal, stream)", raw)
        return CodecError(f"field 'command' {command_text!r} is not an integer 0-4", raw)
    if ack_text not in _ACKS:
        return CodecError(f"field 'ack' is {ack_text!r}, must be 0 or 1", raw)
    command, types = _COMMANDS[command_text]
    if type_text not in types:
        if type_text not in _IDS:
            return _id_error("type", type_text, raw)
        return CodecError(f"type {type_text} is not a valid {_TYPE_FAMILY[command]} type", raw)
    if len(payload) > MAX_PAYLOAD or not payload.isprintable():
        return _payload_error(payload, raw)
    return None


def _is_decimal(text: str) -> bool:
    return text.isascii() and text.isdecimal()


def _id_error(name: str, text: str, raw: str) -> CodecError:
    if not text:
        return CodecError(f"{name} is empty", raw)
    if text.startswith("-") and _is_decimal(text[1:]):
        return CodecError(f"{name} {text} is negative, must be 0-{_MAX_ID}", raw)
    if _is_decimal(text):
        if len(text) > 1 and text.startswith("0") and int(text) <= _MAX_ID:
            return CodecError(f"{name} {text!r} has leading zeros", raw)
        return CodecError(f"{name} {text} is out of range 0-{_MAX_ID}", raw)
    return CodecError(f"{name} {text!r} is not an integer", raw)


def _payload_error(payload: str, raw: Any) -> CodecError:
    if len(payload) > MAX_PAYLOAD:
        return CodecError(f"payload is {len(payload)} characters, longer than {MAX_PAYLOAD}", raw)
    bad = next((c for c in payload if not c.isprintable()), "")
    return CodecError(f"payload holds the control character {bad!r}", raw)


def _check(message: MySensorsMessage) -> None:
    """Refuse to write what the other side could not read back (decode_line is the judge)."""
    for name, value in (("node id", message.node_id), ("child sensor id", message.child_id),
                        ("type", message.type)):
        if not isinstance(value, int) or not 0 <= value <= _MAX_ID:
            raise CodecError(f"{name} {value!r} is not an integer 0-{_MAX_ID}")
    if not isinstance(message.command, int) or message.command not in _TYPE_IDS:
        raise CodecError(f"field 'command' is {message.command!r}, must be 0-4")
    if message.type not in _TYPE_IDS[message.command]:
        raise CodecError(f"type {message.type} is not a valid {_TYPE_FAMILY[message.command]} type")
    if not isinstance(message.payload, str):
        raise CodecError(f"payload must be text, got {type(message.payload).__name__}")
    if len(message.payload) > MAX_PAYLOAD or not message.payload.isprintable():
        raise _payload_error(message.payload, message.payload)


def encode_line(message: MySensorsMessage) -> str:
    """The serial/ethernet line for a message, with its ``\\n``; ``CodecError`` if it could not be read back."""
    _check(message)
    return (f"{message.node_id};{message.child_id};{message.command};{1 if message.ack else 0};{message.type};"
            f"{message.payload}\n")


def decode_mqtt(topic: str, payload: str | bytes, prefix: str | None = None) -> MySensorsMessage:
    """Read a MySensors MQTT gateway message: topic ``<prefix>/node/child/command/ack/type``.

    ``prefix`` may hold '/' itself ("home/ms-out"); without it the last five topic segments are taken.
    """
    if isinstance(payload, bytes):
        try:
            payload = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise CodecError("payload is not UTF-8", payload) from None
    if not isinstance(payload, str):
        raise CodecError(f"payload must be text or bytes, got {type(payload).__name__}", payload)
    if not isinstance(topic, str):
        raise CodecError(f"topic must be text, got {type(topic).__name__}", topic)
    if prefix is not None:
        stem = prefix.rstrip("/") + "/"
        if not topic.startswith(stem):
            raise CodecError(f"topic does not start with the prefix {prefix!r}", topic)
        segments = topic[len(stem):].split("/")
    else:
        segments = topic.split("/")[-5:]
    if len(segments) != 5:
        raise CodecError(f"topic needs node/child/command/ack/type after the prefix, got {len(segments)} segments",
                         topic)
    parts = [*segments, payload.rstrip("\r\n")]
    problem = _diagnose_fields(parts, topic)
    if problem is not None:
        raise problem
    command, types = _COMMANDS[parts[2]]
    return MySensorsMessage(_IDS[parts[0]], _IDS[parts[1]], command, _ACKS[parts[3]], types[parts[4]], parts[5])


def encode_mqtt(message: MySensorsMessage, prefix: str) -> tuple[str, str]:
    """(topic, payload) for a MySensors MQTT gateway's in-prefix (``mygateway1-in``, ``home/ms-in`` ...)."""
    _check(message)
    topic = (f"{prefix.rstrip('/')}/{message.node_id}/{message.child_id}/{message.command}/"
             f"{1 if message.ack else 0}/{message.type}")
    return topic, message.payload


def line_to_mqtt(line: str, prefix: str) -> tuple[str, str]:
    """A serial line as the (topic, payload) an MQTT gateway with that prefix would use."""
    return encode_mqtt(decode_line(line), prefix)


def mqtt_to_line(topic: str, payload: str | bytes, prefix: str | None = None) -> str:
    """An MQTT gateway message as a serial line, without the newline: the edge ships every message as a line."""
    return encode_line(decode_mqtt(topic, payload, prefix))[:-1]


_TRUE: Final = frozenset({"1", "true", "on", "yes", "high", "open", "t", "y"})
_FALSE: Final = frozenset({"0", "false", "off", "no", "low", "closed", "f", "n"})


def _number_text(value: float) -> str:
    if not math.isfinite(value):
        raise CodecError(f"{value!r} is not a finite number; a node cannot read it")
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)  # the shortest text that reads back to the same float: no needless zeros


def encode_value(value: object, metric_type: str, *, serial: bool = True) -> str:
    """The payload of a set sent to a device: binary as 1/0, numbers without needless zeros, text as it is.

    A line break can never be sent; with ``serial`` (the default, as a serial or ethernet gateway reads only up
    to the next ';') neither can ';'. ``CodecError`` says which.
    """
    if metric_type == "binary":
        if isinstance(value, bool | int):
            return "1" if value else "0"
        if isinstance(value, float):
            _number_text(value)  # NaN is no state
            return "1" if value else "0"
        word = str(value).strip().lower()
        if word in _TRUE:
            return "1"
        if word in _FALSE:
            return "0"
        raise CodecError(f"{value!r} is not a binary value (on/off, true/false, 1/0)")
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "1" if value else "0"
    elif isinstance(value, float):
        text = _number_text(value)
    else:
        text = str(value)
    if len(text) > MAX_PAYLOAD:
        raise CodecError(f"payload is {len(text)} characters, longer than {MAX_PAYLOAD}", text)
    if not text.isprintable():
        raise CodecError("payload holds a line break or control character, which would break the line", text)
    if serial and ";" in text:
        raise CodecError("payload holds ';', which a serial or ethernet gateway reads as the end of the payload",
                         text)
    return text
