"""API Gateway's websocket events (``$connect``, ``$default``, ``$disconnect``) → the websocket service.

The service answers through its notifier (``post_to_connection``); these bodies only translate the event and point
the notifier at the API the event came through.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from typing import Any

from ..services.websocket import WebsocketService


def endpoint_from_event(event: Mapping[str, Any], region: str) -> str | None:
    """The management endpoint (``post_to_connection``) of the API a websocket event came through."""
    context = event.get("requestContext") or {}
    api_id, stage = context.get("apiId"), context.get("stage")
    if not api_id or not stage:
        return None
    suffix = ".amazonaws.com.cn" if region.startswith("cn-") else ".amazonaws.com"
    return f"https://{api_id}.execute-api.{region}{suffix}/{stage}"


def _configure(service: WebsocketService, event: Mapping[str, Any]) -> None:
    """Point an API Gateway notifier at the API this event came from (unless ``WEBSOCKET_ENDPOINT`` did)."""
    configure = getattr(service.notifier, "configure", None)
    if configure is None:
        return
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    endpoint = endpoint_from_event(event, region)
    if endpoint:
        configure(endpoint)


def _headers(event: Mapping[str, Any]) -> dict[str, Any]:
    headers = dict(event.get("headers") or {})
    for name, values in (event.get("multiValueHeaders") or {}).items():
        if name not in headers and values:
            headers[name] = values[0]
    return headers


def handle_connect_event(service: WebsocketService, event: Mapping[str, Any]) -> dict[str, Any]:
    """``$connect``: 200 lets API Gateway open the socket; 401 refuses it."""
    _configure(service, event)
    connection_id = str((event.get("requestContext") or {}).get("connectionId") or "")
    if not connection_id:
        return {"statusCode": 400}
    record = service.connect(connection_id, query=event.get("queryStringParameters") or {}, headers=_headers(event))
    return {"statusCode": 200} if record is not None else {"statusCode": 401}


def handle_message_event(service: WebsocketService, event: Mapping[str, Any]) -> dict[str, Any]:
    _configure(service, event)
    connection_id = str((event.get("requestContext") or {}).get("connectionId") or "")
    body = event.get("body")
    if isinstance(body, str) and event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(body).decode("utf-8")
        except ValueError:
            body = "\x00"
    service.message(connection_id, body if isinstance(body, str | bytes) else None)
    return {"statusCode": 200}


def handle_disconnect_event(service: WebsocketService, event: Mapping[str, Any]) -> dict[str, Any]:
    _configure(service, event)
    connection_id = str((event.get("requestContext") or {}).get("connectionId") or "")
    if connection_id:
        service.disconnect(connection_id)
    return {"statusCode": 200}
