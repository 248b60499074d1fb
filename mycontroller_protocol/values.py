"""Values: a raw device value converted to a field's metric type (the reference's conversion rules).

The codecs (``esphome``, ``hue``, ``tasmota``) read and write device values with these, at the edge and in the
cloud; the cloud's model (``chalicelib/core/model.py``) and processor convert every field update with them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from .errors import ProtocolError

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
TRUE_WORDS: Final = frozenset({"1", "true", "on", "yes", "high", "open", "t", "y"})
FALSE_WORDS: Final = frozenset({"0", "false", "off", "no", "low", "closed", "f", "n", ""})


class ConversionError(ProtocolError, ValueError):
    """A value that cannot be converted to the field's metric type."""


def to_binary(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    try:
        return float(text) != 0
    except ValueError:
        raise ConversionError(f"not a binary value: {value!r}") from None


def _to_gauge_float(value: Any, metric_type: str) -> float:
    try:
        result = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ConversionError(f"not a number for gauge_float: {value!r}") from None
    if result != result or result in (float("inf"), float("-inf")):
        raise ConversionError(f"not a finite number for gauge_float: {value!r}")
    return result


def _to_integer(value: Any, metric_type: str) -> int | float:
    """A gauge or counter: an integer in the 64-bit range when the value is whole, else the finite number."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ConversionError(f"{metric_type} value {value} is out of the 64-bit range")
        return value
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ConversionError(f"not a number for {metric_type}: {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ConversionError(f"not a finite number for {metric_type}: {value!r}")
    if number.is_integer():
        if not INT64_MIN <= number <= INT64_MAX:
            raise ConversionError(f"{metric_type} value {value!r} is out of the 64-bit range")
        return int(number)
    return number


def _to_binary(value: Any, metric_type: str) -> bool:
    return to_binary(value)


def _to_geo(value: Any, metric_type: str) -> str:
    """``lat;lon[;alt]``, kept as its text once its numbers are checked."""
    text = str(value).strip()
    parts = text.split(";")
    if len(parts) < 2 or len(parts) > 3:
        raise ConversionError(f"not a geo value 'lat;lon[;alt]': {value!r}")
    try:
        lat, lon = float(parts[0]), float(parts[1])
        if len(parts) == 3 and parts[2] != "":
            float(parts[2])
    except ValueError:
        raise ConversionError(f"not a geo value 'lat;lon[;alt]': {value!r}") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ConversionError(f"geo value out of range: {value!r}")
    return text


def _to_text(value: Any, metric_type: str) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


_CONVERTERS: dict[str, Callable[[Any, str], Any]] = {
    "gauge_float": _to_gauge_float, "gauge": _to_integer, "counter": _to_integer, "binary": _to_binary,
    "geo": _to_geo, "string": _to_text, "none": _to_text}
"""Per metric type, how a raw device value becomes the field's value."""


def convert_value(value: Any, metric_type: str) -> Any:
    """Convert a raw device value to the field's metric type (the reference's conversion rules).

    Raises ``ConversionError`` with a message naming the value and type when it does not fit.
    """
    converter = _CONVERTERS.get(metric_type)
    if converter is None:
        raise ConversionError(f"unknown metric type: {metric_type!r}")
    return converter(value, metric_type)
