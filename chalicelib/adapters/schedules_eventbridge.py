"""``ScheduleRegistry`` on EventBridge Scheduler: one schedule per enabled schedule resource or interval task, in
one schedule group, all targeting the same function with the ``{"kind", "id"}`` payload plus ``scheduledTime``
(``<aws.scheduler.scheduled-time>``) as input.

``put`` updates the schedule and creates it when the update finds none (``update_schedule`` replaces every
setting, as ``put`` means to); ``delete`` ignores a schedule that is already gone; ``names`` pages through
``list_schedules``. The group is part of the infrastructure (``infra/``); ``create_group`` is for tests and
first runs.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import boto3
from botocore.exceptions import ClientError

SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"
"""A context attribute EventBridge Scheduler replaces with the run's scheduled time: the target's trigger id
derives from it, so a retried invocation is recognised as the same run."""


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class EventBridgeScheduleRegistry:
    def __init__(self, target_arn: str, role_arn: str, group: str = "mycontroller", client: Any = None,
                 region: str | None = None) -> None:
        self.target_arn = target_arn
        self.role_arn = role_arn
        self.group = group
        self._client = client if client is not None else boto3.client("scheduler", region_name=region)

    def create_group(self) -> None:
        """Create the schedule group unless it exists."""
        try:
            self._client.create_schedule_group(Name=self.group)
        except ClientError as error:
            if _code(error) != "ConflictException":
                raise

    def put(self, name: str, expression: str, timezone: str, payload: dict[str, Any],
            start: datetime | None, end: datetime | None) -> None:
        request: dict[str, Any] = {
            "Name": name,
            "GroupName": self.group,
            "ScheduleExpression": expression,
            "ScheduleExpressionTimezone": timezone,
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "ENABLED",
            "Target": {"Arn": self.target_arn, "RoleArn": self.role_arn,
                       "Input": json.dumps({**payload, "scheduledTime": SCHEDULED_TIME}, separators=(",", ":"),
                                           sort_keys=True)},
        }
        if start is not None:
            request["StartDate"] = start
        if end is not None:
            request["EndDate"] = end
        try:
            self._client.update_schedule(**request)
            return
        except ClientError as error:
            if _code(error) != "ResourceNotFoundException":
                raise
        try:
            self._client.create_schedule(**request)
        except ClientError as error:  # created meanwhile by a concurrent put: ours is the newer settings
            if _code(error) != "ConflictException":
                raise
            self._client.update_schedule(**request)

    def delete(self, name: str) -> None:
        try:
            self._client.delete_schedule(Name=name, GroupName=self.group)
        except ClientError as error:
            if _code(error) != "ResourceNotFoundException":
                raise

    def names(self) -> set[str]:
        found: set[str] = set()
        for page in self._client.get_paginator("list_schedules").paginate(GroupName=self.group):
            found.update(str(item["Name"]) for item in page.get("Schedules", []))
        return found
