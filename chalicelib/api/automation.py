"""Automation endpoints: list, get, upsert, delete, enable and disable tasks, schedules, handlers and forward
payloads, in MyController v2's shape (``/api/task``, ``/api/schedule``, ``/api/handler``, ``/api/forwardpayload``).

Bodies are validated by the automation models (400 naming the field). Unlike device resources an upsert replaces
the resource (the reference's semantics), except ``state``, which belongs to the workers: whatever a client sends
there is ignored and the stored state kept. Every upsert sets ``modifiedOn``.

Handlers never leave with their secrets (passwords, tokens, authorization headers): every answer and every bus
event carries ``handlers.redact``'s copy, a client sending the placeholder back keeps the stored secret
(``restore_secrets``), and list filters or sorts on secret key paths are refused (they would be an oracle).
A forward payload that would close a loop among the stored mappings is refused (400 naming ``dstFieldId``).

Schedules and tasks are kept in step with the schedule registry (``container.schedules``, EventBridge Scheduler
in AWS) after every upsert, delete, enable and disable. The resource change stays when the registry fails; the
answer is then a 502 naming ``scheduler``. Sun schedules read the location from the system settings
(``geoLocation``; ``Container(fallback_location=...)`` when the settings have none).

``POST /api/task/run`` and ``/api/schedule/run`` (id lists) evaluate tasks or run schedules now, disabled ones
included, and answer what each queued; ``POST /api/task/reload`` and ``/api/schedule/reload`` put every enabled
schedule's and interval task's trigger again and drop entries nothing owns (an id list limits it to those).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, Final

from chalicelib.bootstrap import Container
from chalicelib.core.automation.forward import find_loop
from chalicelib.core.automation.handlers import REDACTED, restore_secrets, secret_paths
from chalicelib.core.automation.models import ForwardPayload, Handler, Schedule, Task
from chalicelib.core.automation.scheduler_sync import SyncKind, remove, sync_schedule, sync_task, trigger_problem
from chalicelib.core.conflicts import update, write_changes
from chalicelib.core.model import CamelModel, EventType, Kind, Record, event, now_iso
from chalicelib.core.ports import ConditionFailed, ListQuery
from chalicelib.core.secrecy import public
from chalicelib.functions.automation import mark_automation_changed
from chalicelib.functions.schedules import reload_registry
from chalicelib.services.errors import ServiceError
from chalicelib.services.records import MAX_ID_CHARS, check_size

from .errors import ApiError, bad_request
from .resources import id_list
from .web import ApiRequest, validate

AUTOMATION_MODELS: Final[dict[Kind, type[CamelModel]]] = {
    Kind.TASK: Task,
    Kind.SCHEDULE: Schedule,
    Kind.HANDLER: Handler,
    Kind.FORWARD_PAYLOAD: ForwardPayload,
}
AUTOMATION_KINDS: Final = tuple(AUTOMATION_MODELS)
PATH_NAMES: Final = {Kind.TASK: "task", Kind.SCHEDULE: "schedule", Kind.HANDLER: "handler",
                     Kind.FORWARD_PAYLOAD: "forwardpayload"}
"""The API path segment of each kind (the reference's ``/api/forwardpayload``)."""
STATEFUL: Final = frozenset({Kind.TASK, Kind.SCHEDULE, Kind.HANDLER})
"""Kinds whose ``state`` the workers own: an upsert keeps the stored one."""


log = logging.getLogger(__name__)
NO_TRIGGER: Final = "will not run: "
"""The state message of an enabled schedule that gets no trigger (the reason follows)."""
SYNCED: Final[dict[Kind, SyncKind]] = {Kind.SCHEDULE: "schedule", Kind.TASK: "task"}


def _sync(container: Container, kind: Kind, records: Iterable[Record], *, deleted: bool = False) -> None:
    """Bring the registry's triggers of these schedules or tasks in step; 502 naming ``scheduler`` on failure."""
    registry = container.schedules
    if registry is None or kind not in SYNCED:
        return
    location = container.location()
    try:
        for record in records:
            if deleted:
                remove(registry, SYNCED[kind], str(record["id"]))
            elif kind == Kind.SCHEDULE:
                sync_schedule(registry, record, location=location)
            else:
                sync_task(registry, record)
    except Exception as error:  # the registry is another service: any failure of it is a bad gateway
        log.exception("scheduler sync of %s failed", kind.value)
        raise ApiError(502, f"scheduler: the {PATH_NAMES[kind]} was saved but its schedule could not be "
                            f"updated ({type(error).__name__}: {error})", "scheduler") from None


def _tasks_changed(container: Container, kind: Kind) -> None:
    """Task changes apply at once in this process (the local stack); in the tasks function through its event; to
    the ingest's choice of consumers (``functions/interest.py``) through the automation stamp."""
    if kind == Kind.TASK:
        container.tasks.invalidate()
    if kind in (Kind.TASK, Kind.FORWARD_PAYLOAD):
        mark_automation_changed(container.repository)


def _announce(container: Container, event_type: EventType, kind: Kind, records: list[Record]) -> None:
    container.records.announce([event(event_type, kind, public(kind, record)) for record in records])


# --------------------------------------------------------------------------------------------- handlers


def _restore_handler_secrets(body: dict[str, Any], stored: Record | None) -> dict[str, Any]:
    """Put stored secrets back where the client sent the placeholder; a placeholder with nothing stored is a 400
    (saving it would replace a secret by asterisks)."""
    spec, handler_type = body.get("spec"), str(body.get("type"))
    if not isinstance(spec, Mapping):
        return body
    if stored is not None and isinstance(stored.get("spec"), Mapping) and stored.get("type") == handler_type:
        spec = restore_secrets(spec, stored["spec"], handler_type)
    for path in secret_paths(handler_type, spec):
        head, _, rest = path.partition(".")
        value = spec.get(head) if not rest else (spec.get(head) or {}).get(rest)
        if value == REDACTED:
            raise bad_request(f"spec.{path}: {REDACTED!r} keeps a stored secret only; none is stored here, "
                              "send the secret itself", f"spec.{path}")
    return {**body, "spec": dict(spec)}


def _encrypt_handler_secrets(container: Container, record: Record, stored: Record | None) -> dict[str, Any]:
    """The handler's spec with its secrets encrypted at rest (``enc:v1:``; only the handler function decrypts).
    An encrypted value is accepted only where it is the stored one (kept with the placeholder); 502 naming
    ``secrets`` when the key service fails."""
    from chalicelib.core.automation.handler_secrets import encrypt_spec, is_encrypted
    from chalicelib.core.ports import SecretError

    spec, handler_type = dict(record.get("spec") or {}), str(record.get("type"))
    old = stored.get("spec") if stored is not None and stored.get("type") == handler_type else None
    for path in secret_paths(handler_type, spec):
        head, _, rest = path.partition(".")
        value = spec.get(head) if not rest else (spec.get(head) or {}).get(rest)
        kept = (old or {}).get(head) if not rest else ((old or {}).get(head) or {}).get(rest)
        if is_encrypted(value) and value != kept:
            raise bad_request(f"spec.{path}: send the secret itself, not an encrypted value", f"spec.{path}")
    try:
        return encrypt_spec(str(record["id"]), handler_type, spec, container.secrets)
    except SecretError as error:
        log.error("handler secrets could not be encrypted: %s", error)
        raise ApiError(502, "secrets: the handler's secrets could not be encrypted; nothing was saved",
                       "secrets") from None


def _automation_record(container: Container, kind: Kind, body: dict[str, Any], stored: Record | None) -> Record:
    """The record an upsert stores: the body validated, over what is stored (secrets, state)."""
    if kind == Kind.HANDLER:
        body = _restore_handler_secrets(body, stored)
    model = validate(AUTOMATION_MODELS[kind], body)
    record = {**model.record(), "modifiedOn": now_iso()}
    if kind == Kind.HANDLER:
        record["spec"] = _encrypt_handler_secrets(container, record, stored)
    if kind in STATEFUL and stored is not None and isinstance(stored.get("state"), dict):
        record["state"] = stored["state"]
    if isinstance(model, Schedule):
        problem = trigger_problem(model, location=container.location())
        state = dict(record.get("state") or {})
        if problem:
            record["state"] = {**state, "lastStatus": False, "message": f"{NO_TRIGGER}{problem}"}
        elif str(state.get("message") or "").startswith(NO_TRIGGER):
            record["state"] = {**state, "message": ""}
    if isinstance(model, ForwardPayload):
        others = container.repository.query(Kind.FORWARD_PAYLOAD, ListQuery(limit=0)).data
        loop = find_loop(others, model)
        if loop is not None:
            raise bad_request(f"dstFieldId: this mapping would close a forwarding loop: {' -> '.join(loop)}",
                              "dstFieldId")
    check_size(PATH_NAMES[kind], record)
    return record


def upsert_automation(kind: Kind, request: ApiRequest) -> Record:
    """Create or edit; the stored state is kept, and the write is conditional on the version read, so a run that
    stores its state meanwhile is not undone (the edit is made again on top of it)."""
    body = request.json()
    if not isinstance(body, dict):
        raise bad_request(f"body must be a {PATH_NAMES[kind]} object", "body")
    container = request.container
    entity_id = body.get("id")
    body = {k: v for k, v in body.items() if k != "state"}
    read: list[Record | None] = [None]

    def build(stored: Record | None) -> Record:
        read[0] = stored
        return _automation_record(container, kind, body, stored)

    if isinstance(entity_id, str) and entity_id and len(entity_id) <= MAX_ID_CHARS:
        try:
            record = update(container.repository, kind, entity_id, build)
        except ConditionFailed:
            raise ApiError(409, f"{PATH_NAMES[kind]} {entity_id!r} kept changing while it was saved; try again",
                           "id") from None
        assert record is not None
    else:  # no id given: the model makes one
        record = build(None)
        container.repository.put(kind, record, expected_version=0)
    stored = read[0]
    _announce(container, EventType.UPDATED if stored is not None else EventType.CREATED, kind, [record])
    _tasks_changed(container, kind)
    _sync(container, kind, [record])
    return public(kind, record)




def delete_automation(kind: Kind, request: ApiRequest) -> dict[str, int]:
    """Delete by id list; unknown ids are a 404 and nothing is deleted."""
    container = request.container
    found = container.records.find_all(kind, id_list(request, kind))
    deleted = container.records.delete(kind, found)
    _tasks_changed(container, kind)
    for deleted_kind in SYNCED:
        _sync(container, deleted_kind, [record for k, record in deleted if k == deleted_kind], deleted=True)
    own = sum(1 for k, _ in deleted if k == kind)
    return {"deleted": own, "cascaded": len(deleted) - own}


def set_enabled(kind: Kind, enabled: bool, request: ApiRequest) -> dict[str, int]:
    """Enable or disable by id list; unknown ids are a 404 and nothing changes. Already so: left untouched."""
    container = request.container
    found = container.records.find_all(kind, id_list(request, kind))
    changed = [{**record, "enabled": enabled, "modifiedOn": now_iso()}
               for record in found.values() if record.get("enabled", True) is not enabled]
    if changed:  # on the versions read: a run's state stored meanwhile is kept (the flag is set on top of it)
        written = write_changes(container.repository, kind, [(found[str(r["id"])], r) for r in changed])
        changed = [written.records.get(str(r["id"]), r) for r in changed]
        _announce(container, EventType.UPDATED, kind, changed)
        _tasks_changed(container, kind)
        _sync(container, kind, changed)
    return {"updated": len(changed), "unchanged": len(found) - len(changed)}


def run_now(kind: Kind, request: ApiRequest) -> dict[str, Any]:
    """Evaluate tasks or run schedules now (id list; unknown ids are a 404 and nothing runs)."""
    container = request.container
    ids = list(container.records.find_all(kind, id_list(request, kind)))
    runs = [r.to_dict() for r in (container.tasks.run_now(ids) if kind == Kind.TASK
                                  else container.schedule_runs.run_now(ids))]
    return {"queued": sum(len(r["queued"]) for r in runs), "data": runs}


def reload(kind: Kind, request: ApiRequest) -> dict[str, int]:
    """Put the triggers again: all (no body, or an empty list) or those of an id list."""
    container = request.container
    if container.schedules is None:
        return {"schedules": 0, "tasks": 0, "removed": 0}
    _tasks_changed(container, kind)
    body = request.json() if request.raw_body.strip() else None
    try:
        if body in (None, []):
            return reload_registry(container.automation)
        records = list(container.records.find_all(kind, id_list(request, kind)).values())
        _sync(container, kind, records)
    except (ApiError, ServiceError):
        raise
    except Exception as error:
        log.exception("reload of %s failed", kind.value)
        raise ApiError(502, f"scheduler: the {PATH_NAMES[kind]} triggers could not be reloaded "
                            f"({type(error).__name__}: {error})", "scheduler") from None
    enabled = sum(1 for r in records if r.get("enabled", True))
    return {"schedules": enabled if kind == Kind.SCHEDULE else 0, "tasks": enabled if kind == Kind.TASK else 0,
            "removed": 0}


def reload_handlers(request: ApiRequest) -> dict[str, int]:
    """MyController v2's ``POST /api/handler/reload``: it rebuilt a handler's client (an SMTP or MQTT connection).
    Ours are built per call, so this checks the ids and answers how many there are."""
    found = request.container.records.find_all(Kind.HANDLER, id_list(request, Kind.HANDLER))
    return {"reloaded": len(found)}
