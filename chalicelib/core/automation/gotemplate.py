"""MyController v2's Go templates (``{{.temp.Current.Value}}``), translated to this project's jinja2 templates, so
that variables, rule values and handler parameters written for the reference render here unchanged.

``looks_like_go`` tells a Go template from a jinja2 one: an action that starts with a field (``.name``), a variable
(``$x``), ``end``/``else``, a function or control word followed by its arguments without parentheses (``printf "%.1f"
.x``, ``if .x``, ``range .items``), a comment (``/* */``), or a helper alone (``{{ now }}``); jinja2 reads none of
these (a template mixing both languages is read as Go). ``translate`` turns it into jinja2 for the sandboxed engine
(``templates.py``), which then applies every budget to it as to any other template.

What is translated (the forms the reference documents):

* fields: ``.name`` (a variable), ``.name.Current.Value`` (a key path, matched case-insensitively, so the Go names
  of the reference's structs reach our camelCase records), ``$`` and ``$.name`` (the top), ``$x`` (a variable set
  by ``{{ $x := ... }}``); inside ``range`` and ``with``, ``.`` is the current item;
* pipelines: ``{{ .x | printf "%.1f" }}`` (the value goes last, as in Go), parentheses;
* functions: ``eq ne lt le gt ge and or not len index print printf println html js urlquery`` (Go's), and the
  reference's ``now``, ``toJson``/``marshal``, ``keyPath``, ``ternary``, ``sunrise``, ``sunset``;
* actions: ``if``/``else if``/``else``/``end``, ``range`` (with ``else``, and ``$i, $v :=``), ``with``, comments,
  ``{{-``/``-}}`` trimming; booleans print as Go prints them (``true``, ``false``: ``templates.go_text``).

Not translated (a ``TemplateError`` says which): ``define``, ``template``, ``block``, ``call``, ``break``,
``continue``. Unlike the reference's ``html/template``, output is not HTML-escaped (its data-repository action had to
undo that escaping).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from .template_errors import TemplateError

_ACTION: Final = re.compile(r"\{\{(-?)(.*?)(-?)\}\}", re.DOTALL)
_GO_ACTION: Final = re.compile(
    r"^\s*(?:/\*|\.(?:[A-Za-z_]|\s|$)|\$|end\s*$|else\b|(?:template|define|block)\s"
    r"|[A-Za-z_][A-Za-z_0-9]*\s+[.$\"`(0-9]|(?:now|sunrise|sunset|version)\s*$)")
"""An action only Go reads: a field, a variable, ``end``/``else``, a function applied to arguments without
parentheses (``printf "%.1f" .x``, ``if .x``, ``not .y``), or one of the reference's helpers alone (``{{ now }}``)."""
_TOKEN: Final = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\]|\\.)')
  | (?P<number>[-+]?(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?))
  | (?P<field>(?:\$[A-Za-z_0-9]*)?(?:\.[A-Za-z_][A-Za-z_0-9]*)+|\$[A-Za-z_0-9]*|\.)
  | (?P<declare>:=)
  | (?P<assign>=)
  | (?P<comma>,)
  | (?P<pipe>\|)
  | (?P<open>\()
  | (?P<close>\))
  | (?P<ident>[A-Za-z_][A-Za-z_0-9]*)
""", re.VERBOSE)

_COMPARE: Final = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_HELPERS: Final = {"now": "now", "toJson": "toJson", "marshal": "toJson", "keyPath": "keyPath", "ternary": "ternary",
                   "sunrise": "sunrise", "sunset": "sunset"}
_UNSUPPORTED: Final = frozenset({"define", "template", "block", "call", "break", "continue"})
_UNARY: Final = {"not": "(not {0})", "len": "({0}|length)"}
"""One-argument functions, as jinja2 (their argument in ``{0}``); another count is an error."""
_FILTERS: Final = {"html": "e", "js": "tojson", "urlquery": "urlencode"}
"""Functions that are a jinja2 filter on their first argument."""


def looks_like_go(source: str) -> bool:
    """Whether a template is written in Go's template language (any of its actions could only be Go)."""
    if "{{" not in source or "{%" in source:
        return False
    return any(_GO_ACTION.match(match.group(2)) for match in _ACTION.finditer(source))


@dataclass(slots=True)
class _Scope:
    kind: str  # "if", "range", "with", "with-else"
    dot: str | None = None


@dataclass(slots=True)
class _State:
    scopes: list[_Scope] = field(default_factory=list)
    counter: int = 0

    @property
    def dot(self) -> str | None:
        for scope in reversed(self.scopes):
            if scope.dot is not None:
                return scope.dot
        return None

    def new_dot(self) -> str:
        self.counter += 1
        return f"go_dot_{self.counter}"


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise TemplateError(f"Go template: cannot read {text[position:position + 20]!r}")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append((kind, match.group()))
        position = match.end()
    return tokens


def _variable(name: str) -> str:
    """A Go ``$name`` as a jinja2 name (suffixed, so that it never shadows a variable of the task)."""
    if not name:
        raise TemplateError("Go template: '$' alone (the whole data) is not supported; name a field ('$.name')")
    return f"{name}_"


def _field(text: str, state: _State) -> str:
    """``.a.b.c``, ``$x.a``, ``$.a`` or ``.`` as a jinja2 expression."""
    if text == ".":
        if state.dot is None:
            raise TemplateError("Go template: '.' (the whole data) is not supported outside range and with; "
                                "name a field ('.name')")
        return state.dot
    head, _, rest = text.partition(".")
    parts = rest.split(".") if rest else []
    base: str | None = state.dot
    if head.startswith("$"):
        base = None if head == "$" else _variable(head[1:])
    if base is None:  # the top: the first segment is a variable's name
        if not parts:
            raise TemplateError("Go template: '$' alone (the whole data) is not supported; name a field ('$.name')")
        base, parts = parts[0], parts[1:]
    return f"keyPath({base}, {json.dumps('.'.join(parts))})" if parts else base


def _literal(kind: str, text: str) -> str:
    if kind == "string":
        return json.dumps(json.loads(text))
    if kind == "raw":
        return json.dumps(text[1:-1])
    if kind == "char":
        return str(ord(json.loads('"' + text[1:-1] + '"')))
    if kind == "number":
        return str(int(text, 16)) if text.lower().startswith(("0x", "-0x", "+0x")) else text
    raise TemplateError(f"Go template: unexpected {text!r}")


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], state: _State) -> None:
        self.tokens = tokens
        self.position = 0
        self.state = state

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise TemplateError("Go template: an action ends too early")
        self.position += 1
        return token

    def done(self) -> bool:
        return self.position >= len(self.tokens)

    def pipeline(self) -> str:
        result = self.command(None)
        while self.peek() == ("pipe", "|"):
            self.take()
            result = self.command(result)
        return result

    def command(self, piped: str | None) -> str:
        operands: list[tuple[str, str]] = []
        depth = 0
        while not self.done():
            token = self.peek()
            if depth == 0 and token in (("pipe", "|"), ("close", ")")):
                break
            depth += {"open": 1, "close": -1}.get(token[0] if token else "", 0)
            operands.append(self.take())
        if operands and operands[0] == ("open", "(") and operands[-1] == ("close", ")") and len(operands) > 2:
            walked = self._walk(operands)
            if len(walked) == 1 and piped is None:
                return self.operand(walked[0][0], None)
        if not operands:
            raise TemplateError("Go template: an empty command")
        head_kind, head = operands[0]
        if head_kind == "ident" and head not in ("true", "false", "nil"):
            args = [self.operand(token, operands_iter) for token, operands_iter in self._walk(operands[1:])]
            if piped is not None:
                args.append(piped)
            return self.call(head, args)
        if len(operands) > 1 or piped is not None:
            if piped is not None and len(operands) == 1:
                raise TemplateError(f"Go template: {head!r} is not a function to pipe into")
            raise TemplateError(f"Go template: {head!r} takes no arguments")
        return self.operand(operands[0], iter(()))

    def _walk(self, operands: list[tuple[str, str]]) -> list[tuple[tuple[str, str], object]]:
        """Operands, with parenthesised groups parsed as sub-pipelines."""
        walked: list[tuple[tuple[str, str], object]] = []
        index = 0
        while index < len(operands):
            token = operands[index]
            if token == ("open", "("):
                depth, end = 1, index + 1
                while end < len(operands) and depth:
                    depth += {"open": 1, "close": -1}.get(operands[end][0], 0)
                    end += 1
                inner = _Parser(operands[index + 1:end - 1], self.state)
                walked.append((("expr", inner.pipeline()), None))
                index = end
            else:
                walked.append((token, None))
                index += 1
        return walked

    def operand(self, token: tuple[str, str], _rest: object) -> str:
        kind, text = token
        if kind == "expr":
            return f"({text})"
        if kind == "field":
            return _field(text, self.state)
        if kind == "ident":
            if text in ("true", "false"):
                return text
            if text == "nil":
                return "none"
            return self.call(text, [])
        if kind == "open":  # a parenthesised pipeline as the command's only operand
            raise TemplateError("Go template: unbalanced parentheses")
        return _literal(kind, text)

    def call(self, name: str, args: list[str]) -> str:
        if name in _UNSUPPORTED:
            raise TemplateError(f"Go template: {name!r} is not supported here")
        if name in _COMPARE:
            return self._compare(name, args)
        if name in ("and", "or"):
            return "(" + f" {name} ".join(args) + ")"
        if name in _UNARY:
            return _UNARY[name].format(args[0]) if len(args) == 1 else self._arity(name, 1)
        if name in _FILTERS:
            return f"({args[0]}|{_FILTERS[name]})"
        if name == "index":
            return args[0] + "".join(f"[{key}]" for key in args[1:])
        if name in ("print", "println", "printf"):
            return self._print(name, args)
        if name == "version":
            return '""'
        if name in _HELPERS:
            return f"{_HELPERS[name]}({', '.join(args)})"
        raise TemplateError(f"Go template: unknown function {name!r}")

    @staticmethod
    def _compare(name: str, args: list[str]) -> str:
        if len(args) < 2:
            raise TemplateError(f"Go template: {name} needs two arguments")
        if name == "eq" and len(args) > 2:
            return "(" + " or ".join(f"{args[0]} == {other}" for other in args[1:]) + ")"
        return f"({args[0]} {_COMPARE[name]} {args[1]})"

    @classmethod
    def _print(cls, name: str, args: list[str]) -> str:
        """``print``, ``println`` and ``printf`` (its ``%v`` as ``%s``)."""
        if name == "printf":
            if not args:
                return cls._arity(name, 1)
            layout = args[0].replace("%v", "%s")
            return f"({layout}|format({', '.join(args[1:])}))"
        joined = " ~ ".join(f"({arg}|string)" for arg in args) or '""'
        return f"({joined} ~ \"\\n\")" if name == "println" else f"({joined})"

    @staticmethod
    def _arity(name: str, count: int) -> str:
        raise TemplateError(f"Go template: {name} takes {count} argument(s)")


def _end(state: _State) -> str:
    if not state.scopes:
        raise TemplateError("Go template: 'end' without an opening if, range or with")
    scope = state.scopes.pop()
    return {"if": "%endif", "range": "%endfor", "with": "%endif %}{% endwith",
            "with-else": "%endif %}{% endwith"}[scope.kind]


def _else(tokens: list[tuple[str, str]], state: _State) -> str:
    if not state.scopes:
        raise TemplateError("Go template: 'else' without an opening if, range or with")
    if len(tokens) > 1 and tokens[1] == ("ident", "if"):
        if state.scopes[-1].kind != "if":
            raise TemplateError("Go template: 'else if' inside range or with is not supported")
        return "%elif " + _Parser(tokens[2:], state).pipeline()
    scope = state.scopes[-1]
    if scope.kind == "with":
        scope.kind = "with-else"
        scope.dot = None  # after else, '.' is the outer dot again
    return "%else"


def _if(rest: list[tuple[str, str]], state: _State) -> str:
    expression = _Parser(rest, state).pipeline()
    state.scopes.append(_Scope("if"))
    return "%if " + expression


def _with(rest: list[tuple[str, str]], state: _State) -> str:
    expression = _Parser(rest, state).pipeline()
    dot = state.new_dot()
    state.scopes.append(_Scope("with", dot))
    return f"%with {dot} = {expression} %}}{{% if {dot}"


def _range(rest: list[tuple[str, str]], state: _State) -> str:
    """``range``, with ``$v :=`` (the element) or ``$i, $v :=`` (the index and the element) declared."""
    names: list[str] = []
    if ("declare", ":=") in rest:
        split = rest.index(("declare", ":="))
        names = [_variable(text[1:]) for kind, text in rest[:split] if kind == "field"]
        rest = rest[split + 1:]
    expression = _Parser(rest, state).pipeline()
    dot = state.new_dot()
    state.scopes.append(_Scope("range", dot))
    if len(names) == 2:
        return f"%for {dot} in {expression} %}}{{% set {names[0]} = loop.index0 %}}{{% set {names[1]} = {dot}"
    if len(names) == 1:
        return f"%for {dot} in {expression} %}}{{% set {names[0]} = {dot}"
    return f"%for {dot} in {expression}"


_OPENERS: Final[dict[str, Callable[[list[tuple[str, str]], _State], str]]] = {
    "if": _if, "with": _with, "range": _range}
"""The actions that open a scope (closed by ``end``), given the tokens after their keyword."""


def _action(body: str, state: _State) -> str:
    """One action's content as the inside of a jinja2 tag: ``("{{", expr)`` or ``("{%", statement)``."""
    text = body.strip()
    if text.startswith("/*"):
        return "#"
    tokens = _tokens(text)
    if not tokens:
        raise TemplateError("Go template: an empty action")
    kind, word = tokens[0]
    if kind == "ident" and word == "end":
        return _end(state)
    if kind == "ident" and word == "else":
        return _else(tokens, state)
    if kind == "ident" and word in _OPENERS:
        return _OPENERS[word](tokens[1:], state)
    if kind == "ident" and word in _UNSUPPORTED:
        raise TemplateError(f"Go template: {word!r} is not supported here")
    if kind == "field" and len(tokens) > 2 and tokens[1][0] in ("declare", "assign") and tokens[0][1].startswith("$"):
        return f"%set {_variable(tokens[0][1][1:])} = " + _Parser(tokens[2:], state).pipeline()
    return "=" + _Parser(tokens, state).pipeline()


def translate(source: str) -> str:
    """A Go template as a jinja2 template for ``templates.TemplateEngine``; ``TemplateError`` naming what cannot be
    translated."""
    state = _State()
    parts: list[str] = []
    position = 0
    for match in _ACTION.finditer(source):
        text = source[position:match.start()]
        parts.append(f"{{% raw %}}{text}{{% endraw %}}" if "{%" in text or "{#" in text else text)
        left, body, right = match.groups()
        translated = _action(body, state)
        if translated == "#":
            parts.append(f"{{#{left} go comment {right}#}}")
        elif translated.startswith("="):
            parts.append(f"{{{{{left} goText({translated[1:]}) {right}}}}}")
        else:
            parts.append(f"{{%{left} {translated[1:]} {right}%}}")
        position = match.end()
    tail = source[position:]
    parts.append(f"{{% raw %}}{tail}{{% endraw %}}" if "{%" in tail or "{#" in tail else tail)
    if state.scopes:
        raise TemplateError(f"Go template: {state.scopes[-1].kind.split('-')[0]!r} without 'end'")
    return "".join(parts)
