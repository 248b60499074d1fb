"""MyController v2's data repository, virtual devices and virtual assistants: ``/api/datarepository``,
``/api/virtualdevice``, ``/api/virtualassistant`` (list, get, upsert, delete by id list; enable and disable for the
last two, reload for assistants).

An upsert replaces the document (the reference's semantics) and sets ``modifiedOn``; keys the models do not know are
kept as sent. A virtual device's ``resources`` is computed from its traits, and ``GET /api/virtualdevice/{id}`` adds
``traitValues`` (each trait's value now, ``services.virtual_devices``). A virtual assistant's ``config`` secrets
are never shown (``********``; sent back, the stored one is kept). Data repository saves are announced as
``updated`` (as the reference does), the others as ``created`` or ``updated``.
"""

from __future__ import annotations

from typing import Final

from chalicelib.core.conflicts import write_changes
from chalicelib.core.data_repository import DataRepository
from chalicelib.core.model import CamelModel, EventType, Kind, Record, event, now_iso
from chalicelib.core.secrecy import public
from chalicelib.core.virtual import VirtualAssistant, VirtualDevice
from mycontroller_protocol.shadow import ShadowError, restore_secrets

__all__ = ["DataRepository", "VirtualAssistant", "VirtualDevice", "get_virtual_device", "reload_assistants",
           "set_enabled", "upsert"]
from chalicelib.services.records import MAX_ID_CHARS, check_size

from .errors import bad_request
from .resources import id_list
from .web import ApiRequest, validate

MODELS: Final[dict[Kind, type[CamelModel]]] = {
    Kind.DATA_REPOSITORY: DataRepository, Kind.VIRTUAL_DEVICE: VirtualDevice, Kind.VIRTUAL_ASSISTANT: VirtualAssistant,
}
PATH_NAMES: Final = {Kind.DATA_REPOSITORY: "datarepository", Kind.VIRTUAL_DEVICE: "virtualdevice",
                     Kind.VIRTUAL_ASSISTANT: "virtualassistant"}


def upsert(kind: Kind, request: ApiRequest) -> Record:
    body = request.json()
    if not isinstance(body, dict):
        raise bad_request(f"body must be a {PATH_NAMES[kind]} object", "body")
    if not body.get("id"):
        raise bad_request("id should not be empty", "id")
    container = request.container
    entity_id = body.get("id")
    stored = None
    if isinstance(entity_id, str) and len(entity_id) <= MAX_ID_CHARS:
        stored = container.repository.get(kind, entity_id)
    if kind == Kind.VIRTUAL_ASSISTANT:
        body = {k: v for k, v in body.items() if k != "state"}
        if isinstance(body.get("config"), dict):
            try:
                body["config"] = restore_secrets(body["config"], (stored or {}).get("config"), "config")
            except ShadowError as error:
                raise bad_request(str(error), str(error).split(":", 1)[0]) from None
    model = validate(MODELS[kind], body)
    record = {**model.model_dump(mode="json", by_alias=True), "modifiedOn": now_iso()}
    if kind == Kind.VIRTUAL_ASSISTANT and stored is not None and isinstance(stored.get("state"), dict):
        record["state"] = stored["state"]
    check_size(PATH_NAMES[kind], record)
    container.repository.put(kind, record)
    kind_of_event = EventType.UPDATED if stored is not None or kind == Kind.DATA_REPOSITORY else EventType.CREATED
    container.records.announce([event(kind_of_event, kind, public(kind, record))])
    return public(kind, record)


def set_enabled(kind: Kind, enabled: bool, request: ApiRequest) -> dict[str, int]:
    """Enable or disable by id list (the reference's console also calls this for virtual devices, which its server
    lacked); unknown ids are a 404 and nothing changes."""
    container = request.container
    found = container.records.find_all(kind, id_list(request, kind))
    changed = [{**record, "enabled": enabled, "modifiedOn": now_iso()}
               for record in found.values() if record.get("enabled", True) is not enabled]
    if changed:  # on the versions read: a change made meanwhile to other keys is kept
        written = write_changes(container.repository, kind, [(found[str(r["id"])], r) for r in changed])
        changed = [written.records.get(str(r["id"]), r) for r in changed]
        container.records.announce([event(EventType.UPDATED, kind, public(kind, record)) for record in changed])
    return {"updated": len(changed), "unchanged": len(found) - len(changed)}


def reload_assistants(request: ApiRequest) -> dict[str, int]:
    """The reference reloads an assistant's integration; there is none yet, so this checks the ids and answers."""
    found = request.container.records.find_all(Kind.VIRTUAL_ASSISTANT, id_list(request, Kind.VIRTUAL_ASSISTANT))
    return {"reloaded": len(found)}


def get_virtual_device(request: ApiRequest) -> Record:
    container = request.container
    device = container.records.find(Kind.VIRTUAL_DEVICE, request.path_params.get("id", ""))
    return container.virtual_devices.read(device)
