"""Schemas of the automation resources — task, schedule, handler, forward payload — in the reference's JSON shape.

camelCase on the wire (``model.CamelModel``); records are ``Model.record()``. Validation happens when a resource
is saved, so that a bad one is refused with an error naming the field (``evaluationConfig.rule.conditions.0.
operator``, ``spec.cronExpression``) instead of failing later in a worker: durations parse, templates and
expressions compile, regexes compile, cron expressions and time zones are real, handler specs fit their type.

Where we differ from the reference (on purpose):

* ``evaluationType`` is ``rule``, ``expression`` (a jinja2 expression in the sandbox, in place of JavaScript) or
  ``webhook``; ``javascript`` is refused with a message saying what to use instead.
* ``eventFilter.filters`` values may be ``{"operator": "gt", "value": 20}`` besides a plain value (``eq``, the
  reference's only operator).
* Schedules carry a ``timezone`` (IANA name; default: the location's zone, else UTC), and ``validity`` times
  apply every day when no dates are given (the reference ignored them then).
* A task's ``triggerOnEvent`` defaults to ``true`` unless it has an ``executionInterval``.
* Task state keeps ``reEnableAt`` and the ids of recent triggers (so a redelivered event is not counted twice).
"""

from __future__ import annotations

import datetime as _dt
import re
from datetime import date, time
from typing import Annotated, Any, Final, Literal

from croniter import croniter
from pydantic import (
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..model import ID_PATTERN, CamelModel, Kind, QuickIdError, State, parse_quick_id
from ..ports import FILTER_OPERATORS, Filter
from ..query import QueryError, compile_filter
from .clock import parse_duration, zone
from .templates import TemplateError, check_expression, check_template, is_template

EVENT_TYPES: Final = ("created", "updated", "deleted", "requested")
ENTITY_TYPES: Final = tuple(k.value for k in Kind)
DAMPENING_TYPES: Final = ("none", "consecutive", "evaluation", "active_duration")
EVALUATION_TYPES: Final = ("rule", "expression", "webhook")
SCHEDULE_TYPES: Final = ("repeat", "cron", "simple", "sunrise", "sunset")
FREQUENCIES: Final = ("daily", "weekly", "monthly", "on_date")
HANDLER_TYPES: Final = ("webhook", "email", "telegram", "sms", "mqtt", "resource", "noop")
VARIABLE_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
RESERVED_NAMES: Final = frozenset({"event", "entity", "task", "schedule", "now", "sunrise", "sunset", "toJson",
                                   "keyPath", "ternary", "range", "dict", "namespace", "value"})
"""Names the evaluator provides itself; variables may not shadow them."""
HISTORY_LIMIT: Final = 10
"""Executions a task keeps in its history (more when its dampening needs a longer window)."""

HandlerType = Literal["webhook", "email", "telegram", "sms", "mqtt", "resource", "noop"]
HTTP_METHODS: Final = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")


# --------------------------------------------------------------------------------------------- checks


def check_id(value: str, what: str = "id") -> str:
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


def _error_text(error: ValidationError) -> str:
    """A nested model's errors as one line, each naming its field (``spec.cronExpression: ...``)."""
    parts = []
    for item in error.errors():
        location = ".".join(str(p) for p in item["loc"])
        message = str(item["msg"]).removeprefix("Value error, ")
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts)


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


# --------------------------------------------------------------------------------------------- variables


class TemplateVariable(CamelModel):
    """A string rendered as a template (the reference's ``string`` variable)."""

    type: Literal["string", "template"] = "string"
    value: str = ""

    @field_validator("value")
    @classmethod
    def _template(cls, value: str) -> str:
        check_templates(value, "value")
        return value


class QuickIdVariable(CamelModel):
    """A resource looked up by quick id (``field:gw.1.1.V_TEMP``, or ``resourceType`` + a bare id), then keyPath."""

    type: Literal["resource_by_quick_id"]
    resource_type: str = ""
    quick_id: str
    key_path: str = ""

    @model_validator(mode="after")
    def _quick_id(self) -> QuickIdVariable:
        full = self.full_quick_id
        try:
            parse_quick_id(full)
        except QuickIdError as error:
            raise ValueError(f"quickId: {error}") from None
        return self

    @property
    def full_quick_id(self) -> str:
        if ":" in self.quick_id or not self.resource_type:
            return self.quick_id
        return f"{self.resource_type}:{self.quick_id}"


class LabelsVariable(CamelModel):
    """The first resource of a kind (by id) carrying all the given labels, then keyPath."""

    type: Literal["resource_by_labels"]
    resource_type: str
    labels: dict[str, str] = Field(min_length=1)
    key_path: str = ""

    @field_validator("resource_type")
    @classmethod
    def _kind(cls, value: str) -> str:
        try:
            parse_quick_id(f"{value}:x.x.x.x")
        except QuickIdError:
            raise ValueError(f"resourceType {value!r} is not one of {', '.join(ENTITY_TYPES)}") from None
        return value


class WebhookCall(CamelModel):
    """An HTTP call whose JSON answer becomes a variable (or decides a ``webhook`` evaluation). The caller makes
    the call (``tasks.WebhookResolver``); string fields are rendered as templates first."""

    type: Literal["webhook"] = "webhook"
    url: str
    method: str = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    query_parameters: dict[str, Any] = Field(default_factory=dict)
    body: Any = None
    expected_status: int = Field(default=200, ge=100, le=599)
    insecure: bool = False
    timeout: str = "10s"

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        method = value.strip().upper()
        if method not in HTTP_METHODS:
            raise ValueError(f"method must be one of {', '.join(HTTP_METHODS)}, got {value!r}")
        return method

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not is_template(value) and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"url must be an http(s) URL, got {value!r}")
        check_templates(value, "url")
        return value

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: str) -> str:
        return check_duration(value, "timeout", allow_empty=False, positive=True)

    @field_validator("headers", "query_parameters", "body")
    @classmethod
    def _templates(cls, value: Any, info: ValidationInfo) -> Any:
        check_templates(value, str(info.field_name))
        return value


VariableSpec = Annotated[TemplateVariable | QuickIdVariable | LabelsVariable | WebhookCall, Field(discriminator="type")]
Variables = dict[
    str,
    Annotated[
        Annotated[str, Tag("template")] | Annotated[VariableSpec, Tag("spec")],
        Discriminator(lambda value: "template" if isinstance(value, str) else "spec"),
    ],
]
"""Task and schedule variables: a template string, or an object whose ``type`` says how to resolve it."""


def _check_variable_names(value: dict[str, Any]) -> dict[str, Any]:
    for name, spec in value.items():
        if not VARIABLE_NAME.match(name):
            raise ValueError(f"variable name {name!r} must be an identifier (letters, digits, '_')")
        if name in RESERVED_NAMES:
            raise ValueError(f"variable name {name!r} is reserved ({', '.join(sorted(RESERVED_NAMES))})")
        if isinstance(spec, str):
            check_templates(spec, name)
    return value


def _check_handler_parameters(value: dict[str, Any]) -> dict[str, Any]:
    """``{name: template string | {type: <handler type>, ...}}``; templates compile. Full per-type checks run after
    rendering (``handlers.prepare_calls``), since a typed field may be a template until then."""
    for name, parameter in value.items():
        if not VARIABLE_NAME.match(name):
            raise ValueError(f"parameter name {name!r} must be an identifier (letters, digits, '_')")
        if isinstance(parameter, dict):
            kind = parameter.get("type")
            if kind not in HANDLER_TYPES:
                raise ValueError(f"{name}.type must be one of {', '.join(HANDLER_TYPES)}, got {kind!r}")
        elif not isinstance(parameter, str):
            raise ValueError(f"{name} must be a template string or an object with a handler 'type'")
        check_templates(parameter, name)
    return value


def _handler_ids(value: list[str]) -> list[str]:
    ids: list[str] = []
    for index, text in enumerate(value):
        handler_id = text.split(":", 1)[1] if text.startswith("handler:") else text
        check_id(handler_id, f"handlers.{index}")
        if handler_id not in ids:
            ids.append(handler_id)
    return ids


# --------------------------------------------------------------------------------------------- task


class Dampening(CamelModel):
    """When a true evaluation counts: ``none``; ``consecutive`` (the last ``occurrences`` all true);
    ``evaluation`` (``occurrences`` of the last ``evaluation`` true); ``active_duration`` (true for that long)."""

    type: Literal["none", "consecutive", "evaluation", "active_duration"] = "none"
    occurrences: int = Field(default=0, ge=0, le=1000)
    evaluation: int = Field(default=0, ge=0, le=1000)
    active_duration: str = ""

    @model_validator(mode="after")
    def _check(self) -> Dampening:
        if self.type == "consecutive" and self.occurrences < 1:
            raise ValueError("occurrences must be at least 1 for consecutive dampening")
        if self.type == "evaluation":
            if self.occurrences < 1:
                raise ValueError("occurrences must be at least 1 for evaluation dampening")
            if self.evaluation < self.occurrences:
                raise ValueError(f"evaluation ({self.evaluation}) must be at least occurrences ({self.occurrences})")
        if self.type == "active_duration":
            check_duration(self.active_duration, "activeDuration", allow_empty=False, positive=True)
        elif self.active_duration:
            check_duration(self.active_duration, "activeDuration")
        return self


def filter_of(key: str, value: Any) -> Filter:
    """An event filter entry as a list-query filter: a plain value is ``eq``; ``{operator, value}`` (or the list
    query's ``{o, v}``) names the operator."""
    if isinstance(value, dict) and ("operator" in value or "o" in value):
        return Filter(key, str(value.get("operator", value.get("o"))), value.get("value", value.get("v")))
    return Filter(key, "eq", value)


class EventFilter(CamelModel):
    """Which bus events trigger a task: event types, entity types (empty = any) and key-path filters on the entity."""

    event_types: list[Literal["created", "updated", "deleted", "requested"]] = Field(default_factory=list)
    entity_types: list[str] = Field(default_factory=list)
    filters: dict[str, Any] = Field(default_factory=dict)

    @field_validator("entity_types")
    @classmethod
    def _entity_types(cls, value: list[str]) -> list[str]:
        for index, item in enumerate(value):
            if item not in ENTITY_TYPES:
                raise ValueError(f"entityTypes.{index}: {item!r} is not one of {', '.join(ENTITY_TYPES)}")
        return value

    @field_validator("filters")
    @classmethod
    def _filters(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key, item in value.items():
            try:
                compile_filter(filter_of(key, item))
            except QueryError as error:
                raise ValueError(f"{key}: {error}") from None
        return value


def condition_value(operator: str, value: Any) -> Any:
    """A condition's value as the operator wants it: list operators take a JSON list written as text too."""
    if operator in ("in", "nin", "range_in", "range_not_in") and isinstance(value, str):
        import json

        try:
            parsed = json.loads(value)
        except ValueError:
            return [part.strip() for part in value.split(",")] if operator in ("in", "nin") else value
        return parsed if isinstance(parsed, list) else [parsed]
    return value


class Condition(CamelModel):
    """``{variable, operator, value}``: ``variable`` is a name and optional key path (``temp.current.value``)."""

    variable: str = Field(min_length=1)
    operator: Literal["eq", "ne", "in", "nin", "range_in", "range_not_in", "gt", "lt", "gte", "lte", "exists",
                      "regex"] = "eq"
    value: Any = None

    @field_validator("operator", mode="before")
    @classmethod
    def _operator(cls, value: Any) -> Any:
        if value in (None, ""):
            return "eq"
        if isinstance(value, str) and value.strip().lower() not in FILTER_OPERATORS:
            raise ValueError(f"operator {value!r} is not one of {', '.join(FILTER_OPERATORS)}")
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _value(self) -> Condition:
        if is_template(self.value):
            check_templates(self.value, "value")
            return self
        try:
            compile_filter(Filter(self.variable, self.operator, condition_value(self.operator, self.value)))
        except QueryError as error:
            raise ValueError(f"value: {error}") from None
        return self


class Rule(CamelModel):
    match_all: bool = False
    """``true``: every condition must hold (AND); ``false``: any one (OR), as in the reference."""
    conditions: list[Condition] = Field(default_factory=list, max_length=100)


class EvaluationConfig(CamelModel):
    rule: Rule = Field(default_factory=Rule)
    expression: str = ""
    """A jinja2 expression (``temperature > 25 and humidity < 60``); a dict result may carry ``isTriggered`` and
    extra variables for the handlers, as the reference's JavaScript result did."""
    webhook: WebhookCall | None = None
    """For ``webhook`` evaluation: called with the variables; its JSON answer's ``isTriggered`` decides."""

    @field_validator("expression")
    @classmethod
    def _expression(cls, value: str) -> str:
        if value.strip():
            try:
                check_expression(value)
            except TemplateError as error:
                raise ValueError(str(error)) from None
        return value


class ExecutionRecord(CamelModel):
    triggered: bool
    timestamp: str


class TaskState(CamelModel):
    last_evaluation: str | None = None
    last_success: str | None = None
    """When the task last notified its handlers."""
    message: str = ""
    last_status: bool = False
    """The dampened result of the last evaluation (``ignoreDuplicate`` notifies only on its rise)."""
    executed_count: int = 0
    executions_history: list[ExecutionRecord] = Field(default_factory=list)
    """Oldest first, at most ``HISTORY_LIMIT`` (or the dampening window, if longer)."""
    active_since: str | None = None
    re_enable_at: str | None = None
    recent_triggers: list[str] = Field(default_factory=list)


class Task(CamelModel):
    """A rule over events and variables that notifies handlers (the reference's task)."""

    id: str
    description: str = ""
    enabled: bool = True
    ignore_duplicate: bool = False
    auto_disable: bool = False
    re_enable: bool = False
    re_enable_duration: str = ""
    variables: Variables = Field(default_factory=dict)
    dampening: Dampening = Field(default_factory=Dampening)
    trigger_on_event: bool | None = None
    event_filter: EventFilter = Field(default_factory=EventFilter)
    execution_interval: str = ""
    evaluation_type: Literal["rule", "expression", "webhook"] = "rule"
    evaluation_config: EvaluationConfig = Field(default_factory=EvaluationConfig)
    handler_parameters: dict[str, Any] = Field(default_factory=dict)
    handlers: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    modified_on: str | None = None
    state: TaskState = Field(default_factory=TaskState)
    _compiled: Any = PrivateAttr(default=None)
    """Cache slot for ``tasks.compile_task`` (filters and conditions compiled once per parsed task)."""

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return check_id(value, "task id")

    @field_validator("evaluation_type", mode="before")
    @classmethod
    def _evaluation_type(cls, value: Any) -> Any:
        if value in (None, ""):
            return "rule"
        if value == "javascript":
            raise ValueError("javascript is not supported; use 'expression' (a jinja2 expression, e.g. "
                             "'temperature > 25') or 'rule'")
        return value

    @field_validator("re_enable_duration")
    @classmethod
    def _re_enable_duration(cls, value: str) -> str:
        return check_duration(value, "reEnableDuration")

    @field_validator("execution_interval")
    @classmethod
    def _execution_interval(cls, value: str) -> str:
        return check_duration(value, "executionInterval", positive=bool(value))

    @field_validator("variables")
    @classmethod
    def _variables(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _check_variable_names(value)

    @field_validator("handler_parameters")
    @classmethod
    def _parameters(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _check_handler_parameters(value)

    @field_validator("handlers")
    @classmethod
    def _handlers(cls, value: list[str]) -> list[str]:
        return _handler_ids(value)

    @model_validator(mode="after")
    def _consistent(self) -> Task:
        if self.trigger_on_event is None:
            self.trigger_on_event = not self.execution_interval
        if self.re_enable and self.auto_disable and not self.re_enable_duration:
            raise ValueError("reEnableDuration is required when autoDisable and reEnable are set")
        if self.re_enable_duration:
            check_duration(self.re_enable_duration, "reEnableDuration", positive=True)
        if self.evaluation_type == "expression" and not self.evaluation_config.expression.strip():
            raise ValueError("evaluationConfig.expression is required when evaluationType is 'expression'")
        if self.evaluation_type == "webhook" and self.evaluation_config.webhook is None:
            raise ValueError("evaluationConfig.webhook is required when evaluationType is 'webhook'")
        return self


# --------------------------------------------------------------------------------------------- schedule


_TIME_OF_DAY: Final = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?$")


def parse_time_of_day(value: str, what: str = "time") -> time:
    """``H:MM``, ``HH:MM`` or ``HH:MM:SS[.ffffff]`` as a time of day (ValueError naming ``what``)."""
    match = _TIME_OF_DAY.match(value.strip())
    try:
        if match is None:
            raise ValueError
        hour, minute, second, fraction = match.groups()
        return time(int(hour), int(minute), int(second or 0), int((fraction or "0").ljust(6, "0")))
    except ValueError:
        raise ValueError(f"{what} must be a time of day 'HH:MM[:SS]', got {value!r}") from None


def _parse_date(value: str, what: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{what} must be a date 'YYYY-MM-DD', got {value!r}") from None


class _Range(CamelModel):
    """``{from, to}``, each empty or checked by the subclass's parser."""

    from_: str = Field(default="", alias="from")
    to: str = ""

    @staticmethod
    def _check(value: str, what: str) -> None:
        raise NotImplementedError

    @field_validator("from_", "to")
    @classmethod
    def _bound(cls, value: str, info: ValidationInfo) -> str:
        if value:
            cls._check(value, "from" if info.field_name == "from_" else "to")
        return value


class DateRange(_Range):
    @staticmethod
    def _check(value: str, what: str) -> None:
        _parse_date(value, what)


class TimeRange(_Range):
    @staticmethod
    def _check(value: str, what: str) -> None:
        parse_time_of_day(value, what)


class Validity(CamelModel):
    """When a schedule may fire: between dates (inclusive) and, every day or at the date ends, between times."""

    enabled: bool = True
    date: DateRange = Field(default_factory=DateRange)
    time: TimeRange = Field(default_factory=TimeRange)
    validate_time_everyday: bool = False

    @model_validator(mode="after")
    def _order(self) -> Validity:
        if self.date.from_ and self.date.to and self.date.from_ > self.date.to:
            raise ValueError(f"date.from ({self.date.from_}) is after date.to ({self.date.to})")
        return self


class RepeatSpec(CamelModel):
    interval: str
    repeat_count: int = Field(default=0, ge=0)
    """Runs in all (0: no limit); the schedule disables itself after the last."""

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        check_duration(value, "interval", allow_empty=False, positive=True)
        if parse_duration(value).total_seconds() < 1:
            raise ValueError(f"interval must be at least 1s, got {value!r}")
        return value


CRON_MACROS: Final[dict[str, str]] = {
    "@yearly": "0 0 0 1 1 *", "@annually": "0 0 0 1 1 *", "@monthly": "0 0 0 1 * *", "@weekly": "0 0 0 * * 0",
    "@daily": "0 0 0 * * *", "@midnight": "0 0 0 * * *", "@hourly": "0 0 * * * *",
}


def normalize_cron(expression: str) -> str:
    """A cron expression as 6 fields with seconds first (the reference's form); 5 fields get second 0;
    ``@daily`` and friends expand. ValueError when croniter cannot read it."""
    text = " ".join(expression.split())
    text = CRON_MACROS.get(text.lower(), text)
    fields = text.split(" ")
    if len(fields) == 5:
        fields.insert(0, "0")
    if len(fields) != 6:
        raise ValueError(f"cron expression {expression!r} must have 6 fields (second minute hour day-of-month "
                         "month day-of-week) or 5 (no seconds)")
    normalized = " ".join(fields)
    if not croniter.is_valid(normalized, second_at_beginning=True):
        raise ValueError(f"cron expression {expression!r} is not valid")
    return normalized


class CronSpec(CamelModel):
    cron_expression: str = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _alias(cls, data: Any) -> Any:
        if isinstance(data, dict) and "cronExpression" not in data and "expression" in data:
            return {**data, "cronExpression": data["expression"]}
        return data

    @field_validator("cron_expression")
    @classmethod
    def _cron(cls, value: str) -> str:
        if value.strip().lower().startswith("@every"):
            raise ValueError("use a 'repeat' schedule for '@every <interval>'")
        normalize_cron(value)
        return value


DAY_NAMES: Final = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def day_of_week_field(value: str | list[Any]) -> str:
    """A cron day-of-week field from ``"1,3,5"``, ``"MON-FRI"``, ``[1, 3]`` or ``"*"`` (0 or 7 is Sunday)."""
    text = ",".join(str(v).strip() for v in value) if isinstance(value, list) else str(value).strip()
    text = text or "*"
    if not croniter.is_valid(f"0 0 0 * * {text}", second_at_beginning=True):
        raise ValueError(f"dayOfWeek {value!r} is not a day-of-week list (0-6 from Sunday, or SUN-SAT)")
    return text


class SimpleSpec(CamelModel):
    """``simple``, ``sunrise`` and ``sunset`` schedules: a frequency, a day and a time (sun types: an offset)."""

    frequency: Literal["daily", "weekly", "monthly", "on_date"] = "daily"
    day_of_week: str | list[int | str] = ""
    date_of_month: int = Field(default=0, ge=0, le=31)
    date: str = ""
    time: str = ""
    offset: str = ""

    @field_validator("time")
    @classmethod
    def _time(cls, value: str) -> str:
        if value:
            parse_time_of_day(value, "time")
        return value

    @field_validator("date")
    @classmethod
    def _date(cls, value: str) -> str:
        if value:
            _parse_date(value, "date")
        return value

    @field_validator("offset")
    @classmethod
    def _offset(cls, value: str) -> str:
        return check_duration(value, "offset", signed=True)

    @field_validator("day_of_week")
    @classmethod
    def _day_of_week(cls, value: str | list[Any]) -> str | list[Any]:
        if value not in ("", []):
            day_of_week_field(value)
        return value

    @model_validator(mode="after")
    def _frequency(self) -> SimpleSpec:
        if self.frequency == "weekly" and self.day_of_week in ("", [], "*"):
            raise ValueError("dayOfWeek is required for a weekly frequency")
        if self.frequency == "monthly" and not self.date_of_month:
            raise ValueError("dateOfMonth (1-31) is required for a monthly frequency")
        if self.frequency == "on_date" and not self.date:
            raise ValueError("date is required for an on_date frequency")
        return self

    @property
    def time_of_day(self) -> _dt.time:
        return parse_time_of_day(self.time, "time") if self.time else _dt.time(0, 0)


SCHEDULE_SPECS: Final[dict[str, type[CamelModel]]] = {
    "repeat": RepeatSpec, "cron": CronSpec, "simple": SimpleSpec, "sunrise": SimpleSpec, "sunset": SimpleSpec,
}


class ScheduleState(CamelModel):
    last_run: str | None = None
    last_status: bool = False
    message: str = ""
    executed_count: int = 0


class Schedule(CamelModel):
    """Runs its handlers at times (the reference's schedule)."""

    id: str
    description: str = ""
    enabled: bool = True
    labels: dict[str, str] = Field(default_factory=dict)
    validity: Validity = Field(default_factory=Validity)
    type: Literal["repeat", "cron", "simple", "sunrise", "sunset"]
    spec: RepeatSpec | CronSpec | SimpleSpec
    timezone: str = ""
    variables: Variables = Field(default_factory=dict)
    handler_parameters: dict[str, Any] = Field(default_factory=dict)
    handlers: list[str] = Field(default_factory=list)
    modified_on: str | None = None
    state: ScheduleState = Field(default_factory=ScheduleState)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return check_id(value, "schedule id")

    @field_validator("spec", mode="before")
    @classmethod
    def _spec(cls, value: Any, info: ValidationInfo) -> Any:
        kind = info.data.get("type")
        model = SCHEDULE_SPECS.get(str(kind))
        if model is None:  # the type itself failed; its error is reported
            return value
        if isinstance(value, model):
            return value
        try:
            return model.model_validate(value if value is not None else {})
        except ValidationError as error:
            raise ValueError(_error_text(error)) from None

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        if value:
            zone(value)
        return value

    @field_validator("variables")
    @classmethod
    def _variables(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _check_variable_names(value)

    @field_validator("handler_parameters")
    @classmethod
    def _parameters(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _check_handler_parameters(value)

    @field_validator("handlers")
    @classmethod
    def _handlers(cls, value: list[str]) -> list[str]:
        return _handler_ids(value)


# --------------------------------------------------------------------------------------------- handler


def _check_url(value: str, what: str = "url") -> str:
    if value and not is_template(value) and not re.match(r"^https?://[^\s/]+", value):
        raise ValueError(f"{what} must be an http(s) URL, got {value!r}")
    return value


class WebhookHandlerSpec(CamelModel):
    url: str = ""
    """Default URL (a parameter may give its own)."""
    method: str = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    query_parameters: dict[str, Any] = Field(default_factory=dict)
    expected_status: int = Field(default=200, ge=100, le=599)
    insecure: bool = False
    timeout: str = "10s"
    username: str = ""
    password: str = ""

    @model_validator(mode="before")
    @classmethod
    def _reference_server_and_api(cls, data: Any) -> Any:
        """The reference's webhook handler names ``server`` and ``api``: joined, they are our ``url``."""
        if isinstance(data, dict) and not data.get("url") and isinstance(data.get("server"), str):
            api = data.get("api") if isinstance(data.get("api"), str) else ""
            url = data["server"].rstrip("/") + ("/" + api.lstrip("/") if api else "")
            data = {k: v for k, v in data.items() if k not in ("server", "api")} | {"url": url}
        return data

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url(value)

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        method = value.strip().upper()
        if method not in HTTP_METHODS:
            raise ValueError(f"method must be one of {', '.join(HTTP_METHODS)}, got {value!r}")
        return method

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: str) -> str:
        return check_duration(value, "timeout", allow_empty=False, positive=True)


class EmailHandlerSpec(CamelModel):
    """SES when ``host`` is empty (AWS), SMTP otherwise."""

    sender: str = Field(default="", alias="from")
    to: list[str] = Field(default_factory=list)
    """Default recipients."""
    host: str = ""
    port: int = Field(default=587, ge=1, le=65535)
    username: str = ""
    password: str = ""
    tls: Literal["starttls", "ssl", "none"] = "starttls"


class TelegramHandlerSpec(CamelModel):
    token: str = Field(min_length=1)
    chat_ids: list[str] = Field(default_factory=list)
    parse_mode: Literal["", "Markdown", "MarkdownV2", "HTML"] = ""


class SmsHandlerSpec(CamelModel):
    """SNS in AWS; the local stack logs (or uses a configured gateway)."""

    sender_id: str = ""
    phone_numbers: list[str] = Field(default_factory=list)


class MqttHandlerSpec(CamelModel):
    """Publish to ``broker`` (empty: the platform's own broker, IoT Core in AWS)."""

    broker: str = ""
    topic: str = ""
    """Default topic."""
    qos: int = Field(default=0, ge=0, le=2)
    username: str = ""
    password: str = ""
    insecure: bool = False


class EmptySpec(CamelModel):
    pass


HANDLER_SPECS: Final[dict[str, type[CamelModel]]] = {
    "webhook": WebhookHandlerSpec, "email": EmailHandlerSpec, "telegram": TelegramHandlerSpec,
    "sms": SmsHandlerSpec, "mqtt": MqttHandlerSpec, "resource": EmptySpec, "noop": EmptySpec,
}


class Handler(CamelModel):
    """Something that acts when a task or schedule fires (the reference's handler); ``spec`` fits ``type``."""

    id: str
    description: str = ""
    enabled: bool = True
    labels: dict[str, str] = Field(default_factory=dict)
    type: HandlerType
    spec: dict[str, Any] = Field(default_factory=dict)
    modified_on: str | None = None
    state: State = Field(default_factory=State)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return check_id(value, "handler id")

    @field_validator("spec", mode="before")
    @classmethod
    def _spec(cls, value: Any, info: ValidationInfo) -> Any:
        model = HANDLER_SPECS.get(str(info.data.get("type")))
        if model is None:
            return value if isinstance(value, dict) else {}
        try:
            return model.model_validate(value if value is not None else {}).model_dump(mode="json")
        except ValidationError as error:
            raise ValueError(_error_text(error)) from None


# --------------------------------------------------------------------------------------------- forward payload


class ForwardPayload(CamelModel):
    """Send every new value of one field to another field (any gateway); ``template`` may transform it."""

    id: str
    description: str = ""
    enabled: bool = True
    src_field_id: str
    dst_field_id: str
    labels: dict[str, str] = Field(default_factory=dict)
    template: str = ""
    """Optional: renders the value to send from ``value`` (the new value), ``field`` (the source field) and
    ``event``; empty sends the raw value, as the reference does."""
    modified_on: str | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return check_id(value, "forward payload id")

    @field_validator("src_field_id", "dst_field_id")
    @classmethod
    def _field(cls, value: str, info: ValidationInfo) -> str:
        quick_id = quick_id_of(value, Kind.FIELD, "srcFieldId" if info.field_name == "src_field_id" else "dstFieldId")
        if info.field_name == "dst_field_id" and quick_id == info.data.get("src_field_id"):
            # Checked on the field (not the model) so the error names dstFieldId.
            raise ValueError("dstFieldId must differ from srcFieldId (a field forwarding to itself is a loop)")
        return quick_id

    @field_validator("template")
    @classmethod
    def _template(cls, value: str) -> str:
        check_templates(value, "template")
        return value
