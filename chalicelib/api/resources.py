"""Resource endpoints: list, get, upsert and delete gateways, nodes, sources and fields, and quick-id lookup.

MyController v2's semantics: lists take ``limit``/``offset``/``sortBy``/``filter`` and answer
``{count, limit, offset, data}``; upsert takes the resource JSON; delete takes a JSON list of ids and cascades
(gateway → nodes → sources → fields). Quick ids (``field:gw.1.2.V_TEMP``) work wherever an id does.

Two choices of ours: an upsert keeps stored values for the keys its body leaves out (so a client editing a
name cannot wipe what devices report), and a field's ``current``/``previous``/``noChangeSince`` are never set
through upsert (as the reference's ``retainValue``): values reach devices through ``/api/action``. The write is
conditional on the version read: an ingest batch that changed the record meanwhile (a node's last seen, a
field's value) is kept and the body applied again on top. Upserts and deletes announce
``created``/``updated``/``deleted`` events on the bus.
"""

from __future__ import annotations

from typing import Any, Final

from chalicelib.core.conflicts import update
from chalicelib.core.model import (
    DEVICE_MODELS,
    ID_DEPTH,
    PARENT_KIND,
    EventType,
    Kind,
    QuickIdError,
    Record,
    event,
    now_iso,
    parent_id,
    parse_quick_id,
)
from chalicelib.core.ports import ConditionFailed, Filter
from chalicelib.core.query import get_path, parse_list_query
from chalicelib.core.secrecy import public
from chalicelib.services.errors import Conflict
from chalicelib.services.gateway_sync import restore
from chalicelib.services.records import MAX_ID_CHARS, check_size, resolve_id

from .errors import bad_request, not_found
from .web import ApiRequest, validate

ID_KEYS: Final[dict[Kind, tuple[str, ...]]] = {
    Kind.GATEWAY: ("id",),
    Kind.NODE: ("gatewayId", "nodeId"),
    Kind.SOURCE: ("gatewayId", "nodeId", "sourceId"),
    Kind.FIELD: ("gatewayId", "nodeId", "sourceId", "fieldId"),
}
"""The body keys a device resource's composite id is made of, in order."""

RETAINED: Final[dict[Kind, tuple[str, ...]]] = {Kind.FIELD: ("current", "previous", "noChangeSince")}
"""Keys an upsert never takes from the body when the record exists (device-reported values)."""


LIST_PARAMETERS: Final = frozenset({"limit", "offset", "sortBy", "filter", "access_token"})
"""Query parameters a list reads itself; any other is an ``eq`` filter on its first value (the reference's
``?gatewayId=gw1``)."""


def list_public(kind: Kind, request: ApiRequest) -> dict[str, Any]:
    """A page of the kind as the API may show it."""
    query = parse_list_query(request.query)
    query.filters.extend(Filter(key, "eq", values[0]) for key, values in request.query.items()
                         if key not in LIST_PARAMETERS and values and key.strip())
    return request.container.records.page(kind, query)


# --------------------------------------------------------------------------------------------- handlers


def list_resources(kind: Kind, request: ApiRequest) -> dict[str, Any]:
    return list_public(kind, request)


def get_resource(kind: Kind, request: ApiRequest) -> Record:
    return public(kind, request.container.records.find(kind, request.path_params.get("id", "")))


def _id_parts_from_body(kind: Kind, body: dict[str, Any]) -> dict[str, Any]:
    """Fill ``gatewayId``/``nodeId``… from ``id`` when the body gives only the composite id."""
    entity_id = body.get("id")
    keys = ID_KEYS[kind]
    if kind == Kind.GATEWAY or not isinstance(entity_id, str) or not entity_id:
        return body
    entity_id = resolve_id(kind, entity_id)
    parts = entity_id.split(".")
    if len(parts) != ID_DEPTH[kind]:
        raise bad_request(f"{kind.value} id {entity_id!r} must have {ID_DEPTH[kind]} dotted segments", "id")
    filled = dict(body)
    for key, part in zip(keys, parts, strict=True):
        given = filled.get(key)
        if given is None:
            filled[key] = part
        elif str(given) != part:
            raise bad_request(f"id {entity_id!r} does not match {key} {given!r}", "id")
    return filled


def upsert_resource(kind: Kind, request: ApiRequest) -> Record:
    body = request.json()
    if not isinstance(body, dict):
        raise bad_request(f"body must be a {kind.value} object", "body")
    model = DEVICE_MODELS[kind]
    body = _id_parts_from_body(kind, body)
    entity_id = str(validate(model, body).record()["id"])
    container = request.container
    repository = container.repository
    parent_kind = PARENT_KIND.get(kind)
    if parent_kind is not None:
        parent = parent_id(kind, entity_id)
        if parent is None or repository.get(parent_kind, parent) is None:
            key = ID_KEYS[kind][-2]
            raise bad_request(f"{key}: {parent_kind.value} {parent!r} does not exist; create it first", key)
    incoming = {k: v for k, v in body.items() if k not in RETAINED.get(kind, ())}
    read: list[Record | None] = [None]

    def change(stored: Record | None) -> Record:
        """The body over the stored record; made again on the newer one if a batch or another edit wrote it
        meanwhile (``core/conflicts.py``), so neither change is lost."""
        read[0] = stored
        merged = restore(kind, {**stored, **incoming} if stored is not None else body, stored)
        record = {**validate(model, merged).record(), "modifiedOn": now_iso()}
        check_size(kind.value, record)
        return record

    try:
        record = update(repository, kind, entity_id, change)
    except ConditionFailed:
        raise Conflict(f"{kind.value} {entity_id!r} kept changing while it was saved; try again", "id") from None
    assert record is not None
    stored = read[0]
    container.records.announce([event(EventType.UPDATED if stored is not None else EventType.CREATED, kind,
                                      public(kind, record))])
    container.gateway_sync.after_upsert(kind, record, stored)
    if kind == Kind.NODE:
        container.actions.after_node_upsert(record, stored)  # a MySensors node's sleep mode set from its labels
    return public(kind, record)


def id_list(request: ApiRequest, kind: Kind) -> list[str]:
    body = request.json()
    if isinstance(body, dict) and isinstance(body.get("ids"), list):
        body = body["ids"]
    if not isinstance(body, list):
        raise bad_request(f"body must be a JSON list of {kind.value} ids", "body")
    if not body:
        raise bad_request("supply id(s)", "body")
    ids: list[str] = []
    for index, item in enumerate(body):
        if not isinstance(item, str) or not item:
            raise bad_request(f"id [{index}] must be a non-empty string, got {item!r}", f"[{index}]")
        ids.append(item)
    return ids


def delete_resources(kind: Kind, request: ApiRequest) -> dict[str, int]:
    """Delete by id list, with everything beneath; unknown ids are a 404 and nothing is deleted."""
    container = request.container
    ids = list(container.records.find_all(kind, id_list(request, kind)))
    deleted = container.records.delete(kind, ids)
    container.gateway_sync.after_delete(deleted)
    own = sum(1 for k, _ in deleted if k == kind)
    return {"deleted": own, "cascaded": len(deleted) - own}


def quick_id_lookup(request: ApiRequest) -> dict[str, Any]:
    """``?id=<quick id>`` (repeatable) → ``{quickId: resource}``, or the value at the quick id's key path."""
    texts = request.params("id")
    if not texts:
        raise bad_request("there is no id supplied", "id")
    repository = request.container.repository
    result: dict[str, Any] = {}
    for text in texts:
        try:
            quick = parse_quick_id(text)
        except QuickIdError as error:
            raise bad_request(str(error), "id") from None
        record = repository.get(quick.kind, quick.id) if len(quick.id) <= MAX_ID_CHARS else None
        if record is None:
            raise not_found(f"{quick.kind.value} {quick.id!r} not found", "id")
        record = public(quick.kind, record)
        if quick.key_path and quick.kind == Kind.VIRTUAL_DEVICE:  # a trait reads as its resource's value
            result[text] = request.container.virtual_devices.read_path(record, quick.key_path)
        elif quick.key_path:
            missing = object()
            value = get_path(record, quick.key_path, missing)
            if value is missing:
                raise not_found(f"{quick.kind.value} {quick.id!r} has no key path {quick.key_path!r}", "id")
            result[text] = value
        else:
            result[text] = record
    return result

