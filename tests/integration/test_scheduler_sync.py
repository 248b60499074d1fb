"""EventBridge Scheduler follows schedules and interval tasks through the API (moto): create, update, disable,
enable and delete; plus the failure answer (502 naming ``scheduler``, the resource change kept)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest

from chalicelib.adapters.schedules_eventbridge import EventBridgeScheduleRegistry
from chalicelib.core.automation.clock import Location
from tests.integration.api_helpers import Api, fast_auth, make_container

pytestmark = pytest.mark.integration

TARGET = "arn:aws:lambda:us-east-1:123456789012:function:scheduler"
ROLE = "arn:aws:iam::123456789012:role/scheduler"
CRON: dict[str, Any] = {"id": "s1", "type": "cron", "spec": {"cronExpression": "0 30 7 * * *"},
                        "timezone": "Europe/Paris"}


@pytest.fixture(name="api")
def api_fixture(aws_mock: None, tmp_path: Path, request: pytest.FixtureRequest,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    from chalice.test import Client

    from chalicelib.api import build_api

    fast_auth(monkeypatch)

    client = boto3.client("scheduler", region_name="us-east-1")
    group = f"mc-{request.node.name}"[:64].replace("[", "-").replace("]", "")
    registry = EventBridgeScheduleRegistry(TARGET, ROLE, group=group, client=client)
    registry.create_group()
    container = make_container("memory", tmp_path, request, schedules=registry,
                               fallback_location=Location(48.8566, 2.3522, "Paris", "Europe/Paris"))
    with Client(build_api(container)) as http:
        try:
            harness = Api(container, http.http)
            harness.login()
            yield harness
        finally:
            container.close()


def scheduled(api: Api, name: str) -> dict[str, Any] | None:
    registry = api.container.schedules
    assert isinstance(registry, EventBridgeScheduleRegistry)
    try:
        return dict(boto3.client("scheduler", region_name="us-east-1").get_schedule(Name=name,
                                                                                    GroupName=registry.group))
    except Exception as error:
        assert "ResourceNotFound" in type(error).__name__ or "ResourceNotFound" in str(error), error
        return None


def test_schedule_follows_the_resource(api: Api) -> None:
    api.ok("POST", "/api/schedule", CRON)
    found = scheduled(api, "schedule-s1")
    assert found is not None
    assert found["ScheduleExpression"] == "cron(30 7 * * ? *)"
    assert found["ScheduleExpressionTimezone"] == "Europe/Paris"
    assert found["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert found["Target"]["Arn"] == TARGET and found["Target"]["RoleArn"] == ROLE
    assert json.loads(found["Target"]["Input"]) == {"kind": "schedule", "id": "s1",
                                                    "scheduledTime": "<aws.scheduler.scheduled-time>"}

    api.ok("POST", "/api/schedule", {**CRON, "spec": {"cronExpression": "0 0 8 * * MON-FRI"}})
    found = scheduled(api, "schedule-s1")
    assert found is not None and found["ScheduleExpression"] == "cron(0 8 ? * MON,TUE,WED,THU,FRI *)"

    api.ok("POST", "/api/schedule/disable", ["s1"])
    assert scheduled(api, "schedule-s1") is None
    api.ok("POST", "/api/schedule/enable", ["s1"])
    assert scheduled(api, "schedule-s1") is not None
    assert api.container.schedules is not None and api.container.schedules.names() == {"schedule-s1"}

    api.ok("DELETE", "/api/schedule", ["s1"])
    assert scheduled(api, "schedule-s1") is None
    assert api.container.schedules.names() == set()


def test_disabled_schedule_is_not_scheduled(api: Api) -> None:
    api.ok("POST", "/api/schedule", {**CRON, "enabled": False})
    assert scheduled(api, "schedule-s1") is None


def test_validity_window_bounds_the_schedule(api: Api) -> None:
    api.ok("POST", "/api/schedule", {**CRON, "validity": {"date": {"from": "2030-01-01", "to": "2030-12-31"}}})
    found = scheduled(api, "schedule-s1")
    assert found is not None and found.get("StartDate") is not None and found.get("EndDate") is not None
    paris = ZoneInfo("Europe/Paris")
    assert found["StartDate"] == datetime(2030, 1, 1, tzinfo=paris)
    assert datetime(2030, 12, 31, tzinfo=paris) < found["EndDate"] <= datetime(2031, 1, 1, tzinfo=paris)


def test_interval_task_gets_a_rate_schedule(api: Api) -> None:
    api.ok("POST", "/api/task", {"id": "t1", "executionInterval": "5m"})
    found = scheduled(api, "task-t1")
    assert found is not None
    assert found["ScheduleExpression"] == "rate(5 minutes)"
    assert json.loads(found["Target"]["Input"]) == {"kind": "task", "id": "t1",
                                                    "scheduledTime": "<aws.scheduler.scheduled-time>"}
    api.ok("POST", "/api/task/disable", ["t1"])
    assert scheduled(api, "task-t1") is None
    api.ok("POST", "/api/task/enable", ["t1"])
    api.ok("POST", "/api/task", {"id": "t1"})  # now event-triggered: no schedule
    assert scheduled(api, "task-t1") is None
    api.ok("POST", "/api/task", {"id": "t1", "executionInterval": "2h"})
    found = scheduled(api, "task-t1")
    assert found is not None and found["ScheduleExpression"] == "rate(2 hours)"
    api.ok("DELETE", "/api/task", ["t1"])
    assert scheduled(api, "task-t1") is None


def test_sunrise_schedule_is_a_one_shot(api: Api) -> None:
    api.ok("POST", "/api/schedule", {"id": "sun", "type": "sunrise", "spec": {"offset": "-15m"}})
    found = scheduled(api, "schedule-sun")
    assert found is not None
    assert found["ScheduleExpression"].startswith("at(")
    assert found["ScheduleExpressionTimezone"] == "Europe/Paris"


def test_registry_failure_is_a_502_and_the_change_stays(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("scheduler down")

    assert api.container.schedules is not None
    monkeypatch.setattr(api.container.schedules, "put", broken)
    status, data, _ = api.call("POST", "/api/schedule", CRON)
    assert status == 502, data
    assert data["field"] == "scheduler" and "scheduler" in data["message"]
    assert api.ok("GET", "/api/schedule/s1")["id"] == "s1"
