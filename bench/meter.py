"""Every AWS call the functions make, counted in the units AWS bills, as the calls happen (moto behind them).

``AwsMeter`` wraps botocore's one door (``BaseClient._make_api_call``), so boto3 clients and pynamodb alike are
seen, with the request and the answer: DynamoDB units from the items' sizes (reads from what came back, writes
from what was written, a new item's index entries, failed conditions too), EventBridge events per 64 KB of each
entry (and the entries themselves, which ``bench/cost.py`` routes by the template's rules), SQS requests per 64 KB,
iot-data publishes per 5 KB, websocket posts per 32 KB, KMS and Secrets Manager requests, S3 requests. What the
functions do not call themselves (the IoT rule, Lambda's pollers, EventBridge's deliveries) is counted by
``bench/cost.py`` from the template.

Units go to the line named by ``meter.line`` (the function being run): the cost is told by function.
"""

from __future__ import annotations

import collections
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError

from bench.pricing import Usage, chunks

DYNAMODB_WRITE_STEP = 1024
DYNAMODB_READ_STEP = 4096
SQS_STEP = 64 * 1024
EVENTS_STEP = 64 * 1024
IOT_STEP = 5 * 1024
SHADOW_STEP = 1024
WEBSOCKET_STEP = 32 * 1024
TABLE_MARK = "@"
"""DynamoDB units are told by function and table: ``"<function> @<table>"``."""

_KMS_BILLED = frozenset({"Encrypt", "Decrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "ReEncrypt",
                         "Sign", "Verify", "GenerateRandom"})
_S3_READS = frozenset({"GetObject", "HeadObject", "GetObjectTagging"})
_S3_WRITES = frozenset({"PutObject", "CopyObject", "ListObjects", "ListObjectsV2", "ListObjectVersions",
                        "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "DeleteObjects"})


def attribute_size(value: dict[str, Any]) -> int:
    """Bytes of one DynamoDB attribute value in wire form, as DynamoDB sizes items."""
    (kind, data), = value.items()
    if kind == "S":
        return len(str(data).encode("utf-8"))
    if kind == "N":
        digits = str(data).lstrip("-").replace(".", "").lstrip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(data) if isinstance(data, bytes | bytearray) else len(str(data))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(attribute_size({kind[0]: item}) for item in data)
    if kind == "L":
        return 3 + sum(1 + attribute_size(item) for item in data)
    if kind == "M":
        return 3 + sum(1 + len(name.encode("utf-8")) + attribute_size(item) for name, item in data.items())
    return len(str(data))


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode("utf-8")) + attribute_size(value) for name, value in item.items())


def write_units(item: dict[str, Any]) -> int:
    return max(1, math.ceil(item_size(item) / DYNAMODB_WRITE_STEP))


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / DYNAMODB_READ_STEP))
    return float(units) if consistent else units / 2


def event_entry_size(entry: dict[str, Any]) -> int:
    """An entry's size as EventBridge computes it (the same rule the adapter batches by)."""
    size = 14 if entry.get("Time") is not None else 0
    for key in ("Source", "DetailType", "Detail"):
        value = entry.get(key)
        if value:
            size += len(str(value).encode("utf-8"))
    return size + sum(len(str(r).encode("utf-8")) for r in entry.get("Resources") or ())


class AwsMeter:
    """Counts billed units of every AWS call made while installed (``with meter.installed():``)."""

    def __init__(self) -> None:
        self.usage = Usage()
        self.line = "setup"
        self.calls: collections.Counter[tuple[str, str]] = collections.Counter()
        """``(service, operation)`` → calls (every call, billed or not)."""
        self.entries: list[dict[str, Any]] = []
        """EventBridge entries put, in order (``bench/cost.py`` routes them by the template's rules)."""
        self.posts: list[tuple[str, int]] = []
        """Websocket posts: connection id and bytes."""
        self.publishes: list[tuple[str, int]] = []
        """iot-data publishes: topic and bytes."""
        self._lock = threading.Lock()
        self._inside = threading.local()
        self.table_units: collections.defaultdict[tuple[str, str], float] = collections.defaultdict(float)
        """``(table, "read" | "write")`` → units (provisioned capacity is priced from these)."""
        self._existing: set[tuple[str, str]] = set()
        self._index_keys: dict[str, list[str]] = {}

    # ----------------------------------------------------------------------------------------- installing

    @contextmanager
    def installed(self) -> Iterator[AwsMeter]:
        original = BaseClient._make_api_call
        meter = self

        def metered(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
            if getattr(meter._inside, "active", False):
                return original(client, operation, params)
            service = client.meta.service_model.service_name
            meter._inside.active = True
            try:
                try:
                    response = original(client, operation, params)
                except ClientError as error:
                    meter._record(client, service, operation, params, None, error)
                    raise
                meter._record(client, service, operation, params, response, None)
                return response
            finally:
                meter._inside.active = False

        BaseClient._make_api_call = metered
        try:
            yield self
        finally:
            BaseClient._make_api_call = original

    def reset(self) -> None:
        with self._lock:
            self.usage = Usage()
            self.calls.clear()
            self.table_units.clear()
            self.entries.clear()
            self.posts.clear()
            self.publishes.clear()

    def add(self, key: str, amount: float, line: str | None = None) -> None:
        with self._lock:
            self.usage.add(key, amount, self.line if line is None else line)

    # ----------------------------------------------------------------------------------------- recording

    def _record(self, client: BaseClient, service: str, operation: str, params: dict[str, Any],
                response: dict[str, Any] | None, error: ClientError | None) -> None:
        with self._lock:
            self.calls[(service, operation)] += 1
        handler = getattr(self, "_" + service.replace("-", "_"), None)
        if handler is not None:
            handler(client, operation, params, response or {}, error)

    def _units(self, table: str, kind: str, amount: float) -> None:
        self.add(f"dynamodb.{kind}_unit", amount, f"{self.line} {TABLE_MARK}{table}")
        with self._lock:
            self.table_units[(table, kind)] += amount

    def _dynamodb(self, client: BaseClient, operation: str, params: dict[str, Any], response: dict[str, Any],
                  error: ClientError | None) -> None:
        consistent = bool(params.get("ConsistentRead"))
        table = str(params.get("TableName", ""))
        if operation == "GetItem":
            self._units(table, "read", read_units(item_size(response.get("Item") or {}), consistent))
        elif operation == "BatchGetItem":
            self._dynamodb_batch_get(params, response)
        elif operation in ("Query", "Scan"):
            size = sum(item_size(item) for item in response.get("Items") or [])
            self._units(table, "read", read_units(size, consistent))
        elif operation == "PutItem":
            self._write(client, params["TableName"], params["Item"])
        elif operation == "UpdateItem":
            self._dynamodb_update(client, params, error)
        elif operation == "DeleteItem":
            self._units(table, "write", 1)
            self._existing.discard((params["TableName"], _key_text(params["Key"])))
        elif operation == "BatchWriteItem":
            self._dynamodb_batch_write(client, params)
        elif operation == "TransactWriteItems":
            for item in params.get("TransactItems") or []:
                put = item.get("Put")
                if put:
                    self._units(str(put.get("TableName")), "write", 2 * write_units(put["Item"]))

    def _dynamodb_batch_get(self, params: dict[str, Any], response: dict[str, Any]) -> None:
        """Per table, the items found (a missing key still costs a read unit)."""
        for name, request in (params.get("RequestItems") or {}).items():
            strong = bool(request.get("ConsistentRead"))
            found = (response.get("Responses") or {}).get(name) or []
            units = sum(read_units(item_size(item), strong) for item in found)
            missing = len(request.get("Keys") or []) - len(found)
            self._units(name, "read", units + max(0, missing) * read_units(0, strong))

    def _dynamodb_update(self, client: BaseClient, params: dict[str, Any], error: ClientError | None) -> None:
        """An update costs the item as it is after it: read back (by the meter) when the update succeeded."""
        key = params["Key"]
        item = key
        if error is None:
            self._inside.active = True  # the read-back is the meter's, not the function's
            found = client._make_api_call("GetItem", {"TableName": params["TableName"], "Key": key,
                                                      "ConsistentRead": True})
            item = found.get("Item") or key
        self._write(client, params["TableName"], item)

    def _dynamodb_batch_write(self, client: BaseClient, params: dict[str, Any]) -> None:
        for name, requests in (params.get("RequestItems") or {}).items():
            for request in requests:
                if "PutRequest" in request:
                    self._write(client, name, request["PutRequest"]["Item"])
                else:
                    self._units(name, "write", 1)

    def _write(self, client: BaseClient, table: str, item: dict[str, Any]) -> None:
        units = write_units(item)
        key = (table, _key_text({name: item[name] for name in self._key_names(client, table) if name in item}))
        if key not in self._existing:
            self._existing.add(key)
            units += sum(1 for name in self._index_keys.get(table, ()) if name in item)
        self._units(table, "write", units)

    def _key_names(self, client: BaseClient, table: str) -> list[str]:
        if table not in self._index_keys:
            self._inside.active = True
            description = client._make_api_call("DescribeTable", {"TableName": table})["Table"]
            self._index_keys[table] = [index["KeySchema"][0]["AttributeName"]
                                       for index in description.get("GlobalSecondaryIndexes") or []]
            self._index_keys[table + "#key"] = [k["AttributeName"] for k in description["KeySchema"]]
        return self._index_keys[table + "#key"]

    def seed(self, client: BaseClient, table: str) -> None:
        """Items already in ``table`` are not new (their index entries were paid when they were made)."""
        self._key_names(client, table)
        self._inside.active = True
        try:
            start: dict[str, Any] | None = None
            while True:
                params: dict[str, Any] = {"TableName": table}
                if start:
                    params["ExclusiveStartKey"] = start
                page = client._make_api_call("Scan", params)
                for item in page.get("Items") or []:
                    self._existing.add((table, _key_text({name: item[name] for name in
                                                          self._index_keys[table + "#key"] if name in item})))
                start = page.get("LastEvaluatedKey")
                if not start:
                    break
        finally:
            self._inside.active = False

    def _events(self, client: BaseClient, operation: str, params: dict[str, Any], response: dict[str, Any],
                error: ClientError | None) -> None:
        if operation == "PutEvents":
            entries = list(params.get("Entries") or [])
            self.add("events.event", sum(chunks(event_entry_size(entry), EVENTS_STEP) for entry in entries))
            with self._lock:
                self.entries.extend(entries)

    def _sqs(self, client: BaseClient, operation: str, params: dict[str, Any], response: dict[str, Any],
             error: ClientError | None) -> None:
        if operation == "SendMessage":
            self.add("sqs.request", chunks(len(str(params.get("MessageBody", "")).encode()), SQS_STEP))
        elif operation == "SendMessageBatch":
            size = sum(len(str(e.get("MessageBody", "")).encode()) for e in params.get("Entries") or [])
            self.add("sqs.request", chunks(size, SQS_STEP))
        elif operation == "ReceiveMessage":
            size = sum(len(str(m.get("Body", "")).encode()) for m in response.get("Messages") or [])
            self.add("sqs.request", chunks(size, SQS_STEP))
        else:
            self.add("sqs.request", 1)

    def _iot_data(self, client: BaseClient, operation: str, params: dict[str, Any], response: dict[str, Any],
                  error: ClientError | None) -> None:
        payload = params.get("payload") or b""
        size = len(payload if isinstance(payload, bytes | bytearray) else str(payload).encode())
        if operation == "Publish":
            self.add("iot.message", chunks(size, IOT_STEP))
            with self._lock:
                self.publishes.append((str(params.get("topic")), size))
        elif operation in ("UpdateThingShadow", "GetThingShadow", "DeleteThingShadow", "ListNamedShadowsForThing"):
            self.add("iot.shadow", chunks(size, SHADOW_STEP))

    def _apigatewaymanagementapi(self, client: BaseClient, operation: str, params: dict[str, Any],
                                 response: dict[str, Any], error: ClientError | None) -> None:
        if operation == "PostToConnection":
            data = params.get("Data") or b""
            size = len(data if isinstance(data, bytes | bytearray) else str(data).encode())
            self.add("apigw.ws_message", chunks(size, WEBSOCKET_STEP))
            with self._lock:
                self.posts.append((str(params.get("ConnectionId")), size))

    def _kms(self, client: BaseClient, operation: str, params: dict[str, Any], response: dict[str, Any],
             error: ClientError | None) -> None:
        if operation in _KMS_BILLED:
            self.add("kms.request", 1)

    def _secretsmanager(self, client: BaseClient, operation: str, params: dict[str, Any], response: dict[str, Any],
                        error: ClientError | None) -> None:
        self.add("secrets.request", 1)

    def _s3(self, client: BaseClient, operation: str, params: dict[str, Any], response: dict[str, Any],
            error: ClientError | None) -> None:
        if operation in _S3_READS:
            self.add("s3.read", 1)
        elif operation in _S3_WRITES:
            self.add("s3.write", 1)

    def _scheduler(self, client: BaseClient, operation: str, params: dict[str, Any], response: dict[str, Any],
                   error: ClientError | None) -> None:
        return None  # schedule management is free; invocations are billed when they fire


def _key_text(key: dict[str, Any]) -> str:
    return "|".join(f"{name}={next(iter(value.values()))}" for name, value in sorted(key.items()))
