"""Task and schedule variables: a template string, a resource by quick id or by labels, or a webhook's answer.

``WebhookCall`` lives here because a webhook's JSON answer is a variable; a ``webhook`` evaluation uses it too.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, Discriminator, Field, Tag, ValidationInfo, field_validator, model_validator

from ...model import CamelModel, Kind, QuickIdError, parse_quick_id
from .checks import VARIABLE_NAME, HttpMethod, Timeout, check_templates, check_url

ENTITY_TYPES: Final = tuple(k.value for k in Kind)
RESERVED_NAMES: Final = frozenset({"event", "entity", "task", "schedule", "now", "sunrise", "sunset", "toJson",
                                   "keyPath", "ternary", "range", "dict", "namespace", "value", "goText"})
"""Names the evaluator provides itself; variables may not shadow them."""


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
    method: HttpMethod = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    query_parameters: dict[str, Any] = Field(default_factory=dict)
    body: Any = None
    expected_status: int = Field(default=200, ge=100, le=599)
    insecure: bool = False
    timeout: Timeout = "10s"

    @model_validator(mode="before")
    @classmethod
    def _reference_names(cls, data: Any) -> Any:
        """MyController v2's webhook variable: ``server`` is the URL, ``data`` the body, ``responseCode`` the
        expected status (0: any, which we read as 200)."""
        if not isinstance(data, dict) or data.get("url") or not isinstance(data.get("server"), str):
            return data
        converted = {k: v for k, v in data.items() if k not in ("server", "data", "responseCode")}
        converted["url"] = data["server"]
        if "data" in data and "body" not in data:
            converted["body"] = data["data"]
        code = data.get("responseCode")
        if isinstance(code, int) and 100 <= code <= 599 and "expectedStatus" not in data:
            converted["expectedStatus"] = code
        return converted

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        check_url(value, allow_empty=False)
        check_templates(value, "url")
        return value

    @field_validator("headers", "query_parameters", "body")
    @classmethod
    def _templates(cls, value: Any, info: ValidationInfo) -> Any:
        check_templates(value, str(info.field_name))
        return value


def check_variable_names(value: dict[str, Any]) -> dict[str, Any]:
    """Variable names are identifiers that do not shadow the evaluator's own names; template strings compile."""
    for name, spec in value.items():
        if not VARIABLE_NAME.match(name):
            raise ValueError(f"variable name {name!r} must be an identifier (letters, digits, '_')")
        if name in RESERVED_NAMES:
            raise ValueError(f"variable name {name!r} is reserved ({', '.join(sorted(RESERVED_NAMES))})")
        if isinstance(spec, str):
            check_templates(spec, name)
    return value


VariableSpec = Annotated[TemplateVariable | QuickIdVariable | LabelsVariable | WebhookCall, Field(discriminator="type")]
Variables = Annotated[
    dict[
        str,
        Annotated[
            Annotated[str, Tag("template")] | Annotated[VariableSpec, Tag("spec")],
            Discriminator(lambda value: "template" if isinstance(value, str) else "spec"),
        ],
    ],
    AfterValidator(check_variable_names),
]
"""Task and schedule variables: a template string, or an object whose ``type`` says how to resolve it."""
