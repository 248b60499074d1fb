"""System settings endpoints, in MyController v2's shape: ``GET``/``POST /api/settings/system``.

``geoLocation{latitude, longitude, locationName, timezone, elevation}``, ``login{message}``, ``language``,
``nodeStateJob{executionInterval, inactiveDuration}`` and ``nodeDiscoverJob{enabled, executionInterval}``.
A POST merges its top-level keys over the stored settings (send ``geoLocation`` alone to move the installation)
and validates the result: 400 naming the field (``geoLocation.latitude``). When the location changes, every
enabled schedule's trigger is put again (sun schedules move; schedules without a time zone use the location's).
"""

from __future__ import annotations

import logging
from typing import Any

from chalicelib.config import get_services
from chalicelib.core.model import Kind, Record, event, now_iso
from chalicelib.core.settings import SETTINGS_ID, SystemSettings, load_settings

from .errors import ApiError, bad_request
from .resources import announce
from .web import ApiRequest, validate

log = logging.getLogger(__name__)


def _public(settings: SystemSettings) -> Record:
    return settings.model_dump(mode="json", by_alias=True)


def get_system_settings(request: ApiRequest) -> Record:
    return _public(load_settings(get_services().repository))


def post_system_settings(request: ApiRequest) -> Record:
    body = request.json()
    if not isinstance(body, dict):
        raise bad_request("body must be a settings object", "body")
    services = get_services()
    stored = services.repository.get(Kind.SETTINGS, SETTINGS_ID) or {}
    before = load_settings(services.repository)
    merged: dict[str, Any] = {k: v for k, v in stored.items() if k not in ("id", "modifiedOn")}
    merged.update({k: v for k, v in body.items() if k not in ("id", "modifiedOn")})
    settings = validate(SystemSettings, merged)
    settings = settings.model_copy(update={"modified_on": now_iso()})
    record = settings.record()
    services.repository.put(Kind.SETTINGS, record)
    announce(services, [event("updated", Kind.SETTINGS, record)])
    from chalicelib.automation_functions import get_functions, resync_schedules

    functions = get_functions()
    if functions.automation.settings is not None:
        functions.automation.settings.invalidate()
    if before.geo_location != settings.geo_location and services.schedules is not None:
        location = settings.location() or services.extras.get("location")
        try:
            resync_schedules(services.schedules, services.repository, location, functions.automation.now())
        except Exception as error:
            log.exception("schedule re-sync after a location change failed")
            raise ApiError(502, f"scheduler: the settings were saved but the schedules could not be re-armed "
                                f"({type(error).__name__})", "scheduler") from None
    return _public(settings)
