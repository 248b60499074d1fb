"""Virtual devices read like the resources their traits name (``core/virtual.py``): the values a device shows, and
what ``virtual_device:<id>.<trait>`` answers in ``/api/quickid``. Acting on a trait is ``ActionService``'s (the
trait's target gets the action), so a virtual device is controlled exactly as its resources are.
"""

from __future__ import annotations

from typing import Any, Final

from ..core.model import Kind, Record, parse_quick_id
from ..core.ports import Repository
from ..core.query import get_path
from ..core.virtual import VirtualError, find_trait, trait_target, trait_value
from .errors import NotFound

MISSING: Final[Any] = object()


class VirtualDevices:
    def __init__(self, repository: Repository) -> None:
        self.repository = repository

    def trait_values(self, device: Record) -> dict[str, Any]:
        """``{trait name: value}``: each trait's resource read now (a field's current value, a node's state…);
        ``None`` for a trait whose resource is gone or that names none. One batch read per resource kind."""
        targets: dict[str, tuple[Kind, str]] = {}
        for trait in device.get("traits") or []:
            if not isinstance(trait, dict) or not trait.get("name"):
                continue
            try:
                quick = parse_quick_id(trait_target(device, str(trait["name"])))
            except VirtualError:
                continue
            targets[str(trait["name"])] = (quick.kind, quick.id)
        found: dict[tuple[Kind, str], Record] = {}
        for kind in {kind for kind, _ in targets.values()}:
            ids = [entity_id for k, entity_id in targets.values() if k == kind]
            records = self.repository.get_many(kind, ids)
            found.update({(kind, entity_id): record for entity_id, record in records.items()})
        values: dict[str, Any] = {}
        for trait in device.get("traits") or []:
            name = str(trait.get("name", "")) if isinstance(trait, dict) else ""
            if name:
                target = targets.get(name)
                values[name] = trait_value(found.get(target), target[0]) if target else None
        return values

    def read(self, device: Record) -> Record:
        """The device as ``GET /api/virtualdevice/{id}`` shows it: with ``traitValues``."""
        return {**device, "traitValues": self.trait_values(device)}

    def read_path(self, device: Record, key_path: str) -> Any:
        """What ``virtual_device:<id>.<key path>`` names: a trait's value (``.on_off``), a key path inside the
        trait's resource (``.on_off.current.timestamp``), or else a key of the device itself (``.name``)."""
        head, _, rest = key_path.partition(".")
        try:
            find_trait(device, head)
        except VirtualError:
            value = get_path(device, key_path, MISSING)
            if value is MISSING:
                raise NotFound(f"virtual device {device.get('id')!r} has no trait or key {key_path!r}", "id") from None
            return value
        try:
            quick = parse_quick_id(trait_target(device, head))
        except VirtualError as error:
            raise NotFound(str(error), "id") from None
        resource = self.repository.get(quick.kind, quick.id)
        if not rest:
            return trait_value(resource, quick.kind)
        value = get_path(resource or {}, rest, MISSING)
        if value is MISSING:
            raise NotFound(f"trait {head!r} has no key path {rest!r}", "id")
        return value
