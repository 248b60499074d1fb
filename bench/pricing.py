"""What AWS charges, per billed unit: the dated us-east-1 list prices ``bench/cost.py`` prices the stack with.

One table, ``PRICES``: each entry is the dollars of ONE billed unit (a request, a 64 KB chunk, a GB-second, a
month of an alarm…), the unit it counts, and where the price and the unit's rule come from. Free tiers are not
applied (they are per account, and an account holds more than this stack); volume tiers are the first ones (a
fleet of this size stays in them). Refresh the numbers from the pricing pages when they change and bump
``PRICES_AS_OF``: everything else follows.

``Usage`` holds counted units by price key and by line (a function, a queue, "fixed"); ``Bill`` prices it and
groups it by service, which is what ``bench/cost.py`` prints and ``docs/cost.md`` explains line by line.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

PRICES_AS_OF: Final = "2025-10-01"
"""When the table below was read from the AWS pricing pages (us-east-1, on-demand, first volume tier)."""
REGION: Final = "us-east-1"
HOURS_PER_MONTH: Final = 730
SECONDS_PER_MONTH: Final = HOURS_PER_MONTH * 3600
MINUTES_PER_MONTH: Final = HOURS_PER_MONTH * 60


@dataclass(frozen=True, slots=True)
class Price:
    dollars: float
    """Dollars per ONE ``unit``."""
    unit: str
    service: str
    rule: str
    """How AWS counts the unit (what rounds up, what is free)."""


PRICES: Final[dict[str, Price]] = {
    # AWS IoT Core
    "iot.message": Price(1.00e-6, "message (5 KB)", "IoT Core",
                         "$1.00 per million messages up to 1 billion; metered in 5 KB steps, both ways "
                         "(device publishes and iot-data publishes to devices)"),
    "iot.rule": Price(0.15e-6, "rule triggered (5 KB)", "IoT Core", "$0.15 per million rules triggered"),
    "iot.action": Price(0.15e-6, "action executed (5 KB)", "IoT Core", "$0.15 per million actions executed"),
    "iot.connection_minute": Price(0.08e-6, "connection minute", "IoT Core",
                                   "$0.08 per million minutes of connection"),
    "iot.shadow": Price(1.25e-6, "shadow operation (1 KB)", "IoT Core",
                        "$1.25 per million device shadow and registry operations, 1 KB steps"),
    # Amazon SQS
    "sqs.request": Price(0.40e-6, "request (64 KB)", "SQS",
                         "$0.40 per million standard-queue requests; every 64 KB of a request's payload is one "
                         "request; empty receives count"),
    # AWS Lambda (arm64)
    "lambda.request": Price(0.20e-6, "invocation", "Lambda", "$0.20 per million requests"),
    "lambda.gb_second": Price(0.0000133334, "GB-second (arm64)", "Lambda",
                              "$0.0000133334 per GB-second on arm64: duration rounded up to 1 ms times the "
                              "configured memory; the INIT phase of a cold start is billed too (since 2025-08)"),
    # Amazon DynamoDB
    "dynamodb.write_unit": Price(0.625e-6, "write request unit", "DynamoDB",
                                 "$0.625 per million on-demand write request units: 1 KB of the larger of the old "
                                 "and new item, rounded up; a failed conditional write is billed; an index whose "
                                 "keys the write adds or removes costs one more"),
    "dynamodb.read_unit": Price(0.125e-6, "read request unit", "DynamoDB",
                                "$0.125 per million on-demand read request units: 4 KB strongly consistent, "
                                "half a unit eventually consistent; a Query or Scan rounds its total up"),
    "dynamodb.wcu_hour": Price(0.00065, "provisioned WCU-hour", "DynamoDB",
                               "$0.00065 per write capacity unit-hour (provisioned mode)"),
    "dynamodb.rcu_hour": Price(0.00013, "provisioned RCU-hour", "DynamoDB",
                               "$0.00013 per read capacity unit-hour (provisioned mode)"),
    "dynamodb.gb_month": Price(0.25, "GB-month stored", "DynamoDB", "$0.25 per GB-month (Standard table class)"),
    "dynamodb.pitr_gb_month": Price(0.20, "GB-month backed up (PITR)", "DynamoDB",
                                    "$0.20 per GB-month of continuous backups"),
    # Amazon EventBridge
    "events.event": Price(1.00e-6, "event (64 KB)", "EventBridge",
                          "$1.00 per million custom events put; every 64 KB of an entry is one event; delivery to "
                          "SQS or Lambda targets is free"),
    "scheduler.invocation": Price(1.00e-6, "schedule invocation", "EventBridge",
                                  "Scheduler: $1.00 per million invocations (the first 14 million a month are free)"),
    # Amazon API Gateway
    "apigw.ws_message": Price(1.00e-6, "websocket message (32 KB)", "API Gateway",
                              "$1.00 per million websocket messages sent or received, 32 KB steps"),
    "apigw.ws_minute": Price(0.25e-6, "websocket connection minute", "API Gateway",
                             "$0.25 per million connection minutes"),
    "apigw.rest_request": Price(3.50e-6, "REST request", "API Gateway", "$3.50 per million REST API requests"),
    # Amazon CloudWatch
    "logs.gb": Price(0.50, "GB of logs ingested", "CloudWatch",
                     "$0.50 per GB ingested (standard class); every log event counts its bytes plus 26"),
    "logs.gb_month": Price(0.03, "GB-month of logs stored", "CloudWatch", "$0.03 per GB-month archived"),
    "cloudwatch.metric_month": Price(0.30, "custom metric-month", "CloudWatch",
                                     "$0.30 per custom metric a month (first 10,000), prorated by the hour: "
                                     "embedded metric format lines make them"),
    "cloudwatch.alarm_month": Price(0.10, "alarm-month", "CloudWatch",
                                    "$0.10 per standard-resolution alarm metric a month"),
    # AWS X-Ray
    "xray.trace": Price(5.00e-6, "trace recorded", "X-Ray",
                        "$5.00 per million traces recorded; Lambda's Active tracing samples the first request "
                        "each second and 5 % of the rest"),
    # AWS KMS, Secrets Manager, SSM
    "kms.key_month": Price(1.00, "customer managed key-month", "KMS", "$1.00 per key a month (rotation included)"),
    "kms.request": Price(0.03e-4, "request", "KMS", "$0.03 per 10,000 requests"),
    "secrets.secret_month": Price(0.40, "secret-month", "Secrets Manager", "$0.40 per secret a month"),
    "secrets.request": Price(0.05e-4, "API call", "Secrets Manager", "$0.05 per 10,000 API calls"),
    # Amazon S3, CloudFront
    "s3.gb_month": Price(0.023, "GB-month (Standard)", "S3", "$0.023 per GB-month"),
    "s3.write": Price(0.005e-3, "PUT, COPY, POST or LIST", "S3", "$0.005 per 1,000 requests"),
    "s3.read": Price(0.0004e-3, "GET", "S3", "$0.0004 per 1,000 requests"),
    "cloudfront.request": Price(0.01e-4, "HTTPS request", "CloudFront", "$0.0100 per 10,000 HTTPS requests"),
    "cloudfront.gb": Price(0.085, "GB out", "CloudFront", "$0.085 per GB to the internet (North America)"),
    # Amazon Timestream for InfluxDB: shown apart (the MetricStore=create parameter)
    "influxdb.medium_hour": Price(0.237, "db.influx.medium instance-hour (Single-AZ)", "Timestream for InfluxDB",
                                  "instance-hours while it runs (approximate: check the pricing page)"),
    "influxdb.gb_month": Price(0.20, "GB-month of Influx IOPS Included storage", "Timestream for InfluxDB",
                               "allocated storage, by the month (approximate: check the pricing page)"),
}
"""Every price the cost model uses, by key."""

SERVICE_ORDER: Final = ("IoT Core", "SQS", "Lambda", "DynamoDB", "EventBridge", "API Gateway", "CloudWatch",
                        "X-Ray", "KMS", "Secrets Manager", "S3", "CloudFront", "Timestream for InfluxDB")
APART: Final = frozenset({"Timestream for InfluxDB"})
"""Services shown beside the total, not in it (a managed metric instance, when chosen)."""


def chunks(size: int, step: int) -> int:
    """Billed units of a payload counted in ``step`` bytes, at least one (SQS 64 KB, IoT 5 KB, websocket 32 KB)."""
    return max(1, math.ceil(size / step))


@dataclass
class Usage:
    """Counted billed units: ``units[(price key, line)]``. A line says what used them ("ingest", "fixed"…)."""

    units: collections.defaultdict[tuple[str, str], float] = field(
        default_factory=lambda: collections.defaultdict(float))

    def add(self, key: str, amount: float, line: str = "") -> None:
        if key not in PRICES:
            raise KeyError(f"no price {key!r}")
        if amount:
            self.units[(key, line)] += amount

    def merge(self, other: Usage, scale: float = 1.0, line: str | None = None) -> None:
        """Add ``other``'s units times ``scale`` (under ``line`` when given)."""
        for (key, own_line), amount in other.units.items():
            self.units[(key, own_line if line is None else line)] += amount * scale

    def total(self, key: str) -> float:
        return sum(amount for (k, _), amount in self.units.items() if k == key)

    def scaled(self, scale: float) -> Usage:
        result = Usage()
        result.merge(self, scale)
        return result


@dataclass(frozen=True, slots=True)
class BillLine:
    service: str
    key: str
    line: str
    units: float
    dollars: float


class Bill:
    """Dollars of a ``Usage``: by line, by service, in total (services in ``APART`` left out of the total)."""

    def __init__(self, usage: Usage) -> None:
        self.lines = sorted(
            (BillLine(PRICES[key].service, key, line, amount, amount * PRICES[key].dollars)
             for (key, line), amount in usage.units.items()),
            key=lambda b: (_service_rank(b.service), -b.dollars))

    def by_service(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for line in self.lines:
            totals[line.service] = totals.get(line.service, 0.0) + line.dollars
        return totals

    def by_key(self) -> dict[str, float]:
        totals: dict[str, float] = collections.defaultdict(float)
        for line in self.lines:
            totals[line.key] += line.dollars
        return dict(totals)

    @property
    def total(self) -> float:
        return sum(line.dollars for line in self.lines if line.service not in APART)

    @property
    def apart(self) -> float:
        return sum(line.dollars for line in self.lines if line.service in APART)


def _service_rank(service: str) -> int:
    return SERVICE_ORDER.index(service) if service in SERVICE_ORDER else len(SERVICE_ORDER)


def price_table(keys: Iterable[str] | None = None, prices: Mapping[str, Price] = PRICES) -> list[str]:
    """The table as text lines (``bench/cost.py --prices``)."""
    rows = [f"prices: {REGION}, list, as of {PRICES_AS_OF} (free tiers not applied)"]
    for key in keys if keys is not None else prices:
        price = prices[key]
        rows.append(f"  {key:28} ${price.dollars:.10g} per {price.unit}: {price.rule}")
    return rows
