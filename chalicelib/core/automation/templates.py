"""Templates and expressions for automation: jinja2's immutable sandbox, with work limits so none can hang a worker.

Users write templates in task variables, rule values, handler parameters and forward payload transforms, and
expressions beside the reference's JavaScript (``javascript.py``). MyController v2's Go templates (``{{.temp}}``)
are translated to jinja2 before they compile (``gotemplate.py``) and then run under the same limits. Helpers,
after the reference: ``now()``, ``toJson(obj)``,
``keyPath(obj, "a.b")``, ``ternary(cond, a, b)``, ``sunrise()`` and ``sunset()`` (today's, at the configured
location; pass a date for another day).

**Why a sandbox is not enough, and what bounds a render.** ``ImmutableSandboxedEnvironment`` stops templates
from reaching Python internals or mutating data, but not from burning CPU or memory: nested loops, string
doubling (``{% set a = a ~ a %}`` twenty times), ``"x" * 10**9``, ``10 ** 10 ** 9``, ``"x"|center(10**9)``.
We render in the calling thread (no thread or process per render: Lambda and the local stack stay simple, and a
render costs microseconds), and bound every way a template can do work, with one budget per render
(``Limits``):

* the code generator is ours (jinja2's documented ``code_generator_class`` hook): every ``for`` loop iterates
  through a counting guard (``max_iterations`` in all), every ``~`` concatenation and every piece of output,
  buffered or not, is measured before it is built (``max_work`` characters produced in all, ``max_output`` for
  the final text); recursive loops are refused;
* every call (functions, methods, macros) and every filter is counted (``max_calls``), and what it returns
  is measured; arguments that would make one built-in call explode (a width of ``10**9`` to ``center``,
  ``ljust``, ``indent``, ``tojson``; a huge ``replace`` or ``join``; ``%`` and ``format`` width specs) are
  refused before the call;
* ``+``, ``*``, ``**`` and ``%`` are intercepted: sequences and strings may not grow past the budget and
  integers not past ``MAX_INT_BITS``;
* each of those guard points also checks a wall-clock deadline (``max_seconds``), so whatever slips through
  the counts is still cut off;
* the template text is at most ``max_source`` characters; ``lipsum``, ``include``, ``import`` and ``extends``
  are unavailable (no loader).

A template over any limit raises ``TemplateLimitError``; every other failure ``TemplateError``; both are
``ValueError``s with a message fit for a task's state or an API 400. The deadline is a backstop, not the main
line: the counts stop runaway templates long before it in practice.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import wraps
from typing import Any, Final

from jinja2 import ChainableUndefined, TemplateSyntaxError, Undefined, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.exceptions import TemplateError as JinjaTemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..query import get_path
from .clock import Location, sun_event
from .template_errors import TemplateError, TemplateLimitError

# --------------------------------------------------------------------------------------------- limits


@dataclass(frozen=True, slots=True)
class Limits:
    """What one render or expression may do."""

    max_source: int = 64 * 1024
    """Characters of template text."""
    max_output: int = 256 * 1024
    """Characters of rendered text."""
    max_work: int = 1_000_000
    """Characters (and collection items) produced in all: output, concatenations, call and filter results."""
    max_iterations: int = 10_000
    """Loop iterations in all, nested loops included."""
    max_calls: int = 10_000
    """Function, method, macro and filter calls."""
    max_seconds: float = 0.25
    """Wall-clock budget, checked at every guard point."""


DEFAULT_LIMITS: Final = Limits()
MAX_INT_BITS: Final = 10_000
"""Largest integer a template may build (about 3,000 digits)."""



class _Budget:
    """Counters for one render; every guard point charges it."""

    __slots__ = ("calls", "deadline", "iterations", "limits", "work")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.iterations = 0
        self.calls = 0
        self.work = 0
        self.deadline = time.perf_counter() + limits.max_seconds

    def _clock(self) -> None:
        if time.perf_counter() > self.deadline:
            raise TemplateLimitError(f"template took longer than {self.limits.max_seconds:g}s")

    def iterate(self) -> None:
        self.iterations += 1
        if self.iterations > self.limits.max_iterations:
            raise TemplateLimitError(f"template looped more than {self.limits.max_iterations} times")
        self._clock()

    def call(self) -> None:
        self.calls += 1
        if self.calls > self.limits.max_calls:
            raise TemplateLimitError(f"template made more than {self.limits.max_calls} calls")
        self._clock()

    def produce(self, size: int) -> None:
        self.work += size
        if self.work > self.limits.max_work:
            raise TemplateLimitError(f"template produced more than {self.limits.max_work} characters")
        self._clock()

    def allow(self, size: int, what: str) -> None:
        """Refuse, before doing it, an operation that would produce ``size`` characters or items."""
        if size > self.limits.max_work - self.work:
            raise TemplateLimitError(f"{what} would produce {size} characters, over the template's budget")


_BUDGET: ContextVar[_Budget | None] = ContextVar("automation_template_budget", default=None)


def _budget() -> _Budget:
    """This render's budget; outside a render (jinja2 folding constants at compile time) a fresh one."""
    return _BUDGET.get() or _Budget(DEFAULT_LIMITS)


def _size(value: Any) -> int:
    if isinstance(value, str | bytes | list | tuple | dict | set | frozenset):
        return len(value)
    return 1


# --------------------------------------------------------------------------------------------- pre-checks

_WIDE_PERCENT: Final = re.compile(r"%[-#0 +]*(?:\*|\d{5,}|\.\*|\.\d{5,})|%\([^)]*\)[-#0 +]*(?:\*|\d{5,})")
_WIDE_BRACE: Final = re.compile(r"\{[^{}]*:[^{}]*(?:\{|\d{5,})")
_WIDE_STRFTIME: Final = re.compile(r"%[-_0^#]*\d{4,}")
_WIDTH_METHODS: Final = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs"})
_WIDTH_FILTERS: Final = frozenset({"center", "indent", "wordwrap", "truncate", "batch", "slice", "tojson", "toJson"})


def _check_ints(args: Iterable[Any], budget: _Budget, what: str) -> None:
    for value in args:
        if isinstance(value, int) and not isinstance(value, bool) and value > budget.limits.max_work:
            raise TemplateLimitError(f"{what}: argument {value} is larger than the template's budget")


def _replace_size(text: str, old: Any, new: Any, count: Any = -1) -> int:
    if not isinstance(old, str) or not isinstance(new, str):
        return len(text)
    hits = len(text) + 1 if old == "" else text.count(old)
    if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * max(0, len(new) - len(old))


def _join_size(separator: str, items: list[Any]) -> int:
    return len(separator) * max(0, len(items) - 1) + sum(len(i) if isinstance(i, str) else 8 for i in items)


def _precheck_method(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any], budget: _Budget) -> tuple[Any, ...]:
    """Refuse a str method call that would explode; may materialize an iterator argument (``join``)."""
    target = getattr(obj, "__wrapped__", obj)  # the sandbox wraps str.format at attribute access
    owner = getattr(target, "__self__", None)
    name = getattr(target, "__name__", "")
    if name == "strftime" and args and isinstance(args[0], str) and _WIDE_STRFTIME.search(args[0]):
        raise TemplateLimitError("strftime field widths are limited to 3 digits in templates")
    if not isinstance(owner, str):
        return args
    if name in _WIDTH_METHODS:
        _check_ints((*args, *kwargs.values()), budget, f"str.{name}")
    elif name == "replace" and len(args) >= 2:
        budget.allow(_replace_size(owner, *args[:3]), "str.replace")
    elif name == "join" and args:
        items = list(args[0])
        budget.allow(_join_size(owner, items), "str.join")
        return (items, *args[1:])
    elif name in ("format", "format_map"):
        if _WIDE_BRACE.search(owner):
            raise TemplateLimitError("format specs with nested fields or widths of 5+ digits are not allowed")
        _check_ints((*args, *kwargs.values()), budget, f"str.{name}")
    return args


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that charges the budget, refuses exploding arguments and measures its result."""
    skip = 1 if hasattr(func, "jinja_pass_arg") else 0  # context / eval context / environment comes first

    @wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        budget = _budget()
        budget.call()
        value = args[skip] if len(args) > skip else None
        rest = args[skip + 1:]
        if name in _WIDTH_FILTERS:
            _check_ints((*rest, *kwargs.values()), budget, f"filter {name}")
        elif name == "format" and isinstance(value, str) and _WIDE_PERCENT.search(value):
            raise TemplateLimitError("format widths of 5+ digits or '*' are not allowed")
        elif name == "replace" and isinstance(value, str) and len(rest) >= 2:
            budget.allow(_replace_size(value, *rest[:3]), "filter replace")
        elif name == "join" and value is not None and not isinstance(value, str):
            items = list(value)
            separator = rest[0] if rest and isinstance(rest[0], str) else kwargs.get("d", "")
            budget.allow(_join_size(separator if isinstance(separator, str) else "", items), "filter join")
            args = (*args[:skip], items, *rest)
        result = func(*args, **kwargs)
        budget.produce(_size(result))
        return result

    return guarded


# --------------------------------------------------------------------------------------------- code generation


class _GuardedCodeGenerator(CodeGenerator):
    """jinja2's code generator, with guards on loops, concatenation and output (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loop_iterables: set[int] = set()

    def visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> Any:
        # jinja2 forbids custom node types, so a loop's iterable is marked by identity and wrapped here.
        if id(node) in self._loop_iterables:
            self.write("environment.mc_iter(")
            result = super().visit(node, *args, **kwargs)
            self.write(")")
            return result
        return super().visit(node, *args, **kwargs)

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        if node.recursive:
            self.fail("recursive loops are not allowed in automation templates", node.lineno)
        self._loop_iterables.add(id(node.iter))
        super().visit_For(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.mc_concat((")
        for argument in node.nodes:
            self.visit(argument, frame)
            self.write(", ")
        self.write("))")

    def _output_const_repr(self, group: Iterable[Any]) -> str:
        return f"environment.mc_out({super()._output_const_repr(group)})"

    def _output_child_pre(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        self.write("environment.mc_out(")
        super()._output_child_pre(node, frame, finalize)

    def _output_child_post(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        super()._output_child_post(node, frame, finalize)
        self.write(")")


# --------------------------------------------------------------------------------------------- helpers


def _json_default(value: Any) -> Any:
    if isinstance(value, Undefined):
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def to_json(value: Any) -> str:
    """``toJson``: compact JSON (dates as ISO text), as the reference's ``toJson``."""
    return json.dumps(value, default=_json_default, separators=(",", ":"), ensure_ascii=False)


def key_path(value: Any, path: str, default: Any = None) -> Any:
    """``keyPath(obj, "a.b.0")``: the value at a dotted path, map keys case-insensitive (as list filters)."""
    if not isinstance(path, str) or not path or path == ".":
        return value
    return get_path({"v": value}, "v." + path, default)


_TRUE_TEXT: Final = frozenset({"true", "1", "yes", "on", "y", "t"})


def truthy(value: Any) -> bool:
    """A rendered value read as a yes or no: text says so (``"true"``, ``"on"``, ``"1"``…; anything else is no,
    ``"false"`` included), other values by Python's truth."""
    if isinstance(value, str):
        return value.strip().lower() in _TRUE_TEXT
    return bool(value)


def go_text(value: Any) -> Any:
    """What a translated Go template prints: booleans as Go prints them (``true``, ``false``), the rest as it is."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def ternary(condition: Any, when_true: Any, when_false: Any) -> Any:
    """``ternary(cond, a, b)``: ``a`` when ``cond`` is truthy, else ``b``."""
    return when_true if condition else when_false


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with our code generator and guarded calls, operators and filters."""

    code_generator_class = _GuardedCodeGenerator
    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self) -> None:
        super().__init__(autoescape=False, undefined=ChainableUndefined, auto_reload=False, cache_size=0)
        self.globals.pop("lipsum", None)
        self.globals.update({"toJson": to_json, "keyPath": key_path, "ternary": ternary, "goText": go_text})
        self.filters["toJson"] = to_json
        self.filters = {name: _guard_filter(name, func) for name, func in self.filters.items()}

    # Called from generated code ----------------------------------------------------------------------

    def mc_iter(self, iterable: Any) -> Iterator[Any]:
        budget = _budget()
        for item in iterable:
            budget.iterate()
            yield item

    def mc_concat(self, items: tuple[Any, ...]) -> str:
        texts = [item if isinstance(item, str) else str(item) for item in items]
        _budget().produce(sum(len(t) for t in texts))
        return "".join(texts)

    def mc_out(self, text: str) -> str:
        _budget().produce(len(text))
        return text

    # Sandbox hooks ---------------------------------------------------------------------------------

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        budget = _budget()
        budget.call()
        args = _precheck_method(obj, args, kwargs, budget)
        result = super().call(context, obj, *args, **kwargs)
        budget.produce(_size(result))
        return result

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        budget = _budget()
        sequences = str | list | tuple
        if operator == "+" and isinstance(left, sequences) and isinstance(right, sequences):
            budget.produce(len(left) + len(right))
        elif operator == "*":
            if isinstance(left, sequences) and isinstance(right, int):
                budget.allow(len(left) * max(right, 0), "'*'")
            elif isinstance(right, sequences) and isinstance(left, int):
                budget.allow(len(right) * max(left, 0), "'*'")
            elif isinstance(left, int) and isinstance(right, int) and \
                    left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise TemplateLimitError(f"'*' would build an integer over {MAX_INT_BITS} bits")
        elif operator == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0 \
                and right * max(1, math.log2(abs(left))) > MAX_INT_BITS:
            raise TemplateLimitError(f"'**' would build an integer over {MAX_INT_BITS} bits")
        elif operator == "%" and isinstance(left, str) and _WIDE_PERCENT.search(left):
            raise TemplateLimitError("'%' format widths of 5+ digits or '*' are not allowed")
        result = super().call_binop(context, operator, left, right)
        if operator in ("*", "%") and isinstance(result, str | list | tuple):
            budget.produce(len(result))
        return result


# --------------------------------------------------------------------------------------------- engine

_MARKERS: Final = ("{{", "{%", "{#")


def is_template(text: Any) -> bool:
    """Whether a string holds template syntax (plain strings skip jinja2 altogether)."""
    return isinstance(text, str) and any(marker in text for marker in _MARKERS)


def _location_now(now: datetime, location: Location | None) -> datetime:
    return now.astimezone(location.tz) if location is not None else now.astimezone(UTC)


class TemplateEngine:
    """Compiles (once, cached) and renders templates and expressions within ``Limits``.

    ``clock`` is used only when a render is not given ``now``; the core always passes it, so tests and Lambda
    invocations see one frozen instant per evaluation.
    """

    def __init__(self, limits: Limits = DEFAULT_LIMITS, *, clock: Callable[[], datetime] | None = None,
                 cache_size: int = 1024) -> None:
        self.limits = limits
        self._clock = clock or (lambda: datetime.now(UTC))
        self._env = _Sandbox()
        self._templates: dict[str, Any] = {}
        self._expressions: dict[str, Any] = {}
        self._cache_size = cache_size

    # Compiling ------------------------------------------------------------------------------------------

    def _checked_source(self, source: Any, what: str) -> str:
        if not isinstance(source, str):
            raise TemplateError(f"{what} must be text, got {type(source).__name__}")
        if len(source) > self.limits.max_source:
            raise TemplateLimitError(f"{what} is {len(source)} characters; at most {self.limits.max_source}")
        return source

    def _compile(self, cache: dict[str, Any], source: str, build: Callable[[str], Any], what: str) -> Any:
        compiled = cache.get(source)
        if compiled is not None:
            return compiled
        try:
            compiled = build(source)
        except TemplateSyntaxError as error:
            raise TemplateError(f"{what} syntax error at line {error.lineno}: {error.message}") from None
        except (JinjaTemplateError, RecursionError, ValueError, TypeError) as error:
            raise TemplateError(f"{what} does not compile: {error}") from None
        if len(cache) >= self._cache_size:
            cache.clear()
        cache[source] = compiled
        return compiled

    def _build_template(self, source: str) -> Any:
        """A compiled template; MyController v2's Go templates (``{{.temp}}``) are translated first (``gotemplate``)."""
        from .gotemplate import looks_like_go, translate

        return self._env.from_string(translate(source) if looks_like_go(source) else source)

    def check(self, source: str) -> None:
        """Compile a template, raising ``TemplateError`` (with the line) when it is not valid."""
        if is_template(source):
            self._compile(self._templates, self._checked_source(source, "template"), self._build_template,
                          "template")

    def check_expression(self, source: str) -> None:
        """Compile an expression, raising ``TemplateError`` when it is not valid."""
        self._compile(self._expressions, self._checked_source(source, "expression"), self._build_expression,
                      "expression")

    def _build_expression(self, source: str) -> Any:
        if not source.strip():
            raise TemplateError("expression is empty")
        return self._env.compile_expression(source, undefined_to_none=True)

    # Running --------------------------------------------------------------------------------------------

    def _context(self, variables: Mapping[str, Any] | None, now: datetime | None,
                 location: Location | None) -> dict[str, Any]:
        instant = _location_now(now or self._clock(), location)

        def sun(event: str) -> Callable[..., datetime | None]:
            def helper(day: date | datetime | str | None = None) -> datetime | None:
                if location is None:
                    raise TemplateError(f"{event}() needs the system location (settings geoLocation)")
                if isinstance(day, str):
                    day = date.fromisoformat(day[:10])
                when = day.date() if isinstance(day, datetime) else day or instant.date()
                return sun_event(location, when, "sunrise" if event == "sunrise" else "sunset")

            return helper

        context = dict(variables) if variables else {}
        context.update(now=lambda: instant, sunrise=sun("sunrise"), sunset=sun("sunset"))
        return context

    def _run(self, run: Callable[[], Any], what: str) -> Any:
        token = _BUDGET.set(_Budget(self.limits))
        try:
            return run()
        except TemplateError:
            raise
        except SecurityError as error:
            raise TemplateError(f"{what} is not allowed: {error}") from None
        except RecursionError:
            raise TemplateLimitError(f"{what} recursed too deeply") from None
        except MemoryError:
            raise TemplateLimitError(f"{what} ran out of memory") from None
        except Exception as error:  # a user's template may fail in any way; it must not crash the worker
            raise TemplateError(f"{what} failed: {type(error).__name__}: {error}") from None
        finally:
            _BUDGET.reset(token)

    def render(self, source: str, variables: Mapping[str, Any] | None = None, *, now: datetime | None = None,
               location: Location | None = None) -> str:
        """Render a template; plain text (no ``{{``/``{%``/``{#``) comes back as it is."""
        if not is_template(source):
            return self._checked_source(source, "template")
        return self._render(source, self._context(variables, now, location))

    def _render(self, source: str, context: dict[str, Any]) -> str:
        template = self._compile(self._templates, self._checked_source(source, "template"), self._build_template,
                                 "template")
        limit = self.limits.max_output

        def run() -> str:
            parts: list[str] = []
            total = 0
            for chunk in template.generate(context):
                total += len(chunk)
                if total > limit:
                    raise TemplateLimitError(f"template output is longer than {limit} characters")
                parts.append(chunk)
            return "".join(parts)

        return str(self._run(run, "template"))

    def evaluate(self, expression: str, variables: Mapping[str, Any] | None = None, *,
                 now: datetime | None = None, location: Location | None = None) -> Any:
        """Evaluate an expression (``temperature > 25 and humidity < 60``) to a value; undefined is ``None``."""
        compiled = self._compile(self._expressions, self._checked_source(expression, "expression"),
                                 self._build_expression, "expression")
        context = self._context(variables, now, location)
        return self._run(lambda: compiled(**context), "expression")

    def render_value(self, value: Any, variables: Mapping[str, Any] | None = None, *, now: datetime | None = None,
                     location: Location | None = None, skip_keys: frozenset[str] = frozenset({"type"})) -> Any:
        """Render every string inside ``value`` (lists and map values, recursively); other values stay."""
        context: dict[str, Any] | None = None

        def walk(item: Any) -> Any:
            nonlocal context
            if isinstance(item, str):
                if not is_template(item):
                    return item
                if context is None:
                    context = self._context(variables, now, location)
                return self._render(item, context)
            if isinstance(item, list | tuple):
                return [walk(v) for v in item]
            if isinstance(item, dict):
                return {k: v if k in skip_keys else walk(v) for k, v in item.items()}
            return item

        return walk(value)


ENGINE: Final = TemplateEngine()
"""The shared engine (compiled templates are cached in it for the life of the process)."""


def render(source: str, variables: Mapping[str, Any] | None = None, *, now: datetime | None = None,
           location: Location | None = None) -> str:
    """Render with the shared engine."""
    return ENGINE.render(source, variables, now=now, location=location)


def evaluate_expression(text: str, variables: Mapping[str, Any] | None = None, *, now: datetime | None = None,
                        location: Location | None = None) -> Any:
    """Evaluate a task expression with the shared engine (the safe stand-in for the reference's JavaScript)."""
    return ENGINE.evaluate(text, variables, now=now, location=location)


def check_template(source: str) -> None:
    """Raise ``TemplateError`` naming the line if ``source`` is not a valid template."""
    ENGINE.check(source)


def check_expression(source: str) -> None:
    """Raise ``TemplateError`` if ``source`` is not a valid expression."""
    ENGINE.check_expression(source)
