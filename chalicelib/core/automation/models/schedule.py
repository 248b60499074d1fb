"""The schedule: runs its handlers at times (repeat, cron, simple, sunrise, sunset), within its validity.

Cron expressions are read here (``normalize_cron``, ``day_of_week_field``): they are the schedule's own notation,
and ``schedules`` computes next runs from what these return.
"""

from __future__ import annotations

import datetime as _dt
from typing import Annotated, Any, Final, Literal, get_args

from croniter import croniter
from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from ...model import CamelModel
from ..clock import parse_date, parse_duration, parse_time_of_day, zone
from .checks import (
    HandlerIds,
    HandlerParameters,
    HttpMethod,
    check_duration,
    empty_webhook_validator,
    id_validator,
    script_validator,
    validate_spec,
)
from .variables import Variables, WebhookCall

ScheduleType = Literal["repeat", "cron", "simple", "sunrise", "sunset"]
Frequency = Literal["daily", "weekly", "monthly", "on_date"]
SCHEDULE_TYPES: Final[tuple[str, ...]] = get_args(ScheduleType)
FREQUENCIES: Final[tuple[str, ...]] = get_args(Frequency)


# --------------------------------------------------------------------------------------------- validity


def _wire_name(info: ValidationInfo) -> str:
    """The field's name as the client wrote it (``from_`` is ``from`` on the wire)."""
    return "from" if info.field_name == "from_" else str(info.field_name)


def _optional_time(value: str, info: ValidationInfo) -> str:
    if value:
        parse_time_of_day(value, _wire_name(info))
    return value


def _optional_date(value: str, info: ValidationInfo) -> str:
    if value:
        parse_date(value, _wire_name(info))
    return value


TimeOfDayText = Annotated[str, AfterValidator(_optional_time)]
"""Empty, or a time of day ``HH:MM[:SS]`` (kept as written)."""
DateText = Annotated[str, AfterValidator(_optional_date)]
"""Empty, or a date ``YYYY-MM-DD`` (kept as written)."""


class DateRange(CamelModel):
    """``{from, to}``: dates, each may be empty."""

    from_: DateText = Field(default="", alias="from")
    to: DateText = ""


class TimeRange(CamelModel):
    """``{from, to}``: times of day, each may be empty."""

    from_: TimeOfDayText = Field(default="", alias="from")
    to: TimeOfDayText = ""


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


# --------------------------------------------------------------------------------------------- specs


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


def day_of_week_field(value: str | list[Any]) -> str:
    """A cron day-of-week field from ``"1,3,5"``, ``"MON-FRI"``, ``[1, 3]`` or ``"*"`` (0 or 7 is Sunday)."""
    text = ",".join(str(v).strip() for v in value) if isinstance(value, list) else str(value).strip()
    text = text or "*"
    if not croniter.is_valid(f"0 0 0 * * {text}", second_at_beginning=True):
        raise ValueError(f"dayOfWeek {value!r} is not a day-of-week list (0-6 from Sunday, or SUN-SAT)")
    return text


class SimpleSpec(CamelModel):
    """``simple``, ``sunrise`` and ``sunset`` schedules: a frequency, a day and a time (sun types: an offset)."""

    frequency: Frequency = "daily"
    day_of_week: str | list[int | str] = ""
    date_of_month: int = Field(default=0, ge=0, le=31)
    date: DateText = ""
    time: TimeOfDayText = ""
    offset: str = ""

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


# --------------------------------------------------------------------------------------------- schedule


class ScheduleState(CamelModel):
    last_run: str | None = None
    last_status: bool = False
    message: str = ""
    executed_count: int = 0


class ScheduleWebhook(WebhookCall):
    """MyController v2's custom-variable webhook: POST by default, the variables as the body, and the schedule too
    with ``includeConfig``; its JSON answer's keys join the variables."""

    method: HttpMethod = "POST"
    include_config: bool = False


class CustomVariableConfig(CamelModel):
    javascript: str = ""
    webhook: ScheduleWebhook | None = None

    _empty_webhook = empty_webhook_validator("webhook")
    _javascript = script_validator("javascript")


class Schedule(CamelModel):
    """Runs its handlers at times (the reference's schedule). Keys besides these are kept as sent.

    ``customVariableType`` (the reference's) adds variables when it runs: ``javascript`` runs
    ``customVariableConfig.javascript`` in the sandbox and ``webhook`` calls ``customVariableConfig.webhook``; the
    object either answers joins the variables."""

    model_config = {**CamelModel.model_config, "extra": "allow"}

    id: str
    description: str = ""
    enabled: bool = True
    labels: dict[str, str] = Field(default_factory=dict)
    validity: Validity = Field(default_factory=Validity)
    type: ScheduleType
    spec: RepeatSpec | CronSpec | SimpleSpec
    timezone: str = ""
    variables: Variables = Field(default_factory=dict)
    custom_variable_type: Literal["", "none", "javascript", "webhook"] = "none"
    custom_variable_config: CustomVariableConfig = Field(default_factory=CustomVariableConfig)
    handler_parameters: HandlerParameters = Field(default_factory=dict)
    handlers: HandlerIds = Field(default_factory=list)
    modified_on: str | None = None
    state: ScheduleState = Field(default_factory=ScheduleState)

    _id = id_validator("schedule id")

    @model_validator(mode="before")
    @classmethod
    def _every(cls, data: Any) -> Any:
        """MyController v2's ``cron`` schedules may say ``@every 5m``: that is our ``repeat``."""
        if isinstance(data, dict) and data.get("type") == "cron" and isinstance(data.get("spec"), dict):
            expression = str(data["spec"].get("cronExpression") or data["spec"].get("expression") or "").strip()
            if expression.lower().startswith("@every "):
                return {**data, "type": "repeat", "spec": {"interval": expression[len("@every "):].strip()}}
        return data

    @model_validator(mode="after")
    def _custom_variables(self) -> Schedule:
        if self.custom_variable_type == "javascript" and not self.custom_variable_config.javascript.strip():
            raise ValueError("customVariableConfig.javascript is required when customVariableType is 'javascript'")
        if self.custom_variable_type == "webhook" and self.custom_variable_config.webhook is None:
            raise ValueError("customVariableConfig.webhook is required when customVariableType is 'webhook'")
        return self

    @field_validator("spec", mode="before")
    @classmethod
    def _spec(cls, value: Any, info: ValidationInfo) -> Any:
        model = SCHEDULE_SPECS.get(str(info.data.get("type")))
        if model is None:  # the type itself failed; its error is reported
            return value
        return validate_spec(model, value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        if value:
            zone(value)
        return value
