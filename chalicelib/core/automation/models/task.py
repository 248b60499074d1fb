"""The task: a rule over events and variables that notifies handlers, with its dampening, event filter, conditions
and state."""

from __future__ import annotations

import json
from typing import Any, Final, Literal, get_args

from pydantic import Field, PrivateAttr, field_validator, model_validator

from ...model import CamelModel
from ...ports import FILTER_OPERATORS, Filter, FilterOperator
from ...query import QueryError, compile_filter
from ..templates import TemplateError, check_expression, is_template
from .checks import (
    HandlerIds,
    HandlerParameters,
    check_duration,
    check_templates,
    compiles_validator,
    empty_webhook_validator,
    id_validator,
    script_validator,
)
from .variables import ENTITY_TYPES, Variables, WebhookCall

EventType = Literal["created", "updated", "deleted", "requested"]
DampeningType = Literal["none", "consecutive", "evaluation", "active_duration"]
EvaluationType = Literal["rule", "expression", "javascript", "webhook"]
EVENT_TYPES: Final[tuple[str, ...]] = get_args(EventType)
DAMPENING_TYPES: Final[tuple[str, ...]] = get_args(DampeningType)
EVALUATION_TYPES: Final[tuple[str, ...]] = get_args(EvaluationType)
HISTORY_LIMIT: Final = 10
"""Executions a task keeps in its history (more when its dampening needs a longer window)."""
_LIST_OPERATORS: Final = ("in", "nin", "range_in", "range_not_in")


class Dampening(CamelModel):
    """When a true evaluation counts: ``none``; ``consecutive`` (the last ``occurrences`` all true);
    ``evaluation`` (``occurrences`` of the last ``evaluation`` true); ``active_duration`` (true for that long)."""

    type: DampeningType = "none"
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

    event_types: list[EventType] = Field(default_factory=list)
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
    if operator in _LIST_OPERATORS and isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return [part.strip() for part in value.split(",")] if operator in ("in", "nin") else value
        return parsed if isinstance(parsed, list) else [parsed]
    return value


class Condition(CamelModel):
    """``{variable, operator, value}``: ``variable`` is a name and optional key path (``temp.current.value``)."""

    variable: str = Field(min_length=1)
    operator: FilterOperator = "eq"
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
    javascript: str = ""
    """For ``javascript`` evaluation (MyController v2's): a script run in the sandbox (``javascript.py``); its last
    value decides, an object's ``isTriggered`` and other keys as for an expression."""
    webhook: WebhookCall | None = None
    """For ``webhook`` evaluation: called with the variables; its JSON answer's ``isTriggered`` decides."""

    _empty_webhook = empty_webhook_validator("webhook")

    _expression = compiles_validator("expression", check_expression, TemplateError)

    _javascript = script_validator("javascript")


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
    """A rule over events and variables that notifies handlers (the reference's task). Keys besides these are kept
    as sent (a client's own, or the reference's that we do not use)."""

    model_config = {**CamelModel.model_config, "extra": "allow"}

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
    evaluation_type: EvaluationType = "rule"
    evaluation_config: EvaluationConfig = Field(default_factory=EvaluationConfig)
    handler_parameters: HandlerParameters = Field(default_factory=dict)
    handlers: HandlerIds = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    modified_on: str | None = None
    state: TaskState = Field(default_factory=TaskState)
    _compiled: Any = PrivateAttr(default=None)
    """Cache slot for ``tasks.compile_task`` (filters and conditions compiled once per parsed task)."""

    _id = id_validator("task id")

    @field_validator("evaluation_type", mode="before")
    @classmethod
    def _evaluation_type(cls, value: Any) -> Any:
        if value in (None, ""):
            return "rule"
        return value

    @field_validator("re_enable_duration")
    @classmethod
    def _re_enable_duration(cls, value: str) -> str:
        return check_duration(value, "reEnableDuration")

    @field_validator("execution_interval")
    @classmethod
    def _execution_interval(cls, value: str) -> str:
        return check_duration(value, "executionInterval", positive=bool(value))

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
        if self.evaluation_type == "javascript" and not self.evaluation_config.javascript.strip():
            raise ValueError("evaluationConfig.javascript is required when evaluationType is 'javascript'")
        if self.evaluation_type == "webhook" and self.evaluation_config.webhook is None:
            raise ValueError("evaluationConfig.webhook is required when evaluationType is 'webhook'")
        return self
