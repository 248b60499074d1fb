"""Dashboards: the console's saved grids of widgets, as resources, and their checks (the reference's shape).

``{id, title, description, favorite, disabled, labels, widgets[{id, title, showTitle, static, type,
layout{w, h, x, y}, config}]}``. The model checks the grid (whole cells, inside 48 columns), that widget ids are
unique, and each widget's ``config`` by its type, leaving room for keys the console adds:

==================  ==============================================================================================
type                config (all optional unless said; ``resource``: a quick id such as ``field:gw.1.1.V_TEMP``)
==================  ==============================================================================================
empty               nothing
switch              ``resource`` (a binary field), ``onPayload``/``offPayload`` (default ``"1"``/``"0"``)
button              ``resource``, ``payload`` (sent on press; default ``"toggle"``)
slider              ``resource``, ``min`` (0), ``max`` (100), ``step`` (1); ``min < max``
line_chart          ``resources`` (quick ids, up to 10), ``duration`` (``-1h``…), ``window`` (``5m`` or ``none``),
                    ``function`` (``mean``…), ``unit``
gauge               ``resource``, ``min``, ``max`` (none: from the unit), ``unit``, ``thresholds`` (amber, red from)
light               ``power`` (binary field), ``brightness`` (0-100 field), ``rgb`` (field holding ``#rrggbb`` or
                    ``r,g,b``), ``colorTemperature``; at least one of them; ``rgbFormat`` ``hex`` (default) or ``csv``
key_value_table     ``items`` ``[{label, resource, unit?}]`` (up to 50)
==================  ==============================================================================================

MyController v2's widget types (``widget_<name>``) are stored with their configuration as sent; other keys of a
dashboard or widget (its ``type: "desktop"``, ``scrollbarDisabled``) are kept too.

Upsert replaces the dashboard (the reference's semantics) and sets ``modifiedOn``; a missing ``id`` gets a new
one. Changes are announced on the bus like every resource's.
"""

from __future__ import annotations

import re
from typing import Any, Final, Literal

from pydantic import Field as PydField
from pydantic import ValidationError, ValidationInfo, field_validator, model_validator

from mycontroller_protocol.ids import ID_PATTERN

from .model import CamelModel, QuickIdError
from .model import parse_quick_id as _parse_quick_id

GRID_COLUMNS: Final = 48
MAX_WIDGETS: Final = 200
WIDGET_TYPES: Final = ("empty", "switch", "button", "slider", "line_chart", "gauge", "light", "key_value_table")


def _quick_id(value: Any) -> Any:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError("must be a quick id string such as field:gw.1.1.V_TEMP")
    try:
        _parse_quick_id(value)
    except QuickIdError as error:
        raise ValueError(str(error)) from None
    return value


class _Config(CamelModel):
    model_config = {**CamelModel.model_config, "extra": "allow"}


class _ResourceConfig(_Config):
    resource: str | None = None

    @field_validator("resource", mode="before")
    @classmethod
    def _resource(cls, value: Any) -> Any:
        return _quick_id(value)


class EmptyConfig(_Config):
    pass


class SwitchConfig(_ResourceConfig):
    on_payload: str = "1"
    off_payload: str = "0"


class ButtonConfig(_ResourceConfig):
    payload: str = "toggle"


class _RangeConfig(_ResourceConfig):
    min: float = 0
    max: float = 100

    @model_validator(mode="after")
    def _range(self) -> _RangeConfig:
        if not self.min < self.max:
            raise ValueError("min must be less than max")
        return self


class SliderConfig(_RangeConfig):
    step: float = PydField(default=1, gt=0)


class GaugeConfig(_ResourceConfig):
    """Without ``min`` and ``max`` the console takes the range from the field's unit (a temperature is not 0 to 100)."""

    min: float | None = None
    max: float | None = None
    unit: str = ""
    thresholds: list[float] = PydField(default_factory=list, max_length=10)

    @model_validator(mode="after")
    def _range(self) -> GaugeConfig:
        if self.min is not None and self.max is not None and not self.min < self.max:
            raise ValueError("min must be less than max")
        return self


class LineChartConfig(_Config):
    resources: list[str] = PydField(default_factory=list, max_length=10)
    duration: str = "-1h"
    window: str = "5m"
    function: str = "mean"
    unit: str = ""

    @field_validator("resources")
    @classmethod
    def _resources(cls, value: list[str]) -> list[str]:
        return [_quick_id(item) for item in value]


class LightConfig(_Config):
    power: str | None = None
    brightness: str | None = None
    rgb: str | None = None
    color_temperature: str | None = None
    rgb_format: Literal["hex", "csv"] = "hex"

    @field_validator("power", "brightness", "rgb", "color_temperature", mode="before")
    @classmethod
    def _resources(cls, value: Any) -> Any:
        return _quick_id(value)

    @model_validator(mode="after")
    def _something(self) -> LightConfig:
        if not (self.power or self.brightness or self.rgb or self.color_temperature):
            raise ValueError("a light needs at least one of power, brightness, rgb, colorTemperature")
        return self


class TableItem(_Config):
    label: str = ""
    resource: str
    unit: str = ""

    @field_validator("resource", mode="before")
    @classmethod
    def _resource(cls, value: Any) -> Any:
        checked = _quick_id(value)
        if checked is None:
            raise ValueError("resource is required")
        return checked


class KeyValueTableConfig(_Config):
    items: list[TableItem] = PydField(default_factory=list, max_length=50)


CONFIG_MODELS: Final[dict[str, type[_Config]]] = {
    "empty": EmptyConfig, "switch": SwitchConfig, "button": ButtonConfig, "slider": SliderConfig,
    "line_chart": LineChartConfig, "gauge": GaugeConfig, "light": LightConfig, "key_value_table": KeyValueTableConfig,
}


class Layout(CamelModel):
    w: int = PydField(default=4, ge=1, le=GRID_COLUMNS)
    h: int = PydField(default=4, ge=1, le=200)
    x: int = PydField(default=0, ge=0, le=GRID_COLUMNS - 1)
    y: int = PydField(default=0, ge=0, le=100_000)


REFERENCE_WIDGET: Final = re.compile(r"^widget_[a-z0-9_]{1,64}\Z")
"""MyController v2's widget types (``widget_charts_panel``, ``widget_control_panel``, ``widget_empty_panel``…): stored
with their ``config`` exactly as sent, for its console (and ours, ``frontend/src/widgets/reference``) to read."""


class Widget(CamelModel):
    """A widget; keys besides these (the reference's ``scrollbarDisabled``) are kept as sent."""

    model_config = {**CamelModel.model_config, "extra": "allow"}

    id: str = PydField(min_length=1, max_length=128)
    title: str = PydField(default="", max_length=256)
    show_title: bool = True
    static: bool = False
    type: str = "empty"
    layout: Layout = PydField(default_factory=Layout)
    config: dict[str, Any] = PydField(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        if value not in WIDGET_TYPES and not REFERENCE_WIDGET.match(value):
            raise ValueError(f"unknown widget type {value!r}: one of {', '.join(WIDGET_TYPES)}, or a MyController v2 "
                             "type widget_<name>")
        return value

    @field_validator("config")
    @classmethod
    def _config(cls, config: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        widget_type = info.data.get("type")
        if widget_type not in CONFIG_MODELS:
            return config  # the reference's (kept as sent), or a bad type (its error is reported)
        try:
            checked = CONFIG_MODELS[widget_type].model_validate(config)
        except ValidationError as error:
            first = error.errors(include_url=False)[0]
            where = ".".join(str(part) for part in first.get("loc", ()))
            message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
            raise ValueError(f"{widget_type} widget: {where + ': ' if where else ''}{message}") from None
        return checked.model_dump(mode="json", by_alias=True)


class Dashboard(CamelModel):
    """A dashboard; keys besides these (the reference's ``type: "desktop"``) are kept as sent."""

    model_config = {**CamelModel.model_config, "extra": "allow"}

    id: str = ""
    title: str = PydField(default="", max_length=256)
    description: str = PydField(default="", max_length=2048)
    favorite: bool = False
    disabled: bool = False
    labels: dict[str, str] = PydField(default_factory=dict)
    widgets: list[Widget] = PydField(default_factory=list, max_length=MAX_WIDGETS)
    modified_on: str | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if value and not ID_PATTERN.match(value):
            raise ValueError("id must be 1-128 letters, digits, '_', '-', ':', '@' or '~'")
        return value

    @field_validator("widgets")
    @classmethod
    def _unique(cls, widgets: list[Widget]) -> list[Widget]:
        seen: set[str] = set()
        for index, widget in enumerate(widgets):
            if widget.id in seen:
                raise ValueError(f"widget [{index}] id {widget.id!r} is used twice")
            seen.add(widget.id)
        return widgets


# --------------------------------------------------------------------------------------------- handlers
