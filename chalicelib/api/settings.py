"""System settings endpoints, in MyController v2's shape: ``GET``/``POST /api/settings/system``.

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
from typing import Any

from chalicelib.core.model import Kind, Record, event, now_iso
from chalicelib.core.settings import SETTINGS_ID, SystemSettings, load_settings
from chalicelib.functions.schedules import resync_schedules

from .errors import ApiError, bad_request
from .web import ApiRequest, validate

log = logging.getLogger(__name__)


def _public(settings: SystemSettings) -> Record:
    return settings.model_dump(mode="json", by_alias=True)


def get_system_settings(request: ApiRequest) -> Record:
    return _public(load_settings(request.container.repository))


def post_system_settings(request: ApiRequest) -> Record:
    body = request.json()
    if not isinstance(body, dict):
        raise bad_request("body must be a settings object", "body")
    container = request.container
    stored = container.repository.get(Kind.SETTINGS, SETTINGS_ID) or {}
    before = load_settings(container.repository)
    merged: dict[str, Any] = {k: v for k, v in stored.items() if k not in ("id", "modifiedOn")}
    merged.update({k: v for k, v in body.items() if k not in ("id", "modifiedOn")})
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
