"""Dashboards' routes (``/api/dashboard``): the models and their checks are in ``core/dashboards.py``.

Upsert replaces the dashboard (the reference's semantics) and sets ``modifiedOn``; a missing ``id`` gets a new
one. Changes are announced on the bus like every resource's.
"""

from __future__ import annotations

import uuid

from chalicelib.core.dashboards import Dashboard
from chalicelib.core.model import EventType, Kind, Record, event, now_iso
from chalicelib.services.records import check_size

from .errors import bad_request
from .web import ApiRequest, validate


def upsert_dashboard(request: ApiRequest) -> Record:
    body = request.json()
    if not isinstance(body, dict):
        raise bad_request("body must be a dashboard object", "body")
    model = validate(Dashboard, body)
    record = {**model.record(), "id": model.id or uuid.uuid4().hex, "modifiedOn": now_iso()}
    check_size("dashboard", record)
    container = request.container
    stored = container.repository.get(Kind.DASHBOARD, record["id"])
    container.repository.put(Kind.DASHBOARD, record)
    container.records.announce([event(EventType.UPDATED if stored is not None else EventType.CREATED,
                                      Kind.DASHBOARD, record)])
    return record
