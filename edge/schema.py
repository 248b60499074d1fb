"""Typed config sections checked by hand: what ``edge/config.py`` needs of pydantic, in the standard library.

The edge agent runs on small devices, and pydantic (its import, the compiled models and ``importlib.metadata``,
which its plugin loader reads) was about 14 MB of its resident memory (issue #19). A section is a class with
annotated fields (``str``, ``int``, ``float``, ``bool``, ``Path``, ``SecretStr``, ``Literal[…]``, another
section, ``list[…]``, ``dict[str, str]``, ``X | None``) and ``field(...)`` for defaults and bounds. Validation
is pydantic's lax mode as far as a YAML file can tell: ``"115200"`` is an int, ``yes`` a bool, and every
problem is collected with pydantic's words and location (``SectionError.errors()``), so that the messages
operators and the tests know stay the same.
"""

from __future__ import annotations

import copy
import inspect
import re
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal, Union

from .errors import EdgeError

_MISSING: Any = object()
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})


class SecretStr:
    """A string that never shows in a repr, a dump or a log line; ``get_secret_value()`` gives it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __str__(self) -> str:
        return "**********" if self._value else ""

    def __repr__(self) -> str:
        return f"SecretStr('{self}')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretStr) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class SectionError(EdgeError, ValueError):
    """Every problem found, each a dict with pydantic's ``type``, ``loc`` and ``msg``."""

    def __init__(self, title: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} validation error(s) for {title}: " + "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or '(top level)'}: {e['msg']}" for e in errors))
        self._errors = errors

    def errors(self) -> list[dict[str, Any]]:
        return list(self._errors)

    def error_count(self) -> int:
        return len(self._errors)


class _Invalid(EdgeError):
    """One value's problem: pydantic's error type and message."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class _Field:
    __slots__ = ("check", "default", "factory", "ge", "gt", "le", "pattern")

    def __init__(self, default: Any, factory: Callable[[], Any] | None, gt: float | None, ge: float | None,
                 le: float | None, pattern: str | None) -> None:
        self.default = default
        self.factory = factory
        self.gt, self.ge, self.le = gt, ge, le
        self.pattern = re.compile(pattern) if pattern is not None else None
        self.check: Callable[[Any, tuple[int | str, ...], list[dict[str, Any]]], Any] | None = None

    @property
    def required(self) -> bool:
        return self.default is _MISSING and self.factory is None

    def make_default(self) -> Any:
        return self.factory() if self.factory is not None else self.default

    def bounds(self, value: Any) -> None:
        if self.gt is not None and not value > self.gt:
            raise _Invalid("greater_than", f"Input should be greater than {_number(self.gt)}")
        if self.ge is not None and not value >= self.ge:
            raise _Invalid("greater_than_equal", f"Input should be greater than or equal to {_number(self.ge)}")
        if self.le is not None and not value <= self.le:
            raise _Invalid("less_than_equal", f"Input should be less than or equal to {_number(self.le)}")
        if self.pattern is not None and not self.pattern.search(value):
            raise _Invalid("string_pattern_mismatch", f"String should match pattern '{self.pattern.pattern}'")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def field(default: Any = _MISSING, *, default_factory: Callable[[], Any] | None = None, gt: float | None = None,
          ge: float | None = None, le: float | None = None, pattern: str | None = None) -> Any:
    """A field's default and bounds, as pydantic's ``Field`` takes them."""
    return _Field(default, default_factory, gt, ge, le, pattern)


def _error(kind: str, loc: tuple[int | str, ...], message: str) -> dict[str, Any]:
    return {"type": kind, "loc": loc, "msg": message}


def _as_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise _Invalid("string_type", "Input should be a valid string")


def _as_int(value: Any) -> int:
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise _Invalid("int_from_float", "Input should be a valid integer, got a number with a fractional part")
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise _Invalid("int_parsing", "Input should be a valid integer, unable to parse string as an integer"
                           ) from None
    raise _Invalid("int_type", "Input should be a valid integer")


def _as_float(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise _Invalid("float_parsing", "Input should be a valid number, unable to parse string as a number"
                           ) from None
    raise _Invalid("float_type", "Input should be a valid number")


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    if isinstance(value, (int, float, str)):
        raise _Invalid("bool_parsing", "Input should be a valid boolean, unable to interpret input")
    raise _Invalid("bool_type", "Input should be a valid boolean")


def _as_path(value: Any) -> Path:
    if isinstance(value, (str, Path)):
        return Path(value)
    raise _Invalid("path_type", "Input is not a valid path for <class 'pathlib.Path'>")


def _as_secret(value: Any) -> SecretStr:
    return value if isinstance(value, SecretStr) else SecretStr(_as_str(value))


_SCALARS: dict[Any, Callable[[Any], Any]] = {str: _as_str, int: _as_int, float: _as_float, bool: _as_bool,
                                             Path: _as_path, SecretStr: _as_secret, Any: lambda value: value}

Check = Callable[[Any, tuple[int | str, ...], list[dict[str, Any]]], Any]
"""Validates a value at a location: its converted value, or ``None`` with the problems appended."""


def _scalar(convert: Callable[[Any], Any], spec: _Field | None) -> Check:
    def check(value: Any, loc: tuple[int | str, ...], errors: list[dict[str, Any]]) -> Any:
        try:
            value = convert(value)
            if spec is not None:
                spec.bounds(value)
        except _Invalid as invalid:
            errors.append(_error(invalid.kind, loc, invalid.message))
            return None
        return value
    return check


def _literal(choices: tuple[Any, ...]) -> Callable[[Any], Any]:
    words = [repr(choice) for choice in choices]
    expected = " or ".join([", ".join(words[:-1]), words[-1]]) if len(words) > 1 else words[0]

    def convert(value: Any) -> Any:
        if value in choices and type(value) is type(choices[choices.index(value)]):
            return value
        raise _Invalid("literal_error", f"Input should be {expected}")
    return convert


def _optional(inner: Check) -> Check:
    def check(value: Any, loc: tuple[int | str, ...], errors: list[dict[str, Any]]) -> Any:
        return None if value is None else inner(value, loc, errors)
    return check


def _first_of(checks: list[Check]) -> Check:
    """``str | float``: the first member that takes the value (a string stays a string)."""
    def check(value: Any, loc: tuple[int | str, ...], errors: list[dict[str, Any]]) -> Any:
        for member in checks:
            tried: list[dict[str, Any]] = []
            result = member(value, loc, tried)
            if not tried:
                return result
        errors.extend(tried)
        return None
    return check


def _list_of(item: Check) -> Check:
    def check(value: Any, loc: tuple[int | str, ...], errors: list[dict[str, Any]]) -> Any:
        if not isinstance(value, (list, tuple)):
            errors.append(_error("list_type", loc, "Input should be a valid list"))
            return None
        before = len(errors)
        items = [item(element, (*loc, index), errors) for index, element in enumerate(value)]
        return items if len(errors) == before else None
    return check


def _dict_of(key: Check, item: Check) -> Check:
    def check(value: Any, loc: tuple[int | str, ...], errors: list[dict[str, Any]]) -> Any:
        if not isinstance(value, dict):
            errors.append(_error("dict_type", loc, "Input should be a valid dictionary"))
            return None
        before = len(errors)
        items = {key(k, (*loc, str(k)), errors): item(v, (*loc, str(k)), errors) for k, v in value.items()}
        return items if len(errors) == before else None
    return check


def _section(cls: type[Model]) -> Check:
    def check(value: Any, loc: tuple[int | str, ...], errors: list[dict[str, Any]]) -> Any:
        if isinstance(value, cls):
            return value
        if not isinstance(value, dict):
            errors.append(_error("model_type", loc, f"Input should be a valid dictionary or instance of "
                                                   f"{cls.__name__}"))
            return None
        return cls._build(value, loc, errors)
    return check


def _compile(annotation: Any, spec: _Field | None) -> Check:
    """The check for a field's annotation; ``spec``'s bounds apply to the value inside ``X | None``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (Union, types.UnionType):
        members = [arg for arg in args if arg is not type(None)]
        inner = _compile(members[0], spec) if len(members) == 1 else _first_of([_compile(m, spec) for m in members])
        return _optional(inner) if len(members) < len(args) else inner
    if origin is Literal:
        return _scalar(_literal(args), spec)
    if origin is list:
        return _list_of(_compile(args[0], None))
    if origin is dict:
        return _dict_of(_compile(args[0], None), _compile(args[1], None))
    if isinstance(annotation, type) and issubclass(annotation, Model):
        return _section(annotation)
    return _scalar(_SCALARS[annotation], spec)


class Model:
    """A config section: ``Section(**values)`` or ``Section.model_validate(mapping)`` check and convert."""

    extra_allowed: ClassVar[bool] = False
    """Unknown keys are kept (``model_extra``, attributes) rather than reported as typos."""
    field_checks: ClassVar[dict[str, Callable[[Any], Any]]] = {}
    """A field's own check after its type's (pydantic's ``field_validator``): raise ``ValueError`` to refuse."""
    before_checks: ClassVar[dict[str, Callable[[Any], Any]]] = {}
    """A field's conversion before its type is checked (``field_validator(mode="before")``)."""
    _fields: ClassVar[dict[str, _Field]]
    model_extra: dict[str, Any] | None

    def __init__(self, **data: Any) -> None:
        errors: list[dict[str, Any]] = []
        built = type(self)._build(data, (), errors)
        if built is None:
            raise SectionError(type(self).__name__, errors)
        self.__dict__.update(built.__dict__)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._fields = {}
        for name in inspect.get_annotations(cls):
            if not name.startswith("_"):
                value = cls.__dict__.get(name, _MISSING)
                spec = value if isinstance(value, _Field) else _Field(value, None, None, None, None, None)
                cls._fields[name] = spec
                if name in cls.__dict__:
                    delattr(cls, name)  # the instance's value, never the class's

    @classmethod
    def _specs(cls) -> dict[str, _Field]:
        """The fields of the class and its bases, in order, their checks compiled on first use."""
        specs: dict[str, _Field] = {}
        for base in reversed(cls.__mro__):
            specs.update(base.__dict__.get("_fields", {}))
        if any(spec.check is None for spec in specs.values()):
            hints = typing.get_type_hints(cls)
            for name, spec in specs.items():
                spec.check = spec.check or _compile(hints[name], spec)
        return specs

    @classmethod
    def _build(cls, data: dict[str, Any], loc: tuple[int | str, ...], errors: list[dict[str, Any]]) -> Any:
        before = len(errors)
        specs = cls._specs()
        values: dict[str, Any] = {}
        for name, spec in specs.items():
            if name not in data:
                if spec.required:
                    errors.append(_error("missing", (*loc, name), "Field required"))
                values[name] = None if spec.required else spec.make_default()
                continue
            values[name] = cls._field_value(name, spec, data[name], (*loc, name), errors)
        extra = {key: value for key, value in data.items() if key not in specs}
        if not cls.extra_allowed:
            errors.extend(_error("extra_forbidden", (*loc, key), "Extra inputs are not permitted") for key in extra)
        if len(errors) > before:
            return None
        section = cls.__new__(cls)
        section.__dict__.update(values)
        section.__dict__["model_extra"] = extra if cls.extra_allowed else None
        try:
            section.check()
        except ValueError as error:
            errors.append(_error("value_error", loc, f"Value error, {error}"))
            return None
        return section

    @classmethod
    def _field_value(cls, name: str, spec: _Field, value: Any, loc: tuple[int | str, ...],
                     errors: list[dict[str, Any]]) -> Any:
        if name in cls.before_checks:
            value = cls.before_checks[name](value)
        before = len(errors)
        assert spec.check is not None
        value = spec.check(value, loc, errors)
        if len(errors) > before or name not in cls.field_checks:
            return value
        try:
            return cls.field_checks[name](value)
        except ValueError as error:
            errors.append(_error("value_error", loc, f"Value error, {error}"))
            return None

    def check(self) -> None:
        """The section as a whole (pydantic's ``model_validator(mode="after")``): raise ``ValueError`` to refuse."""

    @classmethod
    def model_validate(cls, data: Any) -> Any:
        errors: list[dict[str, Any]] = []
        section = _section(cls)(data, (), errors)
        if section is None:
            raise SectionError(cls.__name__, errors)
        return section

    def model_copy(self, update: dict[str, Any] | None = None) -> Any:
        twin = copy.copy(self)
        twin.__dict__.update(update or {})
        return twin

    def model_dump(self, mode: str = "json", exclude_none: bool = True) -> dict[str, Any]:
        """The section as plain data (paths as strings, secrets masked); ``mode`` is always JSON's."""
        items = [(name, self.__dict__[name]) for name in self._specs()]
        items += list((self.model_extra or {}).items())
        return {name: _plain(value, exclude_none) for name, value in items if not (exclude_none and value is None)}

    def __getattr__(self, name: str) -> Any:
        extra = self.__dict__.get("model_extra")
        if extra and name in extra:
            return extra[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.__dict__ == self.__dict__

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in self.__dict__.items() if name != "model_extra")
        return f"{type(self).__name__}({shown})"


def _plain(value: Any, exclude_none: bool) -> Any:
    if isinstance(value, Model):
        return value.model_dump(exclude_none=exclude_none)
    if isinstance(value, (Path, SecretStr)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(item, exclude_none) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item, exclude_none) for key, item in value.items()}
    return value
