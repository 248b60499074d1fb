"""The checks the automation schemas share, one helper each, so that a task, a schedule and a handler refuse the
same mistake with the same words: ids, durations, URLs, HTTP methods, templates, quick ids, handler parameters and
handler references, and how a nested model's errors read.

The ``Annotated`` types (``HttpMethod``, ``Timeout``, ``HandlerParameters``, ``HandlerIds``) carry their check, so
a field declared with one is checked wherever it appears.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Final, Literal, TypeVar, get_args

from pydantic import AfterValidator, BaseModel, ValidationError, field_validator
from pydantic_core import ErrorDetails

from mycontroller_protocol.ids import ID_PATTERN

from ...model import Kind, QuickIdError, parse_quick_id
from ..clock import parse_duration
from ..javascript import ScriptError, check_script
from ..templates import TemplateError, check_template, is_template

HandlerType = Literal["webhook", "email", "telegram", "sms", "mqtt", "resource", "backup", "noop"]
HANDLER_TYPES: Final[tuple[str, ...]] = get_args(HandlerType)
REFERENCE_PARAMETER_TYPES: Final = ("resource_by_quick_id", "resource_by_labels")
"""MyController v2's parameter types for ``resource`` handlers (a resource by quick id without its prefix, or the
resources carrying labels)."""
HTTP_METHODS: Final = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
VARIABLE_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
"""Variable and handler parameter names: identifiers, so that templates can name them."""
_HTTP_URL: Final = re.compile(r"^https?://[^\s/]+")

SpecModel = TypeVar("SpecModel", bound=BaseModel)


# --------------------------------------------------------------------------------------------- values


def check_id(value: str, what: str = "id") -> str:
    """``value`` when it is a valid resource id; ValueError naming ``what`` (``task id``) otherwise."""
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise ValueError(f"{what} {value!r} must be 1-128 characters of letters, digits, '_', '-', ':', '@', '+', "
                         "'~' (no dots)")
    return value


def check_duration(value: str, what: str, *, allow_empty: bool = True, positive: bool = False,
                   signed: bool = False) -> str:
    """A duration text that parses (``''`` allowed when ``allow_empty``); ``positive`` refuses zero."""
    if value == "" and allow_empty:
        return value
    parsed = parse_duration(value)
    if parsed.total_seconds() < 0 and not signed:
        raise ValueError(f"{what} must not be negative, got {value!r}")
    if positive and parsed.total_seconds() <= 0:
        raise ValueError(f"{what} must be longer than zero, got {value!r}")
    return value


def check_url(value: str, what: str = "url", *, allow_empty: bool = True) -> str:
    """An http(s) URL, or a template that will render one (checked again after rendering)."""
    if (value or not allow_empty) and not is_template(value) and not _HTTP_URL.match(value):
        raise ValueError(f"{what} must be an http(s) URL, got {value!r}")
    return value


def check_method(value: str, *, allow_empty: bool = False) -> str:
    """An HTTP method, upper-cased (``''`` kept when ``allow_empty``: the handler's own method applies)."""
    method = value.strip().upper()
    if (method or not allow_empty) and method not in HTTP_METHODS:
        raise ValueError(f"method must be one of {', '.join(HTTP_METHODS)}, got {value!r}")
    return method


def check_templates(value: Any, where: str) -> None:
    """Compile every template string inside ``value``; ``TemplateError`` becomes a ValueError naming ``where``."""
    if isinstance(value, str):
        if is_template(value):
            try:
                check_template(value)
            except TemplateError as error:
                raise ValueError(f"{where}: {error}") from None
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check_templates(item, f"{where}.{index}")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_templates(item, f"{where}.{key}")


def quick_id_of(text: str, kind: Kind, what: str) -> str:
    """``text`` as a quick id of ``kind`` (a bare id gets the prefix); ValueError naming ``what`` otherwise."""
    candidate = text if ":" in text else f"{kind.value}:{text}"
    try:
        quick = parse_quick_id(candidate)
    except QuickIdError as error:
        raise ValueError(f"{what}: {error}") from None
    if quick.kind != kind or quick.key_path:
        raise ValueError(f"{what} must name a {kind.value} (e.g. '{kind.value}:gw.1.1.V_STATUS'), got {text!r}"
                         if kind == Kind.FIELD else f"{what} must name a {kind.value}, got {text!r}")
    return str(quick)


def id_validator(what: str) -> Any:
    """The ``id`` field validator of a resource model: its error names the resource (``task id 'a.b' must ...``)."""

    def _check(value: str) -> str:
        return check_id(value, what)

    return field_validator("id")(_check)


def compiles_validator(field: str, check: Callable[[str], object],
                       error: type[Exception] | tuple[type[Exception], ...]) -> Any:
    """A field holding code (a script, an expression): ``check`` must accept it when it is not blank; what it
    raises as ``error`` is the field's validation message."""

    def _check(value: str) -> str:
        if value.strip():
            try:
                check(value)
            except error as refused:
                raise ValueError(str(refused)) from None
        return value

    return field_validator(field)(_check)


def script_validator(field: str) -> Any:
    """A field holding MyController v2's JavaScript: checked to compile in the sandbox when not blank."""
    return compiles_validator(field, check_script, ScriptError)


def empty_webhook_validator(field: str) -> Any:
    """A webhook object MyController v2's console sends as ``{}`` (or without a URL) when another type is chosen:
    read as none."""

    def _none_when_empty(value: Any) -> Any:
        return None if isinstance(value, dict) and not value.get("url") else value

    return field_validator(field, mode="before")(_none_when_empty)


def _timeout(value: str) -> str:
    return check_duration(value, "timeout", allow_empty=False, positive=True)


HttpMethod = Annotated[str, AfterValidator(check_method)]
"""An HTTP method (required), stored upper-cased."""
Timeout = Annotated[str, AfterValidator(_timeout)]
"""An HTTP call's timeout: a duration longer than zero."""


# --------------------------------------------------------------------------------------------- nested models


def validation_message(item: ErrorDetails) -> str:
    """One pydantic error's message without pydantic's ``Value error, `` prefix (our messages say it all)."""
    return str(item["msg"]).removeprefix("Value error, ")


def error_text(error: ValidationError) -> str:
    """A nested model's errors as one line, each naming its field (``spec.cronExpression: ...``)."""
    parts = []
    for item in error.errors():
        location = ".".join(str(p) for p in item["loc"])
        message = validation_message(item)
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts)


def validate_spec(model: type[SpecModel], value: Any) -> SpecModel:
    """``value`` (``None``: empty) as the spec model its resource's ``type`` chose; its errors as one ValueError,
    so that they are reported on the resource's ``spec`` field."""
    if isinstance(value, model):
        return value
    try:
        return model.model_validate(value if value is not None else {})
    except ValidationError as error:
        raise ValueError(error_text(error)) from None


# --------------------------------------------------------------------------------------------- handler references


def check_handler_parameters(value: dict[str, Any]) -> dict[str, Any]:
    """``{name: template string | {type: <handler type>, ...}}``; templates compile. Full per-type checks run after
    rendering (``handlers.prepare_calls``), since a typed field may be a template until then."""
    for name, parameter in value.items():
        if not VARIABLE_NAME.match(name):
            raise ValueError(f"parameter name {name!r} must be an identifier (letters, digits, '_')")
        if isinstance(parameter, dict):
            kind = parameter.get("type")
            if kind not in HANDLER_TYPES and kind not in REFERENCE_PARAMETER_TYPES:
                raise ValueError(f"{name}.type must be one of {', '.join(HANDLER_TYPES + REFERENCE_PARAMETER_TYPES)}, "
                                 f"got {kind!r}")
        elif not isinstance(parameter, str):
            raise ValueError(f"{name} must be a template string or an object with a handler 'type'")
        check_templates(parameter, name)
    return value


def handler_ids(value: list[str]) -> list[str]:
    """Handler references (``id`` or ``handler:id``) as bare ids, first occurrence kept."""
    ids: list[str] = []
    for index, text in enumerate(value):
        handler_id = text.split(":", 1)[1] if text.startswith("handler:") else text
        check_id(handler_id, f"handlers.{index}")
        if handler_id not in ids:
            ids.append(handler_id)
    return ids


HandlerParameters = Annotated[dict[str, Any], AfterValidator(check_handler_parameters)]
"""What a task or schedule passes its handlers (rendered against its variables when it fires)."""
HandlerIds = Annotated[list[str], AfterValidator(handler_ids)]
"""The handlers a task or schedule notifies."""
