"""Schemas of the automation resources — task, schedule, handler, forward payload — in the reference's JSON shape.

camelCase on the wire (``model.CamelModel``); records are ``Model.record()``. Validation happens when a resource
is saved, so that a bad one is refused with an error naming the field (``evaluationConfig.rule.conditions.0.
operator``, ``spec.cronExpression``) instead of failing later in a worker: durations parse, templates and
expressions compile, regexes compile, cron expressions and time zones are real, handler specs fit their type.

One module per resource (``task``, ``schedule``, ``handler``, ``forward_payload``), the variables tasks and
schedules share (``variables``) and the checks they all share (``checks``); everything is importable from here.

Where we differ from the reference (on purpose):

* ``evaluationType`` is ``rule``, ``expression`` (a jinja2 expression in the sandbox), ``javascript`` (the
  reference's, run in the QuickJS sandbox with time and memory limits: ``javascript.py``) or ``webhook``.
* ``eventFilter.filters`` values may be ``{"operator": "gt", "value": 20}`` besides a plain value (``eq``, the
  reference's only operator).
* Schedules carry a ``timezone`` (IANA name; default: the location's zone, else UTC), and ``validity`` times
  apply every day when no dates are given (the reference ignored them then).
* A task's ``triggerOnEvent`` defaults to ``true`` unless it has an ``executionInterval``.
* Task state keeps ``reEnableAt`` and the ids of recent triggers (so a redelivered event is not counted twice).
"""

from ..clock import parse_time_of_day
from .checks import (
    HANDLER_TYPES,
    HTTP_METHODS,
    VARIABLE_NAME,
    HandlerIds,
    HandlerParameters,
    HandlerType,
    HttpMethod,
    Timeout,
    check_duration,
    check_handler_parameters,
    check_id,
    check_method,
    check_templates,
    check_url,
    error_text,
    handler_ids,
    id_validator,
    quick_id_of,
    validate_spec,
    validation_message,
)
from .forward_payload import ForwardPayload
from .handler import (
    HANDLER_SPECS,
    EmailHandlerSpec,
    EmptySpec,
    Handler,
    MqttHandlerSpec,
    SmsHandlerSpec,
    TelegramHandlerSpec,
    WebhookHandlerSpec,
)
from .schedule import (
    CRON_MACROS,
    FREQUENCIES,
    SCHEDULE_SPECS,
    SCHEDULE_TYPES,
    CronSpec,
    DateRange,
    DateText,
    Frequency,
    RepeatSpec,
    Schedule,
    ScheduleState,
    ScheduleType,
    SimpleSpec,
    TimeOfDayText,
    TimeRange,
    Validity,
    day_of_week_field,
    normalize_cron,
)
from .task import (
    DAMPENING_TYPES,
    EVALUATION_TYPES,
    EVENT_TYPES,
    HISTORY_LIMIT,
    Condition,
    Dampening,
    DampeningType,
    EvaluationConfig,
    EvaluationType,
    EventFilter,
    EventType,
    ExecutionRecord,
    Rule,
    Task,
    TaskState,
    condition_value,
    filter_of,
)
from .variables import (
    ENTITY_TYPES,
    RESERVED_NAMES,
    LabelsVariable,
    QuickIdVariable,
    TemplateVariable,
    Variables,
    VariableSpec,
    WebhookCall,
    check_variable_names,
)

__all__ = [
    "CRON_MACROS", "DAMPENING_TYPES", "ENTITY_TYPES", "EVALUATION_TYPES", "EVENT_TYPES", "FREQUENCIES",
    "HANDLER_SPECS", "HANDLER_TYPES", "HISTORY_LIMIT", "HTTP_METHODS", "RESERVED_NAMES", "SCHEDULE_SPECS",
    "SCHEDULE_TYPES", "VARIABLE_NAME",
    "Condition", "CronSpec", "Dampening", "DampeningType", "DateRange", "DateText", "EmailHandlerSpec", "EmptySpec",
    "EvaluationConfig", "EvaluationType", "EventFilter", "EventType", "ExecutionRecord", "ForwardPayload",
    "Frequency", "Handler", "HandlerIds", "HandlerParameters", "HandlerType", "HttpMethod", "LabelsVariable",
    "MqttHandlerSpec", "QuickIdVariable", "RepeatSpec", "Rule", "Schedule", "ScheduleState", "ScheduleType",
    "SimpleSpec", "SmsHandlerSpec", "Task", "TaskState", "TelegramHandlerSpec", "TemplateVariable", "TimeOfDayText",
    "TimeRange", "Timeout", "Validity", "VariableSpec", "Variables", "WebhookCall", "WebhookHandlerSpec",
    "check_duration", "check_handler_parameters", "check_id", "check_method", "check_templates", "check_url",
    "check_variable_names", "condition_value", "day_of_week_field", "error_text", "filter_of", "handler_ids",
    "id_validator", "normalize_cron", "parse_time_of_day", "quick_id_of", "validate_spec", "validation_message",
]
