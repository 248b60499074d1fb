"""A stand-in InfluxDB 2 server for the metric store contract: its HTTP API, line protocol and a Flux subset.

No InfluxDB 2 (nor any Flux engine) can be installed here: Debian's ``influxdb`` is 1.6, without Flux or the
``/api/v2`` endpoints, and VictoriaMetrics speaks the write API only. So ``InfluxDBMetricStore`` is run against
this server, through the real influxdb-client (its batching writer, its query API, its annotated-CSV parser):

* ``POST /api/v2/write``: line protocol as InfluxDB parses it (escapes, ``i``/``u`` integers, booleans,
  strings, ``precision``); a point rewritten at the same series and time replaces the old one; a field whose type
  differs from the one already stored under that measurement is refused (422, a partial write), as InfluxDB
  does; an unknown bucket is 404.
* ``POST /api/v2/query``: a Flux parser and evaluator for the language subset the adapter needs, written from
  Flux's documented semantics rather than from the adapter: ``from``, ``range`` (start inclusive, stop
  exclusive), ``filter`` with ``and``/``or``/comparisons, ``toFloat``, ``group``, ``sort``, ``yield`` and
  ``aggregateWindow`` (epoch-aligned windows truncated to the range, so a window cut by the range start is
  labelled with the range start; ``timeSrc``, ``createEmpty``) with ``mean``, ``sum``, ``count``, ``min``,
  ``max``, ``first``, ``last``, ``median`` and ``quantile`` (``exact_mean``: linear interpolation between the
  closest ranks, as Flux's ``ExactQuantileAgg``; ``exact_selector``). Anything else (another function, argument
  or method) is answered 400, so that a query this server cannot evaluate faithfully fails loudly instead of
  being guessed at. Answers are annotated CSV, one block per table, ``result`` named after the ``yield``.

What it cannot tell: how a real InfluxDB plans and executes the query, its storage engine, its ``estimate_tdigest``
quantiles, and any divergence between the documented semantics implemented here and the real engine's.
"""

from __future__ import annotations

import bisect
import csv
import gzip
import io
import json
import math
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class FluxError(Exception):
    """A query this server refuses (HTTP 400 ``invalid``), or a missing bucket (404)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------------------------- line protocol

_PRECISION_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


def _split_unescaped(text: str, separator: str) -> list[str]:
    """Split at ``separator`` outside backslash escapes and double-quoted strings."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == '"':
            current.append(char)
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unescape(text: str, specials: str) -> str:
    """Undo ``\\<special>``; a backslash before anything else is kept as it is (InfluxDB's rule)."""
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text) and text[index + 1] in specials:
            out.append(text[index + 1])
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def _field_value(text: str) -> Any:
    if text.startswith('"'):
        if len(text) < 2 or not text.endswith('"'):
            raise ValueError(f"unterminated string field {text!r}")
        return _unescape(text[1:-1], '"\\')
    if text in ("t", "T", "true", "True", "TRUE"):
        return True
    if text in ("f", "F", "false", "False", "FALSE"):
        return False
    if text.endswith(("i", "u")):
        return int(text[:-1])
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"field value {text!r} is not a finite number")
    return number


@dataclass(frozen=True)
class LinePoint:
    measurement: str
    tags: tuple[tuple[str, str], ...]
    fields: dict[str, Any]
    time_ns: int


def parse_line(line: str, precision_ns: int) -> LinePoint:
    """One line of line protocol (``measurement,tag=v field=v ts``)."""
    sections = [part for part in _split_unescaped(line, " ") if part != ""]
    if len(sections) not in (2, 3):
        raise ValueError(f"expected measurement, fields and an optional timestamp in {line!r}")
    series = _split_unescaped(sections[0], ",")
    measurement = _unescape(series[0], ", \\")
    tags: list[tuple[str, str]] = []
    for tag in series[1:]:
        key, _, value = tag.partition("=")
        while key.endswith("\\") and _:  # an escaped '=' inside the key
            more_key, _, value = value.partition("=")
            key = f"{key}={more_key}"
        if not value:
            raise ValueError(f"tag {tag!r} has no value")
        tags.append((_unescape(key, ",= \\"), _unescape(value, ",= \\")))
    fields: dict[str, Any] = {}
    for item in _split_unescaped(sections[1], ","):
        key, separator, value = item.partition("=")
        if not separator or not value:
            raise ValueError(f"field {item!r} has no value")
        fields[_unescape(key, ",= \\")] = _field_value(value)
    if not measurement or not fields:
        raise ValueError(f"missing measurement or fields in {line!r}")
    time_ns = int(sections[2]) * precision_ns if len(sections) == 3 else 0
    return LinePoint(measurement, tuple(sorted(tags)), fields, time_ns)


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    return "string"


SeriesKey = tuple[str, tuple[tuple[str, str], ...], str]


@dataclass
class Bucket:
    series: dict[SeriesKey, dict[int, Any]] = field(default_factory=dict)
    """(measurement, tags, field) → {time ns: value}."""
    field_types: dict[tuple[str, str], str] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------- Flux: tokens and AST

_TOKEN = re.compile(r"""
    (?P<space>\s+|//[^\n]*)
  | (?P<time>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2}))
  | (?P<duration>(?:\d+(?:mo|ms|us|µs|ns|y|w|d|h|m|s))+)
  | (?P<float>\d+\.\d*(?:[eE][+-]?\d+)?)
  | (?P<int>\d+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<op>\|>|=>|==|!=|<=|>=|<-|=~|!~|[()\[\]{},:=.<>+\-*/])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
""", re.VERBOSE | re.DOTALL)
_DURATION_PART = re.compile(r"(\d+)(mo|ms|us|µs|ns|y|w|d|h|m|s)")
_DURATION_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
                "h": 3_600_000_000_000, "d": 86_400_000_000_000, "w": 604_800_000_000_000}
_STRING_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t", "$": "$"}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(source):
        match = _TOKEN.match(source, position)
        if match is None:
            raise FluxError(f"unexpected character {source[position]!r} at {position}")
        position = match.end()
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(Token(kind, match.group()))
    tokens.append(Token("eof", ""))
    return tokens


@dataclass(frozen=True)
class Duration:
    ns: int


@dataclass(frozen=True)
class Time:
    ns: int


@dataclass
class Node:
    kind: str
    value: Any = None
    children: list[Any] = field(default_factory=list)


class Parser:
    """Recursive descent over the tokens: assignments, pipe chains, calls with named arguments, function
    literals, member access, comparisons and ``and``/``or``."""

    def __init__(self, source: str) -> None:
        self.tokens = tokenize(source)
        self.index = 0

    def peek(self, offset: int = 0) -> Token:
        return self.tokens[min(self.index + offset, len(self.tokens) - 1)]

    def take(self, text: str | None = None, kind: str | None = None) -> Token:
        token = self.peek()
        if (text is not None and token.text != text) or (kind is not None and token.kind != kind):
            raise FluxError(f"expected {text or kind!r}, found {token.text or token.kind!r}")
        self.index += 1
        return token

    def program(self) -> list[Node]:
        statements: list[Node] = []
        while self.peek().kind != "eof":
            if self.peek().kind == "ident" and self.peek(1).text == "=":
                name = self.take(kind="ident").text
                self.take("=")
                statements.append(Node("assign", name, [self.expression()]))
            else:
                statements.append(Node("expression", None, [self.expression()]))
        return statements

    def expression(self) -> Node:
        left = self.conjunction()
        while self.peek().text == "or":
            self.take("or")
            left = Node("or", None, [left, self.conjunction()])
        return left

    def conjunction(self) -> Node:
        left = self.comparison()
        while self.peek().text == "and":
            self.take("and")
            left = Node("and", None, [left, self.comparison()])
        return left

    def comparison(self) -> Node:
        left = self.pipe()
        if self.peek().text in ("==", "!=", "<", "<=", ">", ">="):
            operator = self.take().text
            return Node("compare", operator, [left, self.pipe()])
        return left

    def pipe(self) -> Node:
        left = self.postfix()
        while self.peek().text == "|>":
            self.take("|>")
            call = self.postfix()
            if call.kind != "call":
                raise FluxError("only a function call can follow |>")
            left = Node("pipe", None, [left, call])
        return left

    def postfix(self) -> Node:
        node = self.primary()
        while self.peek().text in (".", "("):
            if self.take().text == ".":
                node = Node("member", self.take(kind="ident").text, [node])
            else:
                node = Node("call", None, [node, self.arguments()])
        return node

    def arguments(self) -> dict[str, Node]:
        args: dict[str, Node] = {}
        while self.peek().text != ")":
            name = self.take(kind="ident").text
            self.take(":")
            args[name] = self.expression()
            if self.peek().text == ",":
                self.take(",")
        self.take(")")
        return args

    def primary(self) -> Node:
        token = self.peek()
        if token.kind == "string":
            self.take()
            body = token.text[1:-1]
            if "${" in body.replace("\\${", ""):
                raise FluxError("string interpolation is not supported here")
            return Node("literal", re.sub(r"\\(.)", lambda m: _STRING_ESCAPES.get(m.group(1), m.group(0)), body))
        if token.kind == "int":
            self.take()
            return Node("literal", int(token.text))
        if token.kind == "float":
            self.take()
            return Node("literal", float(token.text))
        if token.kind == "duration":
            self.take()
            parts = _DURATION_PART.findall(token.text)
            if any(unit in ("mo", "y") for _, unit in parts):
                raise FluxError("calendar durations are not supported here")
            return Node("literal", Duration(sum(int(n) * _DURATION_NS[unit] for n, unit in parts)))
        if token.kind == "time":
            self.take()
            moment = datetime.fromisoformat(token.text.replace("Z", "+00:00"))
            fraction = re.search(r"\.(\d+)", token.text)
            nanos = int((fraction.group(1) + "000000000")[:9]) if fraction else 0
            return Node("literal", Time(int(moment.replace(microsecond=0).timestamp()) * 1_000_000_000 + nanos))
        if token.text == "[":
            self.take("[")
            items: list[Node] = []
            while self.peek().text != "]":
                items.append(self.expression())
                if self.peek().text == ",":
                    self.take(",")
            self.take("]")
            return Node("array", None, items)
        if token.text == "(":
            function = self.function_literal()
            if function is not None:
                return function
            self.take("(")
            inner = self.expression()
            self.take(")")
            return inner
        if token.kind == "ident":
            self.take()
            return Node("name", token.text)
        raise FluxError(f"unexpected {token.text or token.kind!r}")

    def function_literal(self) -> Node | None:
        """``(a, b=<-) => body``, or None (with nothing consumed) when the parenthesis is not one."""
        start = self.index
        self.take("(")
        params: list[tuple[str, Node | str | None]] = []
        try:
            while self.peek().text != ")":
                name = self.take(kind="ident").text
                default: Node | str | None = None
                if self.peek().text == "=":
                    self.take("=")
                    if self.peek().text == "<-":
                        self.take("<-")
                        default = "<-"
                    else:
                        default = self.expression()
                params.append((name, default))
                if self.peek().text == ",":
                    self.take(",")
            self.take(")")
            self.take("=>")
        except FluxError:
            self.index = start
            return None
        return Node("function", params, [self.expression()])


# --------------------------------------------------------------------------------------------- Flux: evaluation


class Table:
    """One Flux table: its group key columns (in order) and its rows, made on first use when ``make`` is given
    (``sample`` is then its first row), so that a filter on the group key skips a series without building it."""

    def __init__(self, key: tuple[str, ...], rows: list[dict[str, Any]] | None = None, *,
                 make: Callable[[], list[dict[str, Any]]] | None = None, sample: dict[str, Any] | None = None) -> None:
        self.key = key
        self._rows = rows
        self._make = make
        self._sample = sample

    @property
    def rows(self) -> list[dict[str, Any]]:
        if self._rows is None:
            self._rows = self._make() if self._make is not None else []
        return self._rows

    def first(self) -> dict[str, Any] | None:
        if self._rows is None and self._sample is not None:
            return self._sample
        return self.rows[0] if self.rows else None


Tables = list[Table]


class Series(Table):
    """A stored series as ``from`` reads it: its columns, its times in order and its values by time."""

    def __init__(self, key: tuple[str, ...], base: dict[str, Any], points: dict[int, Any]) -> None:
        super().__init__(key, [])
        self.base = base
        self.times = sorted(points)
        self.points = points


class Unbounded(list[Series]):
    """What ``from`` returns: tables that only ``range`` may take (Flux refuses an unbounded read)."""


class ReadTracking(dict[str, Any]):
    """A row that records which columns an expression read (``r.ID`` is a ``get``)."""

    def __init__(self, row: dict[str, Any]) -> None:
        super().__init__(row)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)


@dataclass
class Function:
    params: list[tuple[str, Any]]
    body: Node
    scope: dict[str, Any]


Builtin = Callable[..., Any]


def _value_type(values: list[Any], name: str) -> str:
    kinds = {_type_name(v) for v in values if v is not None}
    if len(kinds) > 1:
        raise FluxError(f"{name}: column holds mixed types {sorted(kinds)}")
    return kinds.pop() if kinds else "float"


def _numbers(table: Table, column: str, name: str, *, floats_only: bool = False) -> list[Any]:
    values = [row.get(column) for row in table.rows if row.get(column) is not None]
    kind = _value_type(values, name)
    if kind in ("string", "boolean") or (floats_only and kind != "float"):
        raise FluxError(f"unsupported aggregate column type {kind} for {name}")
    return values


def _aggregate_row(table: Table, value: Any) -> dict[str, Any]:
    """An aggregate's output row: the group key columns and ``_value``."""
    row = {column: table.rows[0][column] for column in table.key} if table.rows else {}
    return {**row, "_value": value}


def _exact_quantile(values: list[float], q: float, method: str) -> float:
    ordered = sorted(values)
    if method == "exact_mean":  # Flux's ExactQuantileAgg: linear interpolation between the closest ranks
        x = q * (len(ordered) - 1)
        x0, x1 = math.floor(x), math.ceil(x)
        if x0 == x1:
            return ordered[int(x0)]
        return ordered[int(x0)] * (x1 - x) + ordered[int(x1)] * (x - x0)
    raise FluxError(f"quantile method {method!r} is not evaluated by this server (use exact_mean)")


class Evaluator:
    def __init__(self, buckets: dict[str, Bucket]) -> None:
        self.buckets = buckets
        self.results: list[tuple[str, Tables]] = []
        self.scope: dict[str, Any] = {name[3:]: getattr(self, name) for name in dir(self) if name.startswith("fn_")}
        self.scope.update(true=True, false=False)

    # ----------------------------------------------------------------------------------------- the tree

    def run(self, program: list[Node]) -> list[tuple[str, Tables]]:
        scope = dict(self.scope)
        for statement in program:
            yielded = len(self.results)
            value = self.eval(statement.children[0], scope)
            if statement.kind == "assign":
                scope[statement.value] = value
            elif isinstance(value, list) and len(self.results) == yielded:  # an expression's tables: yielded
                self.fn_yield(value)  # implicitly, as "_result"
        if not self.results:
            raise FluxError("the query yields no result")
        return self.results

    def eval(self, node: Node, scope: dict[str, Any]) -> Any:
        kind = node.kind
        if kind == "literal":
            return node.value
        if kind == "name":
            if node.value not in scope:
                raise FluxError(f"undefined identifier {node.value!r}")
            return scope[node.value]
        if kind == "array":
            return [self.eval(item, scope) for item in node.children]
        if kind == "member":
            target = self.eval(node.children[0], scope)
            if not isinstance(target, dict):
                raise FluxError(f"cannot read .{node.value} of {type(target).__name__}")
            return target.get(node.value)
        if kind == "function":
            return Function(node.value, node.children[0], scope)
        if kind in ("and", "or"):
            left = self.eval(node.children[0], scope)
            if kind == "and" and not left:
                return False
            if kind == "or" and left:
                return True
            return bool(self.eval(node.children[1], scope))
        if kind == "compare":
            left, right = (self.eval(child, scope) for child in node.children)
            if left is None or right is None:
                return False
            operations: dict[str, Callable[[Any, Any], bool]] = {
                "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
                "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}
            return operations[node.value](left, right)
        if kind == "call":
            callee = self.eval(node.children[0], scope)
            args = {name: self.eval(value, scope) for name, value in node.children[1].items()}
            return self.call(callee, args, None)
        if kind == "pipe":
            piped = self.eval(node.children[0], scope)
            call = node.children[1]
            callee = self.eval(call.children[0], scope)
            args = {name: self.eval(value, scope) for name, value in call.children[1].items()}
            return self.call(callee, args, piped)
        raise FluxError(f"cannot evaluate {kind}")

    def call(self, callee: Any, args: dict[str, Any], piped: Any) -> Any:
        if isinstance(callee, Function):
            scope = dict(callee.scope)
            names = {name for name, _ in callee.params}
            unknown = set(args) - names
            if unknown:
                raise FluxError(f"unexpected arguments {sorted(unknown)}")
            for name, default in callee.params:
                if name in args:
                    scope[name] = args[name]
                elif default == "<-":
                    if piped is None:
                        raise FluxError(f"function needs piped tables for {name!r}")
                    scope[name] = piped
                elif default is not None:
                    scope[name] = self.eval(default, callee.scope)
                else:
                    raise FluxError(f"missing argument {name!r}")
            return self.eval(callee.body, scope)
        if callable(callee):
            if piped is not None:
                args = {**args, "tables": piped}
            try:
                return callee(**args)
            except TypeError as error:
                raise FluxError(f"bad arguments: {error}") from None
        raise FluxError(f"{callee!r} is not a function")

    def predicate(self, fn: Any) -> Callable[[dict[str, Any]], bool]:
        if not isinstance(fn, Function) or len(fn.params) != 1:
            raise FluxError("filter needs fn: (r) => ...")
        return lambda row: bool(self.call(fn, {fn.params[0][0]: row}, None))

    # ----------------------------------------------------------------------------------------- sources and shaping

    def fn_from(self, bucket: str) -> Unbounded:
        if bucket not in self.buckets:
            raise FluxError(f'could not find bucket "{bucket}"', status=404)
        tables = Unbounded()
        for (measurement, tags, field_key), points in sorted(self.buckets[bucket].series.items()):
            base = {"_measurement": measurement, "_field": field_key, **dict(tags)}
            tables.append(Series(("_measurement", *(tag for tag, _ in tags), "_field"), base, points))
        return tables

    def fn_range(self, tables: Any, start: Any, stop: Any = None) -> Tables:
        if not isinstance(tables, Unbounded):
            raise FluxError("range must follow from")
        if not isinstance(start, Time) or not isinstance(stop, Time):
            raise FluxError("range needs absolute start and stop times here")
        result: Tables = []
        for table in tables:
            base, times, points = table.base, table.times, table.points
            low, high = bisect.bisect_left(times, start.ns), bisect.bisect_left(times, stop.ns)
            if low >= high:
                continue
            bounded = {**base, "_start": start, "_stop": stop}

            def make(bounded: dict[str, Any] = bounded, chosen: list[int] = times[low:high],
                     points: dict[int, Any] = points) -> list[dict[str, Any]]:
                return [{**bounded, "_time": Time(ts), "_value": points[ts]} for ts in chosen]

            sample = {**bounded, "_time": Time(times[low]), "_value": points[times[low]]}
            result.append(Table(("_start", "_stop", *table.key), make=make, sample=sample))
        return result

    def _bounded(self, tables: Tables, name: str) -> Tables:
        if isinstance(tables, Unbounded):
            raise FluxError(f"{name}: cannot submit an unbounded read (range is missing)")
        return tables

    def fn_filter(self, tables: Tables, fn: Any) -> Tables:
        """Rows for which ``fn`` holds. A predicate that read only group key columns on a table's first row holds
        alike for all its rows, so it is evaluated once per table (as a storage engine pushes it down)."""
        keep = self.predicate(fn)
        result: Tables = []
        for table in self._bounded(tables, "filter"):
            sample = table.first()
            if sample is None:
                continue
            first = ReadTracking(sample)
            verdict = keep(first)
            if first.read <= set(table.key):
                if verdict:
                    result.append(table)
                continue
            rows = [row for row in table.rows if keep(row)]
            if rows:
                result.append(Table(table.key, rows))
        return result

    def fn_toFloat(self, tables: Tables) -> Tables:
        def as_float(value: Any) -> float | None:
            if value is None:
                return None
            if isinstance(value, bool):
                return 1.0 if value else 0.0
            try:
                return float(value)
            except ValueError:
                raise FluxError(f"cannot convert string {value!r} to float") from None

        return [Table(t.key, [{**row, "_value": as_float(row.get("_value"))} for row in t.rows])
                for t in self._bounded(tables, "toFloat")]

    def fn_group(self, tables: Tables, columns: list[str] | None = None, mode: str = "by") -> Tables:
        if mode != "by":
            raise FluxError("group mode 'except' is not supported here")
        key = tuple(columns or ())
        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for table in self._bounded(tables, "group"):
            for row in table.rows:
                groups.setdefault(tuple(row.get(column) for column in key), []).append(dict(row))
        return [Table(key, rows) for rows in groups.values()]

    def fn_sort(self, tables: Tables, columns: list[str] | None = None, desc: bool = False) -> Tables:
        columns = columns or ["_value"]

        def order(row: dict[str, Any]) -> tuple[Any, ...]:
            values = [row.get(c) for c in columns]
            return tuple(value.ns if isinstance(value, Time) else value for value in values)

        return [Table(t.key, sorted(t.rows, key=order, reverse=desc)) for t in self._bounded(tables, "sort")]

    def fn_yield(self, tables: Tables, name: str = "_result") -> Tables:
        self.results.append((name, self._bounded(tables, "yield")))
        return tables

    # ----------------------------------------------------------------------------------------- windows

    def fn_aggregateWindow(self, tables: Tables, every: Any, fn: Any, column: str = "_value",
                           timeSrc: str = "_stop", timeDst: str = "_time",
                           createEmpty: bool = True, period: Any = None, offset: Any = None) -> Tables:
        if not isinstance(every, Duration) or every.ns <= 0:
            raise FluxError("aggregateWindow needs a positive duration every")
        if period not in (None, every) or offset not in (None, Duration(0)):
            raise FluxError("aggregateWindow period/offset are not supported here")
        if timeSrc not in ("_start", "_stop"):
            raise FluxError(f"timeSrc {timeSrc!r} is not supported here")
        step = every.ns
        result: Tables = []
        for table in self._bounded(tables, "aggregateWindow"):
            if not table.rows:
                continue
            start, stop = table.rows[0]["_start"], table.rows[0]["_stop"]
            windows: dict[int, list[dict[str, Any]]] = {}
            if createEmpty:
                first = start.ns - start.ns % step
                for window in range(first, stop.ns, step):
                    windows[window] = []
            for row in table.rows:
                windows.setdefault(row["_time"].ns - row["_time"].ns % step, []).append(row)
            base = {name: table.rows[0][name] for name in table.key if name not in ("_start", "_stop")}
            out_rows: list[dict[str, Any]] = []
            for window in sorted(windows):
                bounds = {"_start": Time(max(window, start.ns)), "_stop": Time(min(window + step, stop.ns))}
                rows = [{**row, **bounds} for row in windows[window]]
                aggregated = self.call(fn, {"column": column}, [Table(table.key, rows)])
                produced = [row for t in aggregated for row in t.rows]
                if not produced and not rows and createEmpty:
                    produced = [{"_value": None}]  # an empty window kept, with a null value
                for out in produced:
                    row = {**base, **bounds, **out}
                    row[timeDst] = bounds[timeSrc]
                    row["_start"], row["_stop"] = start, stop  # window(every: inf): back to the range bounds
                    out_rows.append(row)
            if out_rows:
                result.append(Table(table.key, out_rows))
        return result

    # ----------------------------------------------------------------------------------------- aggregates and selectors

    def _per_table(self, tables: Tables, make: Callable[[Table], dict[str, Any] | None]) -> Tables:
        result: Tables = []
        for table in tables:
            row = make(table)
            result.append(Table(table.key, [row] if row is not None else []))
        return result

    def fn_count(self, tables: Tables, column: str = "_value") -> Tables:
        return self._per_table(tables, lambda t: _aggregate_row(t, sum(1 for r in t.rows if r.get(column)
                                                                         is not None)))

    def fn_sum(self, tables: Tables, column: str = "_value") -> Tables:
        def total(table: Table) -> dict[str, Any] | None:
            values = _numbers(table, column, "sum")
            return _aggregate_row(table, sum(values) if values else None) if table.rows else None

        return self._per_table(tables, total)

    def fn_mean(self, tables: Tables, column: str = "_value") -> Tables:
        def mean(table: Table) -> dict[str, Any] | None:
            values = _numbers(table, column, "mean")
            return _aggregate_row(table, sum(values) / len(values) if values else None) if table.rows else None

        return self._per_table(tables, mean)

    def _selector(self, tables: Tables, column: str, name: str,
                  choose: Callable[[list[dict[str, Any]]], dict[str, Any]], *, numeric: bool) -> Tables:
        def select(table: Table) -> dict[str, Any] | None:
            rows = [row for row in table.rows if row.get(column) is not None]
            if numeric:
                _numbers(Table(table.key, rows), column, name)
            return dict(choose(rows)) if rows else None

        return self._per_table(tables, select)

    def fn_first(self, tables: Tables, column: str = "_value") -> Tables:
        return self._selector(tables, column, "first", lambda rows: rows[0], numeric=False)

    def fn_last(self, tables: Tables, column: str = "_value") -> Tables:
        return self._selector(tables, column, "last", lambda rows: rows[-1], numeric=False)

    def fn_min(self, tables: Tables, column: str = "_value") -> Tables:
        return self._selector(tables, column, "min", lambda rows: min(rows, key=lambda r: r[column]), numeric=True)

    def fn_max(self, tables: Tables, column: str = "_value") -> Tables:
        # the first of equal maxima, as Flux's selector keeps it
        return self._selector(tables, column, "max", lambda rows: max(rows, key=lambda r: r[column]), numeric=True)

    def fn_quantile(self, tables: Tables, q: float, column: str = "_value", method: str = "estimate_tdigest",
                    compression: float = 0.0) -> Tables:
        if not 0 <= q <= 1:
            raise FluxError("quantile must be between 0 and 1")

        def quantile(table: Table) -> dict[str, Any] | None:
            values = _numbers(table, column, "quantile", floats_only=True)
            if not values:
                return None
            return _aggregate_row(table, _exact_quantile(values, float(q), method))

        return self._per_table(tables, quantile)

    def fn_median(self, tables: Tables, column: str = "_value", method: str = "estimate_tdigest",
                  compression: float = 0.0) -> Tables:
        return self.fn_quantile(tables, 0.5, column, method, compression)


# --------------------------------------------------------------------------------------------- annotated CSV


def _rfc3339(time: Time) -> str:
    seconds, nanos = divmod(time.ns, 1_000_000_000)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{nanos:09d}".rstrip("0") + "Z" if nanos else f"{text}Z"


_DATATYPES = {"boolean": "boolean", "integer": "long", "float": "double", "string": "string"}


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Time):
        return _rfc3339(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def annotated_csv(results: list[tuple[str, Tables]]) -> str:
    """Results as InfluxDB's annotated CSV: per table ``#datatype``, ``#group``, ``#default``, the header and its
    rows; blocks separated by an empty line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    blocks = 0
    for name, tables in results:
        for number, table in enumerate(t for t in tables if t.rows):
            leading = [c for c in ("_start", "_stop", "_time", "_value", "_field", "_measurement")
                       if any(c in row for row in table.rows)]
            others = sorted({c for row in table.rows for c in row} - set(leading))
            columns = leading + others
            types = []
            for column in columns:
                values = [row.get(column) for row in table.rows if row.get(column) is not None]
                if values and isinstance(values[0], Time):
                    types.append("dateTime:RFC3339")
                else:
                    types.append(_DATATYPES[_value_type(values, column)] if values else "string")
            if blocks:
                out.write("\r\n")
            blocks += 1
            writer.writerow(["#datatype", "string", "long", *types])
            writer.writerow(["#group", "false", "false", *("true" if c in table.key else "false" for c in columns)])
            writer.writerow(["#default", name, "", *([""] * len(columns))])
            writer.writerow(["", "result", "table", *columns])
            for row in table.rows:
                writer.writerow(["", "", str(number), *(_csv_value(row.get(c)) for c in columns)])
    if blocks:
        out.write("\r\n")
    return out.getvalue()


# --------------------------------------------------------------------------------------------- the server


class FakeInfluxDB:
    """The server on a free loopback port (``url``), with its buckets in memory. ``create_bucket`` stands for the
    deployment's provisioning; ``queries`` keeps every Flux text received."""

    def __init__(self) -> None:
        self.buckets: dict[str, Bucket] = {}
        self.lock = threading.Lock()
        self.queries: list[str] = []
        self.writes = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the tests report what matters."""

            def _answer(self, status: int, body: bytes = b"", content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _error(self, status: int, code: str, message: str) -> None:
                self._answer(status, json.dumps({"code": code, "message": message}).encode())

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                if path in ("/health", "/ping"):
                    self._answer(200, json.dumps({"name": "influxdb", "status": "pass"}).encode())
                else:
                    self._error(404, "not found", f"path {path} not found")

            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                params = {key: values[-1] for key, values in parse_qs(parts.query).items()}
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if not (self.headers.get("Authorization") or "").startswith("Token "):
                    self._error(401, "unauthorized", "unauthorized access")
                    return
                if not params.get("org"):
                    self._error(400, "invalid", "org is required")
                    return
                if parts.path == "/api/v2/write":
                    status, answer = fake.write(params.get("bucket", ""), params.get("precision", "ns"),
                                                body.decode())
                    if status == 204:
                        self._answer(204)
                    else:
                        self._error(status, "invalid" if status == 400 else "unprocessable entity", answer)
                elif parts.path == "/api/v2/query":
                    try:
                        query = json.loads(body)["query"]
                        text = fake.query(query)
                    except FluxError as error:
                        self._error(error.status, "invalid" if error.status == 400 else "not found", str(error))
                        return
                    except (ValueError, KeyError) as error:
                        self._error(400, "invalid", f"bad query request: {error}")
                        return
                    self._answer(200, text.encode(), "text/csv; charset=utf-8")
                else:
                    self._error(404, "not found", f"path {parts.path} not found")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-influxdb", daemon=True)
        self.thread.start()

    def create_bucket(self, name: str) -> None:
        with self.lock:
            self.buckets.setdefault(name, Bucket())

    def write(self, bucket_name: str, precision: str, body: str) -> tuple[int, str]:
        """Store the lines; ``(204, "")``, or the status and message InfluxDB would answer."""
        if precision not in _PRECISION_NS:
            return 400, f"invalid precision {precision!r}"
        with self.lock:
            bucket = self.buckets.get(bucket_name)
            if bucket is None:
                return 404, f'bucket "{bucket_name}" not found'
            rejected: list[str] = []
            for line in body.split("\n"):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                try:
                    point = parse_line(line, _PRECISION_NS[precision])
                except ValueError as error:
                    return 400, f"unable to parse {line!r}: {error}"
                for key, value in point.fields.items():
                    kind = _type_name(value)
                    stored = bucket.field_types.setdefault((point.measurement, key), kind)
                    if stored != kind:
                        rejected.append(f"field type conflict: input field {key!r} on measurement "
                                        f"{point.measurement!r} is type {kind}, already exists as type {stored}")
                        continue
                    bucket.series.setdefault((point.measurement, point.tags, key), {})[point.time_ns] = value
            self.writes += 1
        if rejected:
            return 422, "partial write: " + "; ".join(rejected[:3])
        return 204, ""

    def query(self, flux: str) -> str:
        with self.lock:
            self.queries.append(flux)
            program = Parser(flux).program()
            return annotated_csv(Evaluator(self.buckets).run(program))

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def points_of(server: FakeInfluxDB, bucket: str) -> Iterator[tuple[SeriesKey, int, Any]]:
    """Every stored value of a bucket: ``((measurement, tags, field), time ns, value)`` (for checks)."""
    with server.lock:
        for key, points in sorted(server.buckets[bucket].series.items()):
            for ts in sorted(points):
                yield key, ts, points[ts]
