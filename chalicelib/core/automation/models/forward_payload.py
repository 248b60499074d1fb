"""The forward payload: every new value of one field sent to another field (any gateway)."""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator

from ...model import CamelModel, Kind
from .checks import check_templates, id_validator, quick_id_of


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

    _id = id_validator("forward payload id")

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
