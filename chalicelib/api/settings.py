"""System settings endpoints, in MyController v2's shape: ``GET``/``POST /api/settings/system``, and its documents
``{id, spec, modifiedOn}``: ``POST /api/settings`` (``system_settings``, ``system_backup_locations``, ``system_jobs``)
and ``GET /api/settings/backuplocations``. ``GET /api/settings/system`` answers both forms at once: the flat settings
and, beside them, ``id`` and ``spec``; a ``POST`` of ``{id, spec}`` to it saves the ``spec``.

``geoLocation{latitude, longitude, locationName, timezone, elevation}``, ``login{message}``, ``language``,
``nodeStateJob{executionInterval, inactiveDuration}``, ``nodeDiscoverJob{enabled, executionInterval}`` and (ours)
``outbound{allow}``, the hosts and networks handlers and webhook variables may reach besides the open internet
(``core/outbound.py``).
A POST merges its top-level keys over the stored settings (send ``geoLocation`` alone to move the installation)
and validates the result: 400 naming the field (``geoLocation.latitude``). When the location changes, every
enabled schedule's trigger is put again (sun schedules move; schedules without a time zone use the location's).
"""

from __future__ import annotations

import logging
from typing import Any, Final

from chalicelib.core.model import Kind, Record, event, now_iso
from chalicelib.core.settings import (
    BACKUP_LOCATIONS_ID,
    DOCUMENT_IDS,
    DOCUMENT_MODELS,
    SETTINGS_ID,
    SystemSettings,
    load_settings,
)
from chalicelib.functions.schedules import resync_schedules

from .errors import ApiError, bad_request
from .web import ApiRequest, validate

log = logging.getLogger(__name__)


_FLAT_KEYS: Final = frozenset(SystemSettings.model_fields) | {f.alias for f in SystemSettings.model_fields.values()
                                                                if f.alias}


def _public(settings: SystemSettings) -> Record:
    """Our flat settings, and the same as MyController v2's document ``{id, spec, modifiedOn}`` (its console reads
    ``spec``; ours the top-level keys)."""
    flat = settings.model_dump(mode="json", by_alias=True)
    spec = {k: v for k, v in flat.items() if k != "modifiedOn"}
    return {**flat, "id": SETTINGS_ID, "spec": spec}


def _document(request: ApiRequest, document_id: str) -> Record:
    stored = request.container.repository.get(Kind.SETTINGS, document_id) or {}
    spec = {k: v for k, v in stored.items() if k not in ("id", "modifiedOn")}
    if document_id == BACKUP_LOCATIONS_ID:
        spec = {"locations": spec.get("locations")}
    return {"id": document_id, "spec": spec, "modifiedOn": stored.get("modifiedOn")}


def get_system_settings(request: ApiRequest) -> Record:
    return _public(load_settings(request.container.repository))


def get_backup_locations(request: ApiRequest) -> Record:
    """``{id: "system_backup_locations", spec: {locations}, modifiedOn}`` (``locations`` null when none)."""
    return _document(request, BACKUP_LOCATIONS_ID)


def post_settings(request: ApiRequest) -> Record:
    """MyController v2's ``POST /api/settings`` ``{id, spec}``: ``system_settings`` as ``POST
    /api/settings/system`` saves them, ``system_backup_locations`` and ``system_jobs`` kept as documents."""
    body = request.json()
    if not isinstance(body, dict):
        raise bad_request("body must be a settings document {id, spec}", "body")
    document_id = body.get("id")
    if not isinstance(document_id, str) or not document_id:
        raise bad_request("id should not be empty", "id")
    if document_id not in DOCUMENT_IDS:
        raise bad_request(f"unknown settings id:{document_id} (one of {', '.join(DOCUMENT_IDS)})", "id")
    spec = body.get("spec")
    if not isinstance(spec, dict):
        raise bad_request("spec must be an object", "spec")
    if document_id == SETTINGS_ID:
        saved = save_system_settings(request, spec)
        return {"id": SETTINGS_ID, "spec": saved["spec"], "modifiedOn": saved.get("modifiedOn")}
    model = validate(DOCUMENT_MODELS[document_id], spec, prefix="spec")
    record = {**model.model_dump(mode="json", by_alias=True), "id": document_id, "modifiedOn": now_iso()}
    request.container.repository.put(Kind.SETTINGS, record)
    request.container.records.announce([event("updated", Kind.SETTINGS, record)])
    return _document(request, document_id)


def post_system_settings(request: ApiRequest) -> Record:
    body = request.json()
    if not isinstance(body, dict):
        raise bad_request("body must be a settings object", "body")
    if isinstance(body.get("spec"), dict) and not _FLAT_KEYS & set(body):
        body = body["spec"]  # the reference's {id, spec} document
    return save_system_settings(request, body)


def save_system_settings(request: ApiRequest, body: dict[str, Any]) -> Record:
    """Merge ``body``'s top-level keys over the stored settings, validate, store, and apply the change."""
    container = request.container
    stored = container.repository.get(Kind.SETTINGS, SETTINGS_ID) or {}
    before = load_settings(container.repository)
    merged: dict[str, Any] = {k: v for k, v in stored.items() if k not in ("id", "modifiedOn")}
    merged.update({k: v for k, v in body.items() if k not in ("id", "modifiedOn", "spec")})
    settings = validate(SystemSettings, merged)
    settings = settings.model_copy(update={"modified_on": now_iso()})
    record = settings.record()
    container.repository.put(Kind.SETTINGS, record)
    container.records.announce([event("updated", Kind.SETTINGS, record)])
    automation = container.automation
    if automation.settings is not None:
        automation.settings.invalidate()
    if container.built("outbound"):
        container.outbound.invalidate()  # this process at once; others within the policy's TTL
    if before.geo_location != settings.geo_location and container.schedules is not None:
        location = settings.location() or container.fallback_location
        try:
            resync_schedules(container.schedules, container.repository, location, automation.now())
        except Exception as error:
            log.exception("schedule re-sync after a location change failed")
            raise ApiError(502, f"scheduler: the settings were saved but the schedules could not be re-armed "
                                f"({type(error).__name__})", "scheduler") from None
    return _public(settings)


def reset_jwt_secret(request: ApiRequest) -> Record:
    """MyController v2's ``GET /api/settings/system/jwtsecret/reset``: every login session ends, the caller's too
    (its next call is a 401 and its console shows the login page). Service tokens are not touched."""
    if request.principal is None:
        raise ApiError(401, "authentication required", "authorization")
    return {"sessionsEnded": request.container.auth.end_all_sessions(request.principal)}
