"""Virtual devices and virtual assistants, after MyController v2.

A **virtual device** (``{id, name, description, enabled, deviceType, traits, location, labels, resources}``) gathers
other resources' values under one device, each as a trait (``{name, traitType, resourceType, quickId, labels}``;
``quickId`` without its type prefix, as the reference stores it): a lamp whose ``on_off`` trait is a binary field and
``brightness`` a dimmer's. ``resources`` is computed on save (``"<type>:<quickId>"`` per trait). A trait reads and
acts like the resource it names: ``virtual_device:<id>.<trait>`` is its value in ``/api/quickid`` and its target in
``/api/action`` (``trait_target``). Device and trait types are Google smart-home names in snake_case, kept as given.

A **virtual assistant** (``{id, description, enabled, labels, deviceFilter, providerType, config, state}``) is the
configuration of a voice-assistant integration (``google_assistant``, ``alexa_assistant``); the integrations
themselves (OAuth, fulfilment) are a later step, so nothing acts on it yet.

Pure: models and lookups over records.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import Field, field_validator, model_validator

from mycontroller_protocol.ids import ID_PATTERN

from .errors import DomainError
from .model import CamelModel, Kind, QuickIdError, Record, State, parse_quick_id

TRAIT_KINDS: Final = (Kind.GATEWAY, Kind.NODE, Kind.SOURCE, Kind.FIELD, Kind.TASK, Kind.SCHEDULE, Kind.HANDLER,
                      Kind.DATA_REPOSITORY)
"""What a trait may name (the reference's resource types)."""
_VALUE_PATHS: Final = {Kind.FIELD: "current.value", Kind.NODE: "state.status", Kind.GATEWAY: "state.status"}
"""A trait's value: the resource's value where it has one (a field's current value), else the resource itself."""


class VirtualError(DomainError, ValueError):
    """A trait that cannot be read or acted on; the message names it."""


def _check_id(value: str, what: str) -> str:
    if not ID_PATTERN.match(value):
        raise ValueError(f"{what} {value!r} must be 1-128 letters, digits, '_', '-', ':', '@', '~' (no dots)")
    return value


class Trait(CamelModel):
    """One of a virtual device's values. ``resourcetype`` (the reference's YAML export) is read as
    ``resourceType``; keys besides these are kept as sent."""

    model_config = {**CamelModel.model_config, "extra": "allow"}

    name: str = Field(min_length=1, max_length=128)
    trait_type: str = Field(default="", max_length=64)
    resource_type: str = Field(default="field", max_length=64)
    quick_id: str = Field(default="", max_length=600)
    labels: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _yaml_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and "resourceType" not in data and "resource_type" not in data \
                and "resourcetype" in data:
            data = {**{k: v for k, v in data.items() if k != "resourcetype"}, "resourceType": data["resourcetype"]}
        return data

    @model_validator(mode="after")
    def _target(self) -> Trait:
        if self.quick_id:
            target_quick_id(self.resource_type, self.quick_id)
        return self

    @property
    def target(self) -> str:
        """The quick id this trait names (``field:gw.1.1.V_STATUS``), or ``""`` when it names nothing yet."""
        return str(target_quick_id(self.resource_type, self.quick_id)) if self.quick_id else ""


def target_quick_id(resource_type: str, quick_id: str) -> str:
    """``resourceType`` + a quick id without prefix (the reference's form) as a full quick id; ``ValueError``."""
    text = quick_id if ":" in quick_id else f"{resource_type}:{quick_id}"
    try:
        quick = parse_quick_id(text)
    except QuickIdError as error:
        raise ValueError(f"quickId: {error}") from None
    if quick.kind not in TRAIT_KINDS:
        raise ValueError(f"resourceType: a trait names one of {', '.join(k.value for k in TRAIT_KINDS)}, "
                         f"not {quick.kind.value}")
    return str(quick)


class VirtualDevice(CamelModel):
    """A device made of other resources (MyController v2's virtual device); keys besides these are kept."""

    model_config = {**CamelModel.model_config, "extra": "allow"}

    id: str
    name: str = Field(default="", max_length=256)
    description: str = Field(default="", max_length=2048)
    enabled: bool = True
    device_type: str = Field(default="", max_length=64)
    traits: list[Trait] = Field(default_factory=list, max_length=100)
    location: str = Field(default="", max_length=256)
    labels: dict[str, str] = Field(default_factory=dict)
    resources: list[str] = Field(default_factory=list)
    """Computed on save: the quick id of each trait's resource (``"<type>:<quickId>"``)."""
    modified_on: str | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return _check_id(value, "virtual device id")

    @field_validator("traits")
    @classmethod
    def _unique(cls, traits: list[Trait]) -> list[Trait]:
        seen: set[str] = set()
        for index, trait in enumerate(traits):
            if trait.name in seen:
                raise ValueError(f"traits.{index}: the name {trait.name!r} is used twice")
            seen.add(trait.name)
        return traits

    @model_validator(mode="after")
    def _resources(self) -> VirtualDevice:
        self.resources = [trait.target for trait in self.traits if trait.quick_id]
        return self


class VirtualAssistant(CamelModel):
    """A voice assistant's configuration (MyController v2's); keys besides these are kept."""

    model_config = {**CamelModel.model_config, "extra": "allow"}

    id: str
    description: str = Field(default="", max_length=2048)
    enabled: bool = True
    labels: dict[str, str] = Field(default_factory=dict)
    device_filter: dict[str, str] = Field(default_factory=dict)
    """Labels a virtual device must carry to be offered to the assistant."""
    provider_type: str = Field(default="google_assistant", max_length=64)
    config: dict[str, Any] = Field(default_factory=dict)
    state: State = Field(default_factory=State)
    modified_on: str | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return _check_id(value, "virtual assistant id")


def find_trait(device: Record, name: str) -> Record:
    """The trait named ``name`` (case-insensitive, as the reference's maps), or ``VirtualError``."""
    lowered = name.lower()
    for trait in device.get("traits") or []:
        if isinstance(trait, dict) and str(trait.get("name", "")).lower() == lowered:
            return trait
    raise VirtualError(f"virtual device {device.get('id')!r} has no trait {name!r}")


def trait_target(device: Record, name: str) -> str:
    """The quick id a trait names; ``VirtualError`` when it names nothing."""
    trait = find_trait(device, name)
    quick_id = str(trait.get("quickId") or "")
    if not quick_id:
        raise VirtualError(f"trait {name!r} of virtual device {device.get('id')!r} names no resource")
    try:
        return target_quick_id(str(trait.get("resourceType") or "field"), quick_id)
    except ValueError as error:
        raise VirtualError(f"trait {name!r}: {error}") from None


def trait_value(resource: Record | None, kind: Kind) -> Any:
    """What a trait reads from its resource: a field's current value, a node's or gateway's state, else the
    resource; ``None`` when the resource is gone."""
    if resource is None:
        return None
    path = _VALUE_PATHS.get(kind)
    if path is None:
        return resource
    value: Any = resource
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value
