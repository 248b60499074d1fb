"""``ConnectionStore`` on DynamoDB: API Gateway websocket connections, in a table of their own.

Why not the single resource table: notify reads every connection (a ``Scan``), which must not walk the
resources; and connections expire on their own (DynamoDB TTL on ``expiresAt``, past API Gateway's two-hour
limit), which the resource table has no use for. One item per connection, keyed by ``connectionId``; the
principal and each subscription filter are JSON strings (``subscriptions`` is a map of them), so a subscribe is
one conditional ``UpdateItem`` that never recreates a connection already gone.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.exceptions import ClientError

KEY = "connectionId"
TTL_ATTRIBUTE = "expiresAt"


def connections_table_definition(table_name: str | None = None) -> dict[str, Any]:
    """The table's CloudFormation properties (``infra/template.py`` and the tests create it from this)."""
    definition: dict[str, Any] = {
        "AttributeDefinitions": [{"AttributeName": KEY, "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": KEY, "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
        "TimeToLiveSpecification": {"AttributeName": TTL_ATTRIBUTE, "Enabled": True},
    }
    if table_name:
        definition["TableName"] = table_name
    return definition


class DynamoDBConnectionStore:
    def __init__(self, table_name: str, region: str | None = None, endpoint_url: str | None = None,
                 client: Any = None) -> None:
        self.table_name = table_name
        self.client = client or boto3.client("dynamodb", region_name=region, endpoint_url=endpoint_url)

    def create_table(self) -> None:
        """For tests and DynamoDB Local (in AWS the table comes from ``infra/``)."""
        definition = connections_table_definition(self.table_name)
        ttl = definition.pop("TimeToLiveSpecification")
        self.client.create_table(**definition)
        self.client.update_time_to_live(TableName=self.table_name, TimeToLiveSpecification=ttl)

    def put(self, connection: dict[str, Any]) -> None:
        item: dict[str, Any] = {
            KEY: {"S": str(connection[KEY])},
            "principal": {"S": json.dumps(connection.get("principal") or {})},
            "connectedAt": {"N": str(int(connection.get("connectedAt") or 0))},
            "subscriptions": {"M": {sid: {"S": json.dumps(data)}
                                    for sid, data in (connection.get("subscriptions") or {}).items()}},
        }
        if connection.get(TTL_ATTRIBUTE) is not None:
            item[TTL_ATTRIBUTE] = {"N": str(int(connection[TTL_ATTRIBUTE]))}
        self.client.put_item(TableName=self.table_name, Item=item)

    def get(self, connection_id: str) -> dict[str, Any] | None:
        response = self.client.get_item(TableName=self.table_name, Key={KEY: {"S": connection_id}},
                                        ConsistentRead=True)
        item = response.get("Item")
        return _record(item) if item else None

    def delete(self, connection_id: str) -> None:
        self.client.delete_item(TableName=self.table_name, Key={KEY: {"S": connection_id}})

    def list_all(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        paginator = self.client.get_paginator("scan")
        for page in paginator.paginate(TableName=self.table_name, ConsistentRead=True):
            records.extend(_record(item) for item in page.get("Items", ()))
        return records

    def set_subscription(self, connection_id: str, subscription_id: str, filter_data: dict[str, Any]) -> bool:
        try:
            self.client.update_item(
                TableName=self.table_name, Key={KEY: {"S": connection_id}},
                UpdateExpression="SET subscriptions.#sid = :filter",
                ConditionExpression="attribute_exists(connectionId)",
                ExpressionAttributeNames={"#sid": subscription_id},
                ExpressionAttributeValues={":filter": {"S": json.dumps(filter_data)}},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def remove_subscription(self, connection_id: str, subscription_id: str) -> None:
        try:
            self.client.update_item(
                TableName=self.table_name, Key={KEY: {"S": connection_id}},
                UpdateExpression="REMOVE subscriptions.#sid",
                ConditionExpression="attribute_exists(connectionId)",
                ExpressionAttributeNames={"#sid": subscription_id},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise


def _record(item: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {
        KEY: item[KEY]["S"],
        "principal": json.loads(item.get("principal", {}).get("S") or "{}"),
        "connectedAt": int(item.get("connectedAt", {}).get("N") or 0),
        "subscriptions": {sid: json.loads(value["S"])
                          for sid, value in item.get("subscriptions", {}).get("M", {}).items()},
    }
    if TTL_ATTRIBUTE in item:
        record[TTL_ATTRIBUTE] = int(item[TTL_ATTRIBUTE]["N"])
    return record
