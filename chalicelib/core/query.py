"""The list-query engine every repository shares: filter, sort and page JSON records the reference's way.

Repositories fetch the records of one kind and hand them here, so that the memory and the DynamoDB adapters
answer a list query identically. Semantics, after MyController v2's ``filter_sort`` utilities:

* Key paths are dotted (``labels.room``, ``current.value``); map lookups are case-insensitive (an exact key
  wins), list elements are addressed by index (``widgets.0.type``).
* A filter on a key that is missing (or ``null``) never matches, except ``exists`` with value ``false``.
* Values compare numerically when both sides read as finite numbers (``"21.5"`` and ``21.5``; booleans read as
  1 and 0), otherwise as text (booleans as ``true``/``false``, objects as compact JSON); nothing raises on
  mixed types.
* ``regex`` is a case-insensitive search (Go's ``(?i)`` + ``MatchString`` in the reference), run by RE2
  (``google-re2``) as Go runs it: in time linear in the text, whatever the pattern, so no filter can hold a
  worker (``(a+)+$`` on a long title is as fast as ``a``). A pattern Python's ``re`` refuses gets the same
  message as before; one that needs backtracking (backreferences, lookaround) is refused as RE2 refuses it.
* ``range_in`` ``[low, high]`` matches strictly between the bounds and ``range_not_in`` strictly outside
  them, as in the reference: a value equal to a bound matches neither.
* ``exists`` (value ``true``, the default, or ``false``): the key holds something other than null or "".
* Sorting puts missing values first, then numbers, then text (a total order, so multi-key sorts are sound);
  ``id`` is always the last sort key so that pages are stable across calls and adapters.

Bad input raises ``QueryError`` (a ``ValueError``) naming the bad part, so the API can answer 400.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any, Final, Protocol

import re2

from .errors import DomainError
from .model import Record
from .ports import FILTER_OPERATORS, Filter, ListQuery, ListResult, Sort

DEFAULT_LIMIT: Final = 50
"""Page size when the request names none (the reference's default)."""
MAX_LIMIT: Final = 10_000
"""Hard cap on one page read through the HTTP API: ``limit`` 0 or negative means "all", up to this many,
and a larger limit is lowered to it (the response's ``limit`` says which limit was applied)."""

SORT_ORDERS: Final = ("asc", "desc")


class QueryError(DomainError, ValueError):
    """A list query that cannot be run; ``parameter`` names the HTTP parameter at fault, when known."""

    def __init__(self, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter


# --------------------------------------------------------------------------------------------- key paths

_MISSING: Final[Any] = object()


def _split(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def _lookup(record: Any, parts: tuple[str, ...]) -> Any:
    """The value at a split key path, or ``_MISSING``. Hot in filters: no allocation on the exact-key path."""
    current = record
    for part in parts:
        if isinstance(current, dict):
            if part in current:
                current = current[part]
                continue
            lowered = part.lower()
            for key, value in current.items():
                if isinstance(key, str) and key.lower() == lowered:
                    current = value
                    break
            else:
                return _MISSING
        elif isinstance(current, list) and part.isdigit():
            index = int(part)
            if index >= len(current):
                return _MISSING
            current = current[index]
        else:
            return _MISSING
    return current


def get_path(record: Mapping[str, Any], path: str, default: Any = None) -> Any:
    """The value at a dotted key path (``labels.room``); map keys match case-insensitively."""
    value = _lookup(record, _split(path))
    return default if value is _MISSING else value


# --------------------------------------------------------------------------------------------- comparing


def _number(value: Any) -> int | float | None:
    """The number a value reads as, if it reads as a finite one (booleans as 1 and 0, as binary fields mean)."""
    if isinstance(value, int):  # bool included: True > 0.5, and ``true`` still equals "true" as text
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        if not text or "_" in text or len(text) > 64:
            return None
        try:
            number = float(text)
        except ValueError:
            return None
        if not math.isfinite(number):
            return None  # "nan", "inf", "infinity" are words here
        if number.is_integer() and abs(number) < 2**53:
            return int(number)
        return number
    return None


def _text(value: Any) -> str:
    """The text a value compares as when it is not a number on both sides."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        return str(value)


class _Operand:
    """A filter value prepared once: its number (or None) and its text."""

    __slots__ = ("number", "text")

    def __init__(self, value: Any) -> None:
        self.number = _number(value)
        self.text = _text(value)


def _compare(value: Any, operand: _Operand) -> int:
    """-1, 0 or 1: numerically when both sides are numbers, else as text."""
    number = _number(value)
    if number is not None and operand.number is not None:
        other_number = operand.number
        return (number > other_number) - (number < other_number)
    text, other_text = _text(value), operand.text
    return (text > other_text) - (text < other_text)


def compare(left: Any, right: Any) -> int:
    """Compare two values the way filters do (-1, 0, 1); never raises."""
    return _compare(left, _Operand(right))


def sort_key(value: Any) -> tuple[int, Any]:
    """Total order for sorting: missing/None first, then numbers, then text."""
    if value is None or value is _MISSING:
        return (0, 0)
    number = _number(value)
    if number is not None:
        return (1, number)
    return (2, _text(value))


# --------------------------------------------------------------------------------------------- filters

Predicate = Callable[[Record], bool]


RE2_MAX_MEMORY: Final = 8 << 20
"""Bytes RE2 may use for one compiled filter (its default); a pattern needing more is refused when compiled."""


class Regex(Protocol):
    """What the filters use of a compiled pattern (RE2's ``_Regexp``)."""

    def search(self, text: str) -> object | None: ...


def _re2_options() -> re2.Options:
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # a refused pattern is the user's 400, not a line on stderr
    options.max_mem = RE2_MAX_MEMORY
    return options


_RE2_OPTIONS: Final = _re2_options()


@lru_cache(maxsize=512)
def _regex(pattern: str) -> Regex:
    re.compile(pattern, re.IGNORECASE)  # Python's checks first: the messages users had for bad patterns stay
    try:
        compiled: Regex = re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as error:
        reason = error.args[0].decode("utf-8", "replace") if error.args and isinstance(error.args[0], bytes) \
            else str(error)
        raise QueryError(f"invalid regex {pattern!r}: {reason} (filters take RE2 syntax, as Go does: no "
                         "backreferences or lookaround, \\z for the end of the text)") from None
    return compiled


def compile_regex(pattern: str) -> Regex:
    """Compile (once, cached) a case-insensitive filter regex for RE2, which matches in linear time; ``QueryError``
    if it is not one."""
    try:
        return _regex(pattern)
    except (re.error, RecursionError, OverflowError) as error:
        raise QueryError(f"invalid regex {pattern!r}: {error}") from None


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list | tuple | set | frozenset):
        return list(value)
    return [value]


def _exists_flag(value: Any) -> bool:
    if value is None or value is True:
        return True
    if value is False:
        return False
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise QueryError(f"exists takes true or false, got {value!r}")


def _present(value: Any) -> bool:
    return value is not _MISSING and value is not None


def _exists_predicate(key: str, parts: tuple[str, ...], value: Any, operator: str) -> Predicate:
    wanted = _exists_flag(value)

    def exists(record: Record) -> bool:
        found = _lookup(record, parts)
        return (_present(found) and found != "") is wanted

    return exists


def _regex_predicate(key: str, parts: tuple[str, ...], value: Any, operator: str) -> Predicate:
    if value is None or isinstance(value, dict | list | tuple):
        raise QueryError(f"regex for key {key!r} must be a string, got {value!r}")
    pattern = compile_regex(value if isinstance(value, str) else _text(value))

    def regex(record: Record) -> bool:
        found = _lookup(record, parts)
        return _present(found) and pattern.search(_text(found)) is not None

    return regex


def _member_predicate(key: str, parts: tuple[str, ...], value: Any, operator: str) -> Predicate:
    """``in``/``nin``: equal to some item exactly as ``eq`` decides, without comparing against every item."""
    numbers: set[int | float] = set()
    number_texts: set[str] = set()
    other_texts: set[str] = set()
    for item in _as_list(value):
        number = _number(item)
        if number is not None:
            numbers.add(number)
            number_texts.add(_text(item))
        else:
            other_texts.add(_text(item))
    negate = operator == "nin"

    def member(record: Record) -> bool:
        found = _lookup(record, parts)
        if not _present(found):
            return False
        number = _number(found)
        text = _text(found)
        if number is not None:
            hit = number in numbers or text in other_texts
        else:
            hit = text in other_texts or text in number_texts
        return hit is not negate

    return member


def _range_predicate(key: str, parts: tuple[str, ...], value: Any, operator: str) -> Predicate:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise QueryError(f"{operator} for key {key!r} takes [low, high], got {value!r}")
    low, high = _Operand(value[0]), _Operand(value[1])
    inside = operator == "range_in"

    def in_range(record: Record) -> bool:
        found = _lookup(record, parts)
        if not _present(found):
            return False
        if inside:
            return _compare(found, low) > 0 and _compare(found, high) < 0
        return _compare(found, low) < 0 or _compare(found, high) > 0

    return in_range


def _comparison_predicate(key: str, parts: tuple[str, ...], value: Any, operator: str) -> Predicate:
    operand = _Operand(value)
    accept = _ACCEPT[operator]

    def comparison(record: Record) -> bool:
        found = _lookup(record, parts)
        return _present(found) and _compare(found, operand) in accept

    return comparison


_PREDICATES: Final[dict[str, Callable[[str, tuple[str, ...], Any, str], Predicate]]] = {
    "exists": _exists_predicate, "regex": _regex_predicate, "in": _member_predicate, "nin": _member_predicate,
    "range_in": _range_predicate, "range_not_in": _range_predicate,
}
"""The operators with a predicate of their own; the others compare (``_ACCEPT``)."""


def compile_filter(flt: Filter) -> Predicate:
    """A predicate for one filter, its value checked and prepared once."""
    key = flt.key
    if not isinstance(key, str) or not key.strip():
        raise QueryError(f"filter key must be a non-empty key path, got {key!r}")
    operator = flt.operator.strip().lower() if isinstance(flt.operator, str) else flt.operator
    if operator not in FILTER_OPERATORS:
        raise QueryError(f"unknown filter operator {flt.operator!r} for key {key!r}; "
                         f"expected one of {', '.join(FILTER_OPERATORS)}")
    build = _PREDICATES.get(operator, _comparison_predicate)
    return build(key, _split(key.strip()), flt.value, operator)


_ACCEPT: Final[dict[str, frozenset[int]]] = {
    "eq": frozenset({0}),
    "ne": frozenset({-1, 1}),
    "gt": frozenset({1}),
    "gte": frozenset({0, 1}),
    "lt": frozenset({-1}),
    "lte": frozenset({-1, 0}),
}


def compile_filters(filters: Iterable[Filter]) -> Predicate:
    """One predicate for all filters (AND), each checked up front so bad ones fail before any record is read."""
    predicates = [compile_filter(f) for f in filters]
    if not predicates:
        return lambda _record: True
    if len(predicates) == 1:
        return predicates[0]
    return lambda record: all(p(record) for p in predicates)


def matches(record: Record, filters: Iterable[Filter]) -> bool:
    """Whether a record passes every filter."""
    return compile_filters(filters)(record)


# --------------------------------------------------------------------------------------------- queries


def _check_sort(sort: Sort) -> tuple[tuple[str, ...], bool]:
    if not isinstance(sort.field, str) or not sort.field.strip():
        raise QueryError(f"sort field must be a non-empty key path, got {sort.field!r}")
    order = sort.order.strip().lower() if isinstance(sort.order, str) else sort.order
    if order not in SORT_ORDERS:
        raise QueryError(f"sort order for {sort.field!r} must be 'asc' or 'desc', got {sort.order!r}")
    return _split(sort.field.strip()), order == "desc"


def _sort_key_for(parts: tuple[str, ...]) -> Callable[[Record], tuple[int, Any]]:
    return lambda record: sort_key(_lookup(record, parts))


def sort_records(records: list[Record], sort_by: Iterable[Sort]) -> None:
    """Sort in place by several keys (first key most significant), then by ``id`` for stable paging."""
    keys = [_check_sort(s) for s in sort_by]
    if not any(parts == ("id",) for parts, _ in keys):
        keys.append((("id",), False))
    for parts, descending in reversed(keys):  # stable sorts, least significant key first
        records.sort(key=_sort_key_for(parts), reverse=descending)


def apply_query(records: Iterable[Record], query: ListQuery) -> ListResult:
    """Filter, count, sort and page records. ``limit`` 0 or less returns every match."""
    predicate = compile_filters(query.filters)
    selected = [r for r in records if predicate(r)] if query.filters else list(records)
    sort_records(selected, query.sort_by)
    offset = max(0, int(query.offset))
    end = offset + query.limit if query.limit > 0 else None
    return ListResult(count=len(selected), limit=query.limit, offset=query.offset, data=selected[offset:end])


# --------------------------------------------------------------------------------------------- HTTP


def _values(raw: str | list[str] | None) -> list[str]:
    if raw is None:
        return []
    return [raw] if isinstance(raw, str) else [v for v in raw if isinstance(v, str)]


def _integer(params: Mapping[str, str | list[str]], name: str, default: int) -> int:
    values = _values(params.get(name))
    if not values or not values[-1].strip():
        return default
    text = values[-1].strip()
    try:
        return int(text)
    except ValueError:
        raise QueryError(f"{name} must be an integer, got {text!r}", name) from None


def _json_items(text: str, name: str) -> list[Any]:
    try:
        data = json.loads(text)
    except ValueError as error:
        raise QueryError(f"{name} is not valid JSON: {error}", name) from None
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list):
        return data
    raise QueryError(f"{name} must be a JSON list of objects, got {type(data).__name__}", name)


def _parse_sort(params: Mapping[str, str | list[str]]) -> list[Sort]:
    sorts: list[Sort] = []
    for text in _values(params.get("sortBy")):
        text = text.strip()
        if not text:
            continue
        if text[0] in "[{":
            for index, item in enumerate(_json_items(text, "sortBy")):
                if not isinstance(item, dict):
                    raise QueryError(f"sortBy[{index}] must be an object {{\"f\": key, \"o\": order}}", "sortBy")
                field, order = item.get("f"), item.get("o", "asc")
                if not isinstance(field, str) or not field.strip():
                    raise QueryError(f"sortBy[{index}].f must be a non-empty key path, got {field!r}", "sortBy")
                if not isinstance(order, str) or order.strip().lower() not in SORT_ORDERS:
                    raise QueryError(f"sortBy[{index}].o must be 'asc' or 'desc', got {order!r}", "sortBy")
                sorts.append(Sort(field.strip(), order.strip().lower()))
            continue
        for part in text.split(","):
            part = part.strip()
            descending = part.startswith("-")
            field = part.lstrip("+-").strip()
            if not field:
                raise QueryError(f"sortBy has an empty key in {text!r}", "sortBy")
            sorts.append(Sort(field, "desc" if descending else "asc"))
    return sorts


def _parse_filters(params: Mapping[str, str | list[str]]) -> list[Filter]:
    filters: list[Filter] = []
    for text in _values(params.get("filter")):
        if not text.strip():
            continue
        for item in _json_items(text.strip(), "filter"):
            index = len(filters)
            if not isinstance(item, dict):
                raise QueryError(f"filter[{index}] must be an object {{\"k\", \"o\", \"v\"}}", "filter")
            key, operator = item.get("k"), item.get("o", "eq")
            if not isinstance(key, str) or not key.strip():
                raise QueryError(f"filter[{index}].k must be a non-empty key path, got {key!r}", "filter")
            if not isinstance(operator, str):
                raise QueryError(f"filter[{index}].o must be an operator name, got {operator!r}", "filter")
            flt = Filter(key.strip(), operator.strip().lower() or "eq", item.get("v"))
            try:
                compile_filter(flt)
            except QueryError as error:
                raise QueryError(f"filter[{index}]: {error}", "filter") from None
            filters.append(flt)
    return filters


def parse_list_query(params: Mapping[str, str | list[str]]) -> ListQuery:
    """Read the reference's list query from HTTP query parameters.

    ``limit`` (default 50; 0 or negative means all, up to ``MAX_LIMIT``; larger is lowered to ``MAX_LIMIT``),
    ``offset`` (default 0), ``sortBy`` (JSON ``[{"f": key, "o": "asc"|"desc"}]``, or ``key``/``-key`` separated
    by commas) and ``filter`` (JSON ``[{"k": key, "o": operator, "v": value}]``). A parameter given several
    times: the last ``limit``/``offset`` counts, ``sortBy`` and ``filter`` add up. Other parameters are left to
    the caller. Raises ``QueryError`` naming the parameter at fault.
    """
    limit = _integer(params, "limit", DEFAULT_LIMIT)
    if limit <= 0 or limit > MAX_LIMIT:
        limit = MAX_LIMIT
    offset = _integer(params, "offset", 0)
    if offset < 0:
        raise QueryError(f"offset must be 0 or more, got {offset}", "offset")
    return ListQuery(filters=_parse_filters(params), sort_by=_parse_sort(params), limit=limit, offset=offset)
