"""What triggers the functions besides HTTP: event source mappings, EventBridge rules, EventBridge Scheduler.

* ``QueueMapping``: one per ``AWS::Lambda::EventSourceMapping`` on an SQS queue, as Lambda's poller: long-polls
  the queue (moto), gathers up to ``BatchSize`` records within ``MaximumBatchingWindowInSeconds``, invokes the
  function with Lambda's SQS event, deletes what succeeded (with ``ReportBatchItemFailures``, all but the listed
  failures; without it, all or nothing). What is not deleted comes back after the queue's visibility timeout and,
  after ``maxReceiveCount`` receives, moto's redrive moves it to the DLQ. ``retry_after_s`` (tests only, off by
  default) shortens that wait for failed records, so a five-receive redrive does not take 15 minutes.
* ``EventRules``: rules with a Lambda target get the events moto received (moto delivers SQS targets itself); rules
  with a ``ScheduleExpression`` fire their targets at their rate or cron time. A Lambda target needs an
  ``AWS::Lambda::Permission`` for events.amazonaws.com from the rule, as in AWS.
* ``Schedules``: every EventBridge Scheduler schedule in moto (made by the template or, at run time, by the
  functions) fires its target at its time (``at()``, ``rate()``, ``cron()`` in its time zone, start and end dates,
  ``ActionAfterCompletion: DELETE``), through its role, which must allow ``lambda:InvokeFunction`` on the target.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from .iam import Policy, Request
from .template import ACCOUNT_ID

log = logging.getLogger("twin.sources")


def _record(message: dict[str, Any], arn: str, region: str) -> dict[str, Any]:
    attributes = {key: str(value) for key, value in (message.get("Attributes") or {}).items()}
    message_attributes = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        message_attributes[name] = {"stringValue": value.get("StringValue"), "binaryValue": value.get("BinaryValue"),
                                    "stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}
    return {"messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
            "attributes": attributes, "messageAttributes": message_attributes, "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": region}


@dataclass
class MappingSpec:
    logical: str
    queue_url: str
    queue_arn: str
    function: str
    batch_size: int
    window_s: float
    report_failures: bool
    enabled: bool


class QueueMapping:
    """Lambda's SQS poller for one mapping."""

    def __init__(self, spec: MappingSpec, sqs: Any, invoke: Callable[[str, Any], Any], region: str,
                 retry_after_s: float | None = None) -> None:
        self.spec = spec
        self.sqs = sqs
        self.invoke = invoke
        self.region = region
        self.retry_after_s = retry_after_s
        self.stats = {"batches": 0, "records": 0, "failed_records": 0, "function_errors": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"esm-{spec.logical}")

    def start(self) -> None:
        if self.spec.enabled:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _gather(self) -> list[dict[str, Any]]:
        spec = self.spec
        messages: list[dict[str, Any]] = []
        deadline: float | None = None
        while len(messages) < spec.batch_size and not self._stop.is_set():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            wait = 1 if remaining is None or remaining >= 1 else 0
            response = self.sqs.receive_message(
                QueueUrl=spec.queue_url, MaxNumberOfMessages=min(10, spec.batch_size - len(messages)),
                WaitTimeSeconds=wait, AttributeNames=["All"], MessageAttributeNames=["All"])
            got = response.get("Messages") or []
            if got and deadline is None:
                deadline = time.monotonic() + spec.window_s
            messages.extend(got)
            if deadline is not None and spec.window_s == 0:
                break
            if not got and wait == 0:
                time.sleep(0.02)
        return messages

    def _run(self) -> None:
        spec = self.spec
        while not self._stop.is_set():
            try:
                messages = self._gather()
            except Exception as error:
                if not self._stop.is_set():
                    log.error("%s: receiving from %s failed: %s", spec.logical, spec.queue_url, error)
                    time.sleep(1)
                continue
            if not messages:
                continue
            records = [_record(m, spec.queue_arn, self.region) for m in messages]
            failed: set[str] = set()
            self.stats["batches"] += 1
            self.stats["records"] += len(records)
            try:
                result = self.invoke(spec.function, {"Records": records})
                if spec.report_failures and isinstance(result, dict):
                    failures = result.get("batchItemFailures") or []
                    failed = {str(f.get("itemIdentifier")) for f in failures}
                    if failed - {r["messageId"] for r in records}:  # Lambda: an unknown id fails the whole batch
                        failed = {r["messageId"] for r in records}
            except Exception as error:
                self.stats["function_errors"] += 1
                log.warning("%s: %s failed on a batch of %d: %s", spec.logical, spec.function, len(records), error)
                failed = {r["messageId"] for r in records}
            self.stats["failed_records"] += len(failed)
            done = [m for m in messages if m["MessageId"] not in failed]
            for start in range(0, len(done), 10):
                self.sqs.delete_message_batch(QueueUrl=spec.queue_url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start:start + 10])])
            if failed and self.retry_after_s is not None:
                for message in messages:
                    if message["MessageId"] in failed:
                        self.sqs.change_message_visibility(QueueUrl=spec.queue_url,
                                                           ReceiptHandle=message["ReceiptHandle"],
                                                           VisibilityTimeout=int(self.retry_after_s))


def mapping_specs(template: Any, functions: Any) -> tuple[list[MappingSpec], list[str]]:
    specs: list[MappingSpec] = []
    problems: list[str] = []
    queues = {template.attributes[q]["Arn"]: template.physical[q] for q, _ in template.of_type("AWS::SQS::Queue")
              if q in template.physical}
    for logical, resource in template.of_type("AWS::Lambda::EventSourceMapping"):
        props = template.resolve(resource.get("Properties") or {})
        source = str(props.get("EventSourceArn", ""))
        function = functions.find(str(props.get("FunctionName", "")))
        if source not in queues:
            problems.append(f"{logical}: event source {source} is not a queue of the stack")
            continue
        if function is None:
            problems.append(f"{logical}: function {props.get('FunctionName')} is not a function of the stack")
            continue
        specs.append(MappingSpec(logical, queues[source], source, function.logical, int(props.get("BatchSize", 10)),
                                 float(props.get("MaximumBatchingWindowInSeconds", 0)),
                                 "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
                                 bool(props.get("Enabled", True))))
    return specs, problems


# --------------------------------------------------------------------------------------------- time expressions

_RATE = re.compile(r"rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)")
_UNIT_S = {"minute": 60, "hour": 3600, "day": 86400}


def aws_cron_to_croniter(expression: str) -> str:
    """AWS's six-field cron (minutes hours day-of-month month day-of-week year; ``?``; day 1 = Sunday) as a
    five-field cron croniter reads."""
    fields = expression.split()
    if len(fields) != 6:
        raise ValueError(f"cron({expression}) must have six fields")
    minute, hour, dom, month, dow, _year = fields
    dom = "*" if dom == "?" else dom
    dow = "*" if dow == "?" else re.sub(r"\d", lambda m: str((int(m.group()) - 1) % 7), dow)
    return f"{minute} {hour} {dom} {month} {dow}"


def next_time(expression: str, after: datetime.datetime, tz: str = "UTC",
              start: datetime.datetime | None = None) -> datetime.datetime | None:
    """The next firing time strictly after ``after`` (aware datetimes), or None for a past ``at()``."""
    zone = ZoneInfo(tz or "UTC")
    expression = expression.strip()
    if expression.startswith("at("):
        moment = datetime.datetime.fromisoformat(expression[3:-1]).replace(tzinfo=zone)
        return moment if moment > after else None
    rate = _RATE.fullmatch(expression)
    if rate:
        period = int(rate.group(1)) * _UNIT_S[rate.group(2).rstrip("s")]
        origin = start or after
        elapsed = (after - origin).total_seconds()
        steps = int(elapsed // period) + 1 if elapsed >= 0 else 0
        return origin + datetime.timedelta(seconds=steps * period)
    if expression.startswith("cron("):
        itr = croniter(aws_cron_to_croniter(expression[5:-1]), after.astimezone(zone))
        result: datetime.datetime = itr.get_next(datetime.datetime)
        return result
    raise ValueError(f"unknown schedule expression {expression!r}")


# --------------------------------------------------------------------------------------------- EventBridge


@dataclass
class LambdaTarget:
    rule: str
    rule_arn: str
    function: str
    input: Any
    input_path: str | None


class EventRules:
    """Lambda targets of pattern rules, and scheduled rules."""

    def __init__(self, template: Any, functions: Any, invoke_async: Callable[[str, Any], None],
                 lambda_allowed: Callable[[str, str, str], bool], on_refusal: Callable[[str, str], None]) -> None:
        from moto.events.models import EventPattern

        self.invoke_async = invoke_async
        self.lambda_allowed = lambda_allowed
        self.on_refusal = on_refusal
        self.region = template.region
        self.pattern_rules: list[tuple[Any, str, list[LambdaTarget]]] = []
        self.scheduled: dict[str, tuple[str, list[LambdaTarget], list[dict[str, Any]]]] = {}
        self.fired: dict[str, int] = {}
        for logical, resource in template.of_type("AWS::Events::Rule"):
            if logical not in template.physical:
                continue
            props = template.resolve(resource.get("Properties") or {})
            if props.get("State", "ENABLED") != "ENABLED":
                continue
            name, arn = template.physical[logical], template.attributes[logical]["Arn"]
            targets = [LambdaTarget(name, arn, t["Arn"], t.get("Input"), t.get("InputPath"))
                       for t in props.get("Targets") or [] if ":lambda:" in str(t.get("Arn"))]
            others = [t for t in props.get("Targets") or [] if ":lambda:" not in str(t.get("Arn"))]
            if "ScheduleExpression" in props:
                self.scheduled[name] = (str(props["ScheduleExpression"]), targets, others)
            elif targets:
                bus = str(props.get("EventBusName") or "default").rsplit("/", 1)[-1]
                pattern = props.get("EventPattern")
                self.pattern_rules.append((EventPattern.load(pattern if isinstance(pattern, str)
                                                             else json.dumps(pattern)), bus, targets))
        self._stop = threading.Event()
        self._next: dict[str, datetime.datetime] = {}

    def _deliver(self, target: LambdaTarget, event: dict[str, Any], source: str) -> None:
        if not self.lambda_allowed(target.function, target.rule_arn, "events.amazonaws.com"):
            self.on_refusal(f"rule {target.rule}", f"lambda:InvokeFunction on {target.function}: no "
                            f"AWS::Lambda::Permission lets events.amazonaws.com invoke it for {target.rule_arn}")
            return
        payload: Any = event
        if target.input is not None:
            payload = json.loads(target.input) if isinstance(target.input, str) else target.input
        elif target.input_path == "$.detail":
            payload = event.get("detail")
        self.fired[target.rule] = self.fired.get(target.rule, 0) + 1
        self.invoke_async(target.function, payload)

    def put_events(self, entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            try:
                detail = json.loads(entry.get("Detail") or "{}")
            except ValueError:
                continue
            event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": entry.get("DetailType"),
                     "source": entry.get("Source"), "account": ACCOUNT_ID,
                     "time": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                     "region": self.region, "resources": entry.get("Resources") or [], "detail": detail}
            bus = str(entry.get("EventBusName") or "default").rsplit("/", 1)[-1]
            for pattern, rule_bus, targets in self.pattern_rules:
                if rule_bus == bus and pattern.matches_event(event):
                    for target in targets:
                        self._deliver(target, event, "pattern")

    def fire(self, name: str) -> bool:
        """Fire a scheduled rule now (as at its time): its Lambda targets get the Scheduled Event."""
        if name not in self.scheduled:
            return False
        _, targets, others = self.scheduled[name]
        event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
                 "account": ACCOUNT_ID, "time": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "region": self.region, "resources": [targets[0].rule_arn] if targets else [], "detail": {}}
        for target in targets:
            self._deliver(target, event, "schedule")
        if others:
            log.warning("scheduled rule %s: %d non-Lambda target(s) not emulated", name, len(others))
        return True

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True, name="event-rules").start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        started = datetime.datetime.now(datetime.UTC)
        while not self._stop.wait(0.5):
            now = datetime.datetime.now(datetime.UTC)
            for name, (expression, _, _) in self.scheduled.items():
                try:
                    due = self._next.get(name) or next_time(expression, now, start=started)
                except ValueError as error:
                    log.error("rule %s: %s", name, error)
                    continue
                if due is None:
                    continue
                self._next[name] = due
                if due <= now:
                    self.fire(name)
                    self._next[name] = next_time(expression, now, start=started) or due


# --------------------------------------------------------------------------------------------- Scheduler


class Schedules:
    """EventBridge Scheduler's firing, over moto's stored schedules."""

    def __init__(self, scheduler: Any, invoke_async: Callable[[str, Any], None],
                 role_policy: Callable[[str], Policy | None], on_refusal: Callable[[str, str], None]) -> None:
        self.client = scheduler
        self.invoke_async = invoke_async
        self.role_policy = role_policy
        self.on_refusal = on_refusal
        self.fired: list[dict[str, Any]] = []
        self._due: dict[tuple[str, str], tuple[datetime.datetime, dict[str, Any]]] = {}
        self._last: dict[tuple[str, str], tuple[str, datetime.datetime]] = {}
        """Per schedule, the expression and time it last fired: a time fires once, whatever reloads happen."""
        self._changed = threading.Event()
        self._stop = threading.Event()

    def changed(self) -> None:
        self._changed.set()

    def start(self) -> None:
        self._changed.set()
        threading.Thread(target=self._run, daemon=True, name="scheduler").start()

    def stop(self) -> None:
        self._stop.set()
        self._changed.set()

    def _reload(self) -> None:
        now = datetime.datetime.now(datetime.UTC)
        due: dict[tuple[str, str], tuple[datetime.datetime, dict[str, Any]]] = {}
        for page in self.client.get_paginator("list_schedules").paginate():
            for item in page.get("Schedules") or []:
                key = (item.get("GroupName") or "default", item["Name"])
                schedule = self.client.get_schedule(GroupName=key[0], Name=key[1])
                if schedule.get("State") != "ENABLED":
                    continue
                start = schedule.get("StartDate")
                after = max(now, start) if start else now
                after -= datetime.timedelta(seconds=1)
                expression = str(schedule["ScheduleExpression"])
                last = self._last.get(key)
                if last is not None and last[0] == expression:
                    after = max(after, last[1])
                try:
                    when = next_time(expression, after, schedule.get("ScheduleExpressionTimezone") or "UTC", start)
                except ValueError as error:
                    log.error("schedule %s/%s: %s", key[0], key[1], error)
                    continue
                end = schedule.get("EndDate")
                if when is None or (end and when > end):
                    continue
                due[key] = (when, schedule)
        self._due = due

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._changed.is_set():
                self._changed.clear()
                try:
                    self._reload()
                except Exception as error:
                    log.error("reading the schedules failed: %s", error)
            now = datetime.datetime.now(datetime.UTC)
            for key, (when, schedule) in list(self._due.items()):
                if when <= now:
                    self._fire(key, schedule, when)
                    self._changed.set()
            self._changed.wait(0.25)

    def _fire(self, key: tuple[str, str], schedule: dict[str, Any], when: datetime.datetime) -> None:
        target = schedule.get("Target") or {}
        arn, role = str(target.get("Arn", "")), str(target.get("RoleArn", ""))
        self._due.pop(key, None)
        self._last[key] = (str(schedule.get("ScheduleExpression", "")), when)
        policy = self.role_policy(role)
        decision = policy.decide(Request("lambda:InvokeFunction", arn)) if policy else None
        if decision is None or not decision.allowed:
            self.on_refusal(f"schedule {key[0]}/{key[1]} (role {role})",
                            f"lambda:InvokeFunction on {arn}: {decision.reason if decision else 'unknown role'}")
        else:
            raw = target.get("Input")
            try:
                payload = json.loads(raw) if raw else {}
            except ValueError:
                payload = raw
            self.fired.append({"group": key[0], "name": key[1], "at": when.isoformat(), "target": arn})
            self.invoke_async(arn, payload)
        expression = str(schedule.get("ScheduleExpression", ""))
        if expression.startswith("at(") and schedule.get("ActionAfterCompletion") == "DELETE":
            try:
                self.client.delete_schedule(GroupName=key[0], Name=key[1])
            except Exception as error:
                log.warning("schedule %s/%s: delete after completion failed: %s", key[0], key[1], error)
        elif not expression.startswith("at("):
            following = next_time(expression, when, str(schedule.get("ScheduleExpressionTimezone") or "UTC"),
                                  schedule.get("StartDate"))
            if following is not None:
                self._due[key] = (following, schedule)
