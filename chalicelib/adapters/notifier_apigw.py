"""``Notifier`` over API Gateway websockets: ``post_to_connection`` on the management API; 410 → ``Gone``;
``close`` is ``delete_connection`` (API Gateway closes the socket; it cannot carry a code or reason).

The management endpoint is ``https://<api id>.execute-api.<region>.amazonaws.com/<stage>``. The websocket
handlers learn it from their event (``configure``, see ``websocket.endpoint_from_event``); the EventBridge-fed
notify function needs it from ``WEBSOCKET_ENDPOINT`` (``infra/template.py`` sets it on that function).
"""

from __future__ import annotations

import threading
from typing import Any

import boto3

from chalicelib.core.ports import Gone


class ApiGatewayNotifier:
    def __init__(self, endpoint: str | None = None, region: str | None = None, client: Any = None) -> None:
        self.endpoint = endpoint
        self.region = region
        self._client = client
        self._lock = threading.Lock()

    def configure(self, endpoint: str) -> None:
        """Use this endpoint unless one is set already (as Chalice's ``WebsocketAPI.configure`` does)."""
        with self._lock:
            if self.endpoint is None:
                self.endpoint = endpoint

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                if not self.endpoint:
                    raise RuntimeError("no websocket management endpoint: set WEBSOCKET_ENDPOINT")
                self._client = boto3.client("apigatewaymanagementapi", region_name=self.region,
                                            endpoint_url=self.endpoint)
            return self._client

    def post(self, connection_id: str, data: bytes) -> None:
        client = self.client
        try:
            client.post_to_connection(ConnectionId=connection_id, Data=data)
        except client.exceptions.GoneException:
            raise Gone(connection_id) from None

    def close(self, connection_id: str, code: int, reason: str) -> None:
        client = self.client
        try:
            client.delete_connection(ConnectionId=connection_id)
        except client.exceptions.GoneException:
            return
