"""A handler that calls beyond its role: run in the twin's worker by ``test_twin``'s role test."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import ClientError


def _try(call: Any) -> str:
    try:
        call()
    except ClientError as error:
        return f"{error.response['Error']['Code']}: {error.response['Error']['Message']}"
    return "allowed"


def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    dynamodb = boto3.client("dynamodb")
    ssm = boto3.client("ssm")
    return {"get": _try(lambda: dynamodb.get_item(TableName=event["table"], Key=event["key"])),
            "delete": _try(lambda: dynamodb.delete_table(TableName=event["table"])),
            "ssm": _try(lambda: ssm.get_parameter(Name="/mycontroller/jwt-secret", WithDecryption=True))}
