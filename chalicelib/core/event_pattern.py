"""EventBridge event patterns, matched in pure Python.

The local bus routes every domain event through every subscription with the same patterns that ``infra/``
declares as EventBridge rules, so a subscription behaves the same in the local stack and in AWS. Patterns are
compiled once into closures (``compile_pattern``): matching an event is then a few dict lookups, not a walk of
the pattern.

Semantics, after EventBridge's documentation:

* A pattern is an object; an event matches when every key of the pattern matches (AND). Keys of the event that
  the pattern does not name are ignored. A value in the pattern is a non-empty list (OR of its items) or a nested
  object for a nested field.
* List items are exact values (string, number, boolean, null; numbers compare by value, booleans are not
  numbers) or one-key operator objects: ``prefix``, ``suffix`` (both also ``{"equals-ignore-case": s}``),
  ``equals-ignore-case``, ``wildcard`` (``*`` any run of characters, ``\\*`` a star, ``\\\\`` a backslash),
  ``anything-but`` (a value, a list of values, or ``prefix``/``suffix``/``equals-ignore-case``/``wildcard``),
  ``numeric`` (``["=", n]`` or up to one lower and one upper bound: ``[">", 0, "<=", 5]``), ``exists``
  (true/false) and ``cidr``.
* ``{"$or": [pattern, pattern, …]}`` at any object level: the object matches if the other keys match and at
  least one alternative does.
* An array in the event matches if any of its elements matches (nested arrays are flattened). For a nested
  pattern object, the elements are matched one at a time, so two conditions must hold in the same element.
* Operators apply to leaves: a field holding an object does not ``exists`` for a leaf list and only
  ``{"exists": false}`` matches it. Every operator but ``{"exists": false}`` needs the field to be present.
  String operators (prefix, suffix, wildcard, equals-ignore-case, cidr) only match strings; numeric only
  numbers; ``anything-but`` matches any present leaf that is not excluded.

Local convenience, not in EventBridge: the empty pattern ``{}`` matches every event.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Iterator
from typing import Any, Final

from .errors import DomainError

__all__ = ["EventMatcher", "PatternError", "compile_pattern", "matches", "validate_pattern"]

EventMatcher = Callable[[dict[str, Any]], bool]
_ValueTest = Callable[[Any], bool]
_ObjectTest = Callable[[Any], bool]

MAX_DEPTH: Final = 64
"""Deeper patterns are refused: nobody writes them, and they would only exhaust the stack."""

_MISSING: Final = object()
_EMPTY: Final[dict[str, Any]] = {}
_NUMERIC_OPS: Final = frozenset({"=", "<", "<=", ">", ">="})
_OPERATORS: Final = frozenset(
    {"prefix", "suffix", "equals-ignore-case", "wildcard", "anything-but", "numeric", "exists", "cidr"}
)


class PatternError(DomainError, ValueError):
    """A pattern EventBridge would refuse; the message names the path of the bad part (``detail.state[0]``)."""


# --------------------------------------------------------------------------------------------- public API


def compile_pattern(pattern: Any) -> EventMatcher:
    """Check ``pattern`` and turn it into a fast ``matcher(event) -> bool``; raises ``PatternError``.

    The matcher never raises: an event that is not an object simply does not match.
    """
    if not isinstance(pattern, dict):
        raise PatternError(f"pattern must be a JSON object, got {type(pattern).__name__}")
    if not pattern:
        return _is_dict
    test = _compile_object(pattern, "", 0)

    def match(event: dict[str, Any]) -> bool:
        return isinstance(event, dict) and test(event)

    return match


def validate_pattern(pattern: Any) -> None:
    """Raise ``PatternError`` naming the bad part if ``pattern`` is not a valid event pattern."""
    compile_pattern(pattern)


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """Whether ``event`` (EventBridge JSON: ``source``, ``detail-type``, ``detail``…) matches ``pattern``.

    Compiles the pattern on every call: use ``compile_pattern`` when one pattern meets many events.
    """
    return compile_pattern(pattern)(event)


# --------------------------------------------------------------------------------------------- objects


def _is_dict(event: Any) -> bool:
    return isinstance(event, dict)


def _where(path: str) -> str:
    return path or "pattern"


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _compile_object(obj: dict[Any, Any], path: str, depth: int) -> _ObjectTest:
    if depth > MAX_DEPTH:
        raise PatternError(f"{_where(path)}: pattern is nested deeper than {MAX_DEPTH} levels")
    tests: list[_ObjectTest] = []
    alternatives: list[_ObjectTest] = []
    for key, sub in obj.items():
        if not isinstance(key, str):
            raise PatternError(f"{_where(path)}: keys must be strings, got {key!r}")
        where = _child(path, key)
        if key == "$or" and isinstance(sub, list) and sub and isinstance(sub[0], dict):
            for index, alternative in enumerate(sub):
                alt_path = f"{where}[{index}]"
                if not isinstance(alternative, dict) or not alternative:
                    raise PatternError(f"{alt_path}: each $or alternative must be a non-empty object")
                alternatives.append(_compile_object(alternative, alt_path, depth + 1))
        elif isinstance(sub, dict):
            if not sub:
                raise PatternError(f"{where}: a nested pattern must not be empty")
            tests.append(_nested_test(key, _compile_object(sub, where, depth + 1)))
        elif isinstance(sub, list):
            if not sub:
                raise PatternError(f"{where}: the list of values must not be empty")
            tests.append(_leaf_test(key, *_compile_values(sub, where)))
        else:
            raise PatternError(f"{where}: must be a list of values or a nested object, got {_show(sub)}")
    return _all_of(tests, alternatives)


def _all_of(tests: list[_ObjectTest], alternatives: list[_ObjectTest]) -> _ObjectTest:
    # Plain loops rather than all()/any() here and below: no generator is built per event on the hot path.
    if not alternatives and len(tests) == 1:
        return tests[0]
    if not alternatives:
        def every(obj: Any) -> bool:
            for test in tests:  # noqa: SIM110
                if not test(obj):
                    return False
            return True
        return every

    def every_and_any(obj: Any) -> bool:
        for test in tests:
            if not test(obj):
                return False
        for alternative in alternatives:  # noqa: SIM110
            if alternative(obj):
                return True
        return False
    return every_and_any


def _flatten(values: list[Any]) -> Iterator[Any]:
    """Elements of an event array, nested arrays flattened, without recursion (events may be deep)."""
    stack: list[Iterator[Any]] = [iter(values)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            yield item
        else:
            stack.pop()


def _nested_test(key: str, test: _ObjectTest) -> _ObjectTest:
    def nested(obj: Any) -> bool:
        value = obj.get(key, _MISSING)
        if isinstance(value, dict):
            return test(value)
        if isinstance(value, list):
            seen_object = False
            for item in _flatten(value):
                if isinstance(item, dict):
                    seen_object = True
                    if test(item):
                        return True
            if seen_object:
                return False
        # Absent, a leaf, or an array without objects: only "exists: false" conditions can hold beneath.
        return test(_EMPTY)
    return nested


def _leaf_test(key: str, value_test: _ValueTest, when_absent: bool) -> _ObjectTest:
    def leaf(obj: Any) -> bool:
        value = obj.get(key, _MISSING)
        if value is _MISSING or isinstance(value, dict):
            return when_absent
        if isinstance(value, list):
            found = False
            for item in _flatten(value):
                if not isinstance(item, dict):
                    found = True
                    if value_test(item):
                        return True
            return False if found else when_absent
        return value_test(value)
    return leaf


# --------------------------------------------------------------------------------------------- values


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Literals:
    """Exact values, split by JSON type so that ``true`` never equals ``1`` as it does in Python."""

    __slots__ = ("bools", "null", "numbers", "strings")

    def __init__(self) -> None:
        self.strings: set[str] = set()
        self.numbers: set[float] = set()
        self.bools: set[bool] = set()
        self.null = False

    def add(self, value: Any, where: str, *, allow_null_bool: bool = True) -> None:
        if isinstance(value, bool):
            if not allow_null_bool:
                raise PatternError(f"{where}: expected a string or a number, got {value!r}")
            self.bools.add(value)
        elif isinstance(value, str):
            self.strings.add(value)
        elif isinstance(value, int | float):
            if isinstance(value, float) and not math.isfinite(value):
                raise PatternError(f"{where}: numbers must be finite, got {value!r}")
            self.numbers.add(value)
        elif value is None:
            if not allow_null_bool:
                raise PatternError(f"{where}: expected a string or a number, got null")
            self.null = True
        else:
            raise PatternError(f"{where}: expected a string, number, boolean, null or operator object, "
                               f"got {_show(value)}")

    def __bool__(self) -> bool:
        return bool(self.strings or self.numbers or self.bools or self.null)

    def test(self) -> _ValueTest:
        strings, numbers, bools, null = frozenset(self.strings), frozenset(self.numbers), frozenset(self.bools), \
            self.null
        if not numbers and not bools and not null:
            return lambda value: isinstance(value, str) and value in strings

        def literal(value: Any) -> bool:
            if isinstance(value, bool):
                return value in bools
            if isinstance(value, str):
                return value in strings
            if isinstance(value, int | float):
                return value in numbers
            return value is None and null
        return literal


def _compile_values(values: list[Any], path: str) -> tuple[_ValueTest, bool]:
    """The test for a present leaf value, and whether the list matches an absent field (``exists: false``)."""
    literals = _Literals()
    operators: list[_ValueTest] = []
    when_absent = False
    for index, item in enumerate(values):
        where = f"{path}[{index}]"
        if isinstance(item, dict):
            operator, absent = _compile_operator(item, where)
            operators.append(operator)
            when_absent = when_absent or absent
        else:
            literals.add(item, where)
    tests = ([literals.test()] if literals else []) + operators
    if len(tests) == 1:
        return tests[0], when_absent

    def any_of(value: Any) -> bool:
        for test in tests:  # noqa: SIM110
            if test(value):
                return True
        return False
    return any_of, when_absent


def _never(_value: Any) -> bool:
    return False


def _always(_value: Any) -> bool:
    return True


def _compile_operator(item: dict[Any, Any], where: str) -> tuple[_ValueTest, bool]:
    if len(item) != 1:
        raise PatternError(f"{where}: an operator object must have exactly one key, got {sorted(map(str, item))}")
    [(name, arg)] = item.items()
    where = f"{where}.{name}"
    if name == "exists":
        if not isinstance(arg, bool):
            raise PatternError(f"{where}: must be true or false, got {_show(arg)}")
        return (_always, False) if arg else (_never, True)
    if name == "anything-but":
        return _anything_but(arg, where), False
    if name == "numeric":
        return _numeric(arg, where), False
    if name in ("prefix", "suffix", "equals-ignore-case", "wildcard", "cidr"):
        return _string_operator(name, arg, where), False
    raise PatternError(f"{where}: unknown operator (expected one of {', '.join(sorted(_OPERATORS))})")


def _string_arg(arg: Any, where: str) -> str:
    if not isinstance(arg, str):
        raise PatternError(f"{where}: must be a string, got {_show(arg)}")
    return arg


def _string_operator(name: str, arg: Any, where: str) -> _ValueTest:
    if name in ("prefix", "suffix"):
        ignore_case = False
        if isinstance(arg, dict):
            if list(arg) != ["equals-ignore-case"]:
                raise PatternError(f"{where}: expected a string or {{\"equals-ignore-case\": string}}")
            ignore_case, where, arg = True, f"{where}.equals-ignore-case", arg["equals-ignore-case"]
        text = _string_arg(arg, where)
        if ignore_case:
            folded = text.casefold()
            if name == "prefix":
                return lambda value: isinstance(value, str) and value.casefold().startswith(folded)
            return lambda value: isinstance(value, str) and value.casefold().endswith(folded)
        if name == "prefix":
            return lambda value: isinstance(value, str) and value.startswith(text)
        return lambda value: isinstance(value, str) and value.endswith(text)
    if name == "equals-ignore-case":
        folded = _string_arg(arg, where).casefold()
        return lambda value: isinstance(value, str) and value.casefold() == folded
    if name == "wildcard":
        regex = _wildcard_regex(_string_arg(arg, where), where)
        return lambda value: isinstance(value, str) and regex.fullmatch(value) is not None
    return _cidr(_string_arg(arg, where), where)


def _wildcard_regex(text: str, where: str) -> re.Pattern[str]:
    parts: list[str] = []
    literal: list[str] = []
    index = 0
    previous_star = False
    while index < len(text):
        char = text[index]
        if char == "\\":
            following = text[index + 1] if index + 1 < len(text) else ""
            if following not in ("*", "\\"):
                raise PatternError(f"{where}: '\\' may only escape '*' or '\\' (at character {index})")
            literal.append(following)
            index += 2
            previous_star = False
            continue
        if char == "*":
            if previous_star:
                raise PatternError(f"{where}: consecutive wildcard characters are not allowed (at character {index})")
            parts.append(re.escape("".join(literal)))
            literal = []
            parts.append(".*")
            previous_star = True
        else:
            literal.append(char)
            previous_star = False
        index += 1
    parts.append(re.escape("".join(literal)))
    return re.compile("".join(parts), re.DOTALL)


def _cidr(text: str, where: str) -> _ValueTest:
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError as error:
        raise PatternError(f"{where}: not a CIDR block: {error}") from None

    def within(value: Any) -> bool:
        if not isinstance(value, str):
            return False
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            return False
        return address.version == network.version and address in network
    return within


def _anything_but(arg: Any, where: str) -> _ValueTest:
    if isinstance(arg, dict):
        if len(arg) != 1:
            raise PatternError(f"{where}: expected one of prefix, suffix, equals-ignore-case, wildcard")
        [(name, inner)] = arg.items()
        inner_where = f"{where}.{name}"
        if name in ("prefix", "suffix"):
            excluded = _string_operator(name, _string_arg(inner, inner_where), inner_where)
            return lambda value: not excluded(value)
        if name in ("equals-ignore-case", "wildcard"):
            items = inner if isinstance(inner, list) else [inner]
            if not items:
                raise PatternError(f"{inner_where}: the list must not be empty")
            tests = [_string_operator(name, value, f"{inner_where}[{i}]" if isinstance(inner, list) else inner_where)
                     for i, value in enumerate(items)]
            return lambda value: not any(test(value) for test in tests)
        raise PatternError(f"{inner_where}: anything-but takes a value, a list, prefix, suffix, "
                           "equals-ignore-case or wildcard")
    literals = _Literals()
    items = arg if isinstance(arg, list) else [arg]
    if not items:
        raise PatternError(f"{where}: the list of excluded values must not be empty")
    for index, value in enumerate(items):
        literals.add(value, f"{where}[{index}]" if isinstance(arg, list) else where, allow_null_bool=False)
    is_excluded = literals.test()
    return lambda value: not is_excluded(value)


def _numeric(arg: Any, where: str) -> _ValueTest:
    if not isinstance(arg, list) or not arg or len(arg) % 2:
        raise PatternError(f"{where}: expected [operator, number, …] such as [\">\", 0, \"<=\", 5]")
    lower: tuple[float, bool] | None = None
    upper: tuple[float, bool] | None = None
    equal: float | None = None
    for index in range(0, len(arg), 2):
        op, number = arg[index], arg[index + 1]
        if not isinstance(op, str) or op not in _NUMERIC_OPS:
            raise PatternError(f"{where}[{index}]: expected one of =, <, <=, >, >=, got {_show(op)}")
        if not _is_number(number) or not math.isfinite(number):
            raise PatternError(f"{where}[{index + 1}]: expected a finite number, got {_show(number)}")
        if op == "=":
            if len(arg) != 2:
                raise PatternError(f"{where}: '=' cannot be combined with other conditions")
            equal = number
        elif op in (">", ">="):
            if lower is not None:
                raise PatternError(f"{where}[{index}]: more than one lower bound")
            lower = (number, op == ">=")
        else:
            if upper is not None:
                raise PatternError(f"{where}[{index}]: more than one upper bound")
            upper = (number, op == "<=")
    if equal is not None:
        target = equal
        return lambda value: _is_number(value) and value == target
    if lower is not None and upper is not None and (
            lower[0] > upper[0] or (lower[0] == upper[0] and not (lower[1] and upper[1]))):
        raise PatternError(f"{where}: the range is empty (lower bound {lower[0]} above upper bound {upper[0]})")
    low, low_inclusive = lower if lower is not None else (-math.inf, True)
    high, high_inclusive = upper if upper is not None else (math.inf, True)

    def in_range(value: Any) -> bool:
        if not _is_number(value):
            return False
        above = value >= low if low_inclusive else value > low
        below = value <= high if high_inclusive else value < high
        return above and below
    return in_range
