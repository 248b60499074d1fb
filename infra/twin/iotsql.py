"""AWS IoT SQL (version 2016-03-23), the part topic rules use: ``SELECT <items> FROM '<topic filter>' [WHERE
<condition>]`` with ``*``, field paths, ``AS`` aliases, literals, comparisons, ``AND``/``OR``/``NOT``, arithmetic and
the functions ``topic(n)``, ``clientid()``, ``timestamp()``, ``isUndefined``, ``isNull``, ``newuuid()``,
``concat``, ``lower``, ``upper``, ``encode(*, 'base64')``.

A reference to a field the message lacks is *Undefined*, as in AWS: it leaves the result's key out, and a
``WHERE`` that is Undefined does not match. A function outside this list makes the rule fail to parse, naming it.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import InfraError


class SqlError(InfraError, ValueError):
    """The statement cannot be parsed or evaluated; the message names the spot."""


class _Undefined:
    def __repr__(self) -> str:
        return "Undefined"


UNDEFINED: Any = _Undefined()
_TOKEN = re.compile(r"\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<str>'(?:[^']|'')*')|(?P<name>[A-Za-z_$][A-Za-z0-9_$]*)"
                    r"|(?P<op><>|!=|<=|>=|[=<>(),.*+\-/%\[\]]))")
KEYWORDS = {"SELECT", "FROM", "WHERE", "AS", "AND", "OR", "NOT", "TRUE", "FALSE", "NULL"}


@dataclass
class Message:
    topic: str
    payload: bytes
    client_id: str = ""

    def document(self) -> Any:
        try:
            return json.loads(self.payload)
        except ValueError:
            return UNDEFINED


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT filter matching (``+`` one level, ``#`` the rest); ``$`` topics only by filters that start with ``$``."""
    if topic.startswith("$") and not topic_filter.startswith("$"):
        return False
    parts, filters = topic.split("/"), topic_filter.split("/")
    for index, part in enumerate(filters):
        if part == "#":
            return True
        if index >= len(parts) or (part != "+" and part != parts[index]):
            return False
    return len(parts) == len(filters)


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise SqlError(f"cannot read the SQL at {text[position:position + 20]!r}")
        position = match.end()
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "name" and value.upper() in KEYWORDS:
            kind, value = "kw", value.upper()
        tokens.append((kind, value))
    tokens.append(("end", ""))
    return tokens


Expr = Callable[[Any, Message], Any]


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self, value: str | None = None, kind: str | None = None) -> bool:
        token_kind, token_value = self.tokens[self.at]
        return (value is None or token_value == value) and (kind is None or token_kind == kind)

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        if not self.peek(value, kind):
            raise SqlError(f"expected {value or kind} at {self.tokens[self.at][1]!r}")
        self.at += 1
        return self.tokens[self.at - 1][1]

    def statement(self) -> tuple[list[tuple[str | None, Expr | None]], str, Expr | None]:
        self.take("SELECT")
        items: list[tuple[str | None, Expr | None]] = []
        while True:
            if self.peek("*"):
                self.take("*")
                items.append((None, None))
            else:
                expression, default_name = self.expression()
                name = default_name
                if self.peek("AS"):
                    self.take("AS")
                    name = self.take(kind="name")
                items.append((name or f"_{len(items) + 1}", expression))
            if not self.peek(","):
                break
            self.take(",")
        self.take("FROM")
        topic_filter = self.take(kind="str")[1:-1].replace("''", "'")
        where = None
        if self.peek("WHERE"):
            self.take("WHERE")
            where = self.expression()[0]
        self.take(kind="end")
        return items, topic_filter, where

    def expression(self) -> tuple[Expr, str | None]:
        return self._or()

    def _or(self) -> tuple[Expr, str | None]:
        left, name = self._and()
        while self.peek("OR"):
            self.take("OR")
            right, _ = self._and()
            left, name = _both(lambda x, y: _truth(x) or _truth(y), left, right), None
        return left, name

    def _and(self) -> tuple[Expr, str | None]:
        left, name = self._not()
        while self.peek("AND"):
            self.take("AND")
            right, _ = self._not()
            left, name = _both(lambda x, y: _truth(x) and _truth(y), left, right), None
        return left, name

    def _not(self) -> tuple[Expr, str | None]:
        if self.peek("NOT"):
            self.take("NOT")
            inner, _ = self._not()
            return (lambda d, m: _negate(inner(d, m))), None
        return self._compare()

    def _compare(self) -> tuple[Expr, str | None]:
        left, name = self._sum()
        for op in ("=", "<>", "!=", "<=", ">=", "<", ">"):
            if self.peek(op, "op"):
                self.take(op)
                right, _ = self._sum()
                return _both(lambda x, y, o=op: _compare(o, x, y), left, right), None
        return left, name

    def _sum(self) -> tuple[Expr, str | None]:
        left, name = self._product()
        while self.peek("+") or self.peek("-"):
            op = self.take()
            right, _ = self._product()
            left, name = _both(lambda x, y, o=op: _arith(o, x, y), left, right), None
        return left, name

    def _product(self) -> tuple[Expr, str | None]:
        left, name = self._unary()
        while self.peek("*") or self.peek("/") or self.peek("%"):
            op = self.take()
            right, _ = self._unary()
            left, name = _both(lambda x, y, o=op: _arith(o, x, y), left, right), None
        return left, name

    def _unary(self) -> tuple[Expr, str | None]:
        if self.peek("-"):
            self.take("-")
            inner, _ = self._unary()
            return (lambda d, m: _arith("-", 0, inner(d, m))), None
        return self._primary()

    def _primary(self) -> tuple[Expr, str | None]:
        kind, value = self.tokens[self.at]
        if kind == "num":
            self.at += 1
            number = float(value) if "." in value else int(value)
            return (lambda d, m: number), None
        if kind == "str":
            self.at += 1
            text = value[1:-1].replace("''", "'")
            return (lambda d, m: text), None
        if kind == "kw" and value in ("TRUE", "FALSE", "NULL"):
            self.at += 1
            constant = {"TRUE": True, "FALSE": False, "NULL": None}[value]
            return (lambda d, m: constant), None
        if value == "(":
            self.take("(")
            inner, _ = self.expression()
            self.take(")")
            return inner, None
        if kind == "name":
            self.at += 1
            if self.peek("("):
                return self._call(value), value if value == "topic" else None
            path: list[str | int] = [value]
            while self.peek(".") or self.peek("["):
                if self.take() == ".":
                    path.append(self.take(kind="name"))
                else:
                    path.append(int(self.take(kind="num")))
                    self.take("]")
            return (lambda d, m: _get(d, path)), str(path[-1])
        raise SqlError(f"unexpected {value!r}")

    def _call(self, name: str) -> Expr:
        self.take("(")
        args: list[Expr] = []
        star = False
        while not self.peek(")"):
            if self.peek("*"):
                self.take("*")
                star = True
                args.append(lambda d, m: m.payload)
            else:
                args.append(self.expression()[0])
            if self.peek(","):
                self.take(",")
        self.take(")")
        function = FUNCTIONS.get(name.lower())
        if function is None:
            raise SqlError(f"function {name}() is not supported by the twin")
        del star
        return lambda d, m: function(m, *[a(d, m) for a in args])


def _both(combine: Callable[..., Any], left: Expr, right: Expr) -> Expr:
    """An expression of two sub-expressions."""
    return lambda document, message: combine(left(document, message), right(document, message))


def _get(document: Any, path: list[str | int]) -> Any:
    current = document
    for key in path:
        if isinstance(key, int):
            if not isinstance(current, list) or key >= len(current):
                return UNDEFINED
            current = current[key]
        elif isinstance(current, dict) and key in current:
            current = current[key]
        else:
            return UNDEFINED
    return current


def _truth(value: Any) -> bool:
    return value is True


def _negate(value: Any) -> Any:
    return UNDEFINED if value is UNDEFINED or not isinstance(value, bool) else not value


def _compare(op: str, left: Any, right: Any) -> Any:
    if left is UNDEFINED or right is UNDEFINED:
        return UNDEFINED
    try:
        return {"=": left == right, "<>": left != right, "!=": left != right, "<": left < right,
                ">": left > right, "<=": left <= right, ">=": left >= right}[op]
    except TypeError:
        return UNDEFINED


def _arith(op: str, left: Any, right: Any) -> Any:
    if not isinstance(left, int | float) or not isinstance(right, int | float) or isinstance(left, bool):
        return UNDEFINED
    try:
        return {"+": left + right, "-": left - right, "*": left * right, "/": left / right, "%": left % right}[op]
    except ZeroDivisionError:
        return UNDEFINED


def _topic(message: Message, index: Any = None) -> Any:
    if index is None:
        return message.topic
    parts = message.topic.split("/")
    return parts[int(index) - 1] if isinstance(index, int) and 0 < index <= len(parts) else UNDEFINED


def _encode(message: Message, value: Any, scheme: Any) -> Any:
    if scheme != "base64":
        return UNDEFINED
    data = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.b64encode(data).decode()


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "topic": _topic,
    "clientid": lambda m: m.client_id or UNDEFINED,
    "timestamp": lambda m: int(time.time() * 1000),
    "isundefined": lambda m, v: v is UNDEFINED,
    "isnull": lambda m, v: v is None,
    "newuuid": lambda m: str(uuid.uuid4()),
    "concat": lambda m, *vs: UNDEFINED if any(v is UNDEFINED for v in vs) else "".join(
        v if isinstance(v, str) else json.dumps(v) for v in vs),
    "lower": lambda m, v: v.lower() if isinstance(v, str) else UNDEFINED,
    "upper": lambda m, v: v.upper() if isinstance(v, str) else UNDEFINED,
    "encode": _encode,
    "traceid": lambda m: str(uuid.uuid4()),
}


class Statement:
    """A parsed rule statement: ``matches`` the topic, ``evaluate`` to the payload the actions get (or None)."""

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.items, self.topic_filter, self.where = _Parser(sql).statement()

    def evaluate(self, message: Message) -> bytes | None:
        """The rule's output for a message on a matching topic; None when ``WHERE`` does not hold."""
        document = message.document()
        if self.where is not None and not _truth(self.where(document, message)):
            return None
        if document is UNDEFINED:  # binary payload: only ``SELECT *`` passes it through
            if all(expression is None for _, expression in self.items):
                return message.payload
            document = {}
        result: dict[str, Any] = {}
        for name, expression in self.items:
            if expression is None:
                if isinstance(document, dict):
                    result.update(document)
                continue
            value = expression(document, message)
            if value is not UNDEFINED and name is not None:
                result[name] = value
        return json.dumps(result, separators=(",", ":")).encode()
