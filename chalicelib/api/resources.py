"""Resource endpoints: list, get, upsert and delete gateways, nodes, sources and fields, and quick-id lookup.

MyController v2's semantics: lists take ``limit``/``offset``/``sortBy``/``filter`` and answer
``{count, limit, offset, data}``; upsert takes the resource JSON; delete takes a JSON list of ids and cascades
(gateway → nodes → sources → fields). Quick ids (``field:gw.1.2.V_TEMP``) work wherever an id does.

Two choices of ours: an upsert keeps stored values for the keys its body leaves out (so a client editing a
name cannot wipe what devices report), and a field's ``current``/``previous``/``noChangeSince`` are never set
through upsert (as the reference's ``retainValue``): values reach devices through ``/api/action``. Upserts
and deletes announce ``created``/``updated``/``deleted`` events on the bus.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from chalicelib.config import Services, get_services
from chalicelib.core.model import (
    DEVICE_MODELS,
    ID_DEPTH,
    PARENT_KIND,
    QUICK_ID_ALIASES,
    DomainEvent,
    EventType,
    Kind,
    QuickIdError,
    Record,
    event,
    now_iso,
    parent_id,
    parse_quick_id,
)
from chalicelib.core.ports import bus_event
from chalicelib.core.query import get_path

from . import secrecy, shadow_sync
from .errors import ApiError, bad_request, not_found
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

_QUICK_PREFIXES: Final = frozenset({k.value for k in Kind} | set(QUICK_ID_ALIASES))
MAX_ID_CHARS: Final = 600
"""Longer than any valid id or quick id (four 128-character segments and a prefix): answered 404 unread, so a
stray megabyte-long id never reaches a store with key-size limits."""
MAX_RECORD_BYTES: Final = 200_000
"""Largest resource we store: DynamoDB items stop at 400 KB and EventBridge events (which carry the record) at
256 KB, so a bigger one is refused with 413 rather than failing half-way."""


def announce(services: Services, events: Sequence[DomainEvent]) -> None:
    if events:
        services.bus.publish([bus_event(e) for e in events])


def _looks_like_quick_id(text: str) -> bool:
    prefix, colon, _ = text.partition(":")
    return bool(colon) and prefix.strip().lower() in _QUICK_PREFIXES


def resolve_id(kind: Kind, text: str, field: str = "id") -> str:
    """A plain id, or the id a quick id of the same kind names (``node:gw.1`` → ``gw.1``)."""
    if not _looks_like_quick_id(text):
        return text
    try:
        quick = parse_quick_id(text)
    except QuickIdError as error:
        raise bad_request(str(error), field) from None
    if quick.kind != kind:
        raise bad_request(f"{text!r} is a {quick.kind.value} quick id, not a {kind.value} one", field)
    return quick.id


def find_record(services: Services, kind: Kind, text: str, field: str = "id") -> Record:
    """A record by id or quick id of its kind, or 404 naming ``field``."""
    if len(text) > MAX_ID_CHARS:
        raise not_found(f"{kind.value} id of {len(text)} characters not found", field)
    record = services.repository.get(kind, text)
    if record is None and _looks_like_quick_id(text):
        record = services.repository.get(kind, resolve_id(kind, text, field))
    if record is None:
        raise not_found(f"{kind.value} {text!r} not found", field)
    return record


# --------------------------------------------------------------------------------------------- handlers


def list_resources(kind: Kind, request: ApiRequest) -> dict[str, Any]:
    return secrecy.list_public(kind, request)


def get_resource(kind: Kind, request: ApiRequest) -> Record:
    return secrecy.public(kind, find_record(get_services(), kind, request.path_params.get("id", "")))


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
    services = get_services()
    parent_kind = PARENT_KIND.get(kind)
    if parent_kind is not None:
        parent = parent_id(kind, entity_id)
        if parent is None or services.repository.get(parent_kind, parent) is None:
            key = ID_KEYS[kind][-2]
            raise bad_request(f"{key}: {parent_kind.value} {parent!r} does not exist; create it first", key)
    stored = services.repository.get(kind, entity_id)
    if stored is not None:
        incoming = {k: v for k, v in body.items() if k not in RETAINED.get(kind, ())}
        body = {**stored, **incoming}
    body = shadow_sync.restore(kind, body, stored)
    record = {**validate(model, body).record(), "modifiedOn": now_iso()}
    size = len(json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_RECORD_BYTES:
        raise ApiError(413, f"{kind.value} would be {size} bytes stored, more than {MAX_RECORD_BYTES}", "body")
    services.repository.put(kind, record)
    announce(services, [event(EventType.UPDATED if stored is not None else EventType.CREATED, kind,
                              secrecy.public(kind, record))])
    shadow_sync.after_upsert(services, kind, record, stored)
    return secrecy.public(kind, record)


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


def existing_records(services: Services, kind: Kind, request: ApiRequest) -> dict[str, Record]:
    """The records a JSON id list names (ids or quick ids), or 404 listing the unknown ones."""
    wanted = id_list(request, kind)
    ids = list(dict.fromkeys(resolve_id(kind, text, f"[{i}]") for i, text in enumerate(wanted)))
    too_long = [i for i in ids if len(i) > MAX_ID_CHARS]
    if too_long:
        raise not_found(f"{kind.value} id of {len(too_long[0])} characters not found", "body")
    found = services.repository.get_many(kind, ids)
    missing = [i for i in ids if i not in found]
    if missing:
        raise not_found(f"{kind.value} not found: {', '.join(repr(m) for m in missing[:10])}", "body")
    return {i: found[i] for i in ids}


def delete_resources(kind: Kind, request: ApiRequest) -> dict[str, int]:
    """Delete by id list, with everything beneath; unknown ids are a 404 and nothing is deleted."""
    services = get_services()
    ids = list(existing_records(services, kind, request))
    deleted = services.repository.delete(kind, ids)
    announce(services, [event(EventType.DELETED, k, secrecy.public(k, record)) for k, record in deleted])
    shadow_sync.after_delete(services, deleted)
    own = sum(1 for k, _ in deleted if k == kind)
    return {"deleted": own, "cascaded": len(deleted) - own}


def quick_id_lookup(request: ApiRequest) -> dict[str, Any]:
    """``?id=<quick id>`` (repeatable) → ``{quickId: resource}``, or the value at the quick id's key path."""
    texts = request.params("id")
    if not texts:
        raise bad_request("there is no id supplied", "id")
    services = get_services()
    result: dict[str, Any] = {}
    for text in texts:
        try:
            quick = parse_quick_id(text)
        except QuickIdError as error:
            raise bad_request(str(error), "id") from None
        record = services.repository.get(quick.kind, quick.id) if len(quick.id) <= MAX_ID_CHARS else None
        if record is None:
            raise not_found(f"{quick.kind.value} {quick.id!r} not found", "id")
        record = secrecy.public(quick.kind, record)
        if quick.key_path:
            missing = object()
            value = get_path(record, quick.key_path, missing)
            if value is missing:
                raise not_found(f"{quick.kind.value} {quick.id!r} has no key path {quick.key_path!r}", "id")
            result[text] = value
        else:
            result[text] = record
    return result

