"""The websocket API as API Gateway runs it: the Lambda entries (``LambdaEntries``, what ``app.py`` hands over) with
API Gateway's websocket events, connections in DynamoDB and pushes through the management API (both moto).

moto's management API never answers 410 (posting to an unknown connection creates it), so the gone-connection
flow uses a notifier that raises ``Gone`` for one connection and posts the rest through moto; the adapter's own
410 → ``Gone`` mapping is checked with botocore's Stubber on the real client."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import Stubber

from chalicelib.adapters.connections_dynamodb import DynamoDBConnectionStore
from chalicelib.adapters.notifier_apigw import ApiGatewayNotifier
from chalicelib.bootstrap import Container
from chalicelib.core.model import FieldModel, Kind, event
from chalicelib.core.ports import Gone, bus_event
from chalicelib.functions.entries import LambdaEntries
from chalicelib.services.websocket import WebsocketService
from chalicelib.settings import Settings

API_ID, STAGE, REGION = "abc123", "api", "us-east-1"
ENDPOINT = f"https://{API_ID}.execute-api.{REGION}.amazonaws.com/{STAGE}"
TOKENS = {"good-token": {"sub": "u1", "username": "admin", "exp": 4_000_000_000}}


class Notifier:
    """Posts through the real adapter (moto), except to connections marked gone: those raise ``Gone`` as the
    adapter does on a 410."""

    def __init__(self, inner: ApiGatewayNotifier) -> None:
        self.inner = inner
        self.gone: set[str] = set()

    def configure(self, endpoint: str) -> None:
        self.inner.configure(endpoint)

    def post(self, connection_id: str, data: bytes) -> None:
        if connection_id in self.gone:
            raise Gone(connection_id)
        self.inner.post(connection_id, data)


class Aws:
    def __init__(self, entries: LambdaEntries, service: WebsocketService, notifier: Notifier,
                 store: DynamoDBConnectionStore) -> None:
        self.entries = entries
        self.service = service
        self.notifier = notifier
        self.store = store

    def invoke(self, name: str, route: str, connection_id: str, **extra: Any) -> Any:
        request = {"routeKey": route, "connectionId": connection_id, "apiId": API_ID, "stage": STAGE,
                   "domainName": f"{API_ID}.execute-api.{REGION}.amazonaws.com",
                   "eventType": {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE")}
        entry = getattr(self.entries, name)
        return entry({"requestContext": request, "isBase64Encoded": False, **extra})

    def connect(self, connection_id: str, token: str | None = "good-token", headers: dict[str, str] | None = None
                ) -> Any:
        query = {"access_token": token} if token else None
        return self.invoke("websocket_connect", "$connect", connection_id, queryStringParameters=query,
                           headers={"Host": "example", **(headers or {})})

    def send(self, connection_id: str, message: Any) -> Any:
        body = message if isinstance(message, str) else json.dumps(message)
        return self.invoke("websocket_message", "$default", connection_id, body=body)

    def publish_field(self, field_id: str, value: float) -> Any:
        gateway, node, source, key = field_id.split(".")
        record = FieldModel(gateway_id=gateway, node_id=node, source_id=source, field_id=key).record()
        record["current"] = {"value": value}
        published = bus_event(event("updated", Kind.FIELD, record))
        rule_event = {"version": "0", "id": str(uuid.uuid4()), "source": published.source,
                      "detail-type": published.detail_type, "detail": published.detail}
        return self.entries.websocket_notify(rule_event)


def received(connection_id: str) -> list[dict[str, Any]]:
    """What moto's management API holds for a connection (posts are concatenated)."""
    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    backend = apigatewaymanagementapi_backends[DEFAULT_ACCOUNT_ID][REGION]
    if connection_id not in backend.connections:
        return []
    text = backend.connections[connection_id].data.decode()
    decoder, messages, at = json.JSONDecoder(), [], 0
    while at < len(text):
        message, at = decoder.raw_decode(text, at)
        messages.append(message)
    return messages


@pytest.fixture
def aws(aws_mock: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    store = DynamoDBConnectionStore(f"connections-{uuid.uuid4().hex[:8]}", REGION)
    store.create_table()
    notifier = Notifier(ApiGatewayNotifier(None, REGION))
    service = WebsocketService(store, notifier, authenticate=TOKENS.get, index_ttl_s=1.0)
    yield Aws(LambdaEntries(Container(Settings(), websocket=service)), service, notifier, store)


def test_connect_needs_a_token_that_names_someone(aws: Aws) -> None:
    assert aws.connect("c-none", token=None) == {"statusCode": 401}
    assert aws.connect("c-forged", token="forged") == {"statusCode": 401}
    assert aws.store.list_all() == []
    assert aws.connect("c-ok") == {"statusCode": 200}
    assert aws.connect("c-cookie", token=None, headers={"Cookie": "mc_access_token=good-token"}) == {"statusCode": 200}
    stored = aws.store.get("c-ok")
    assert stored is not None and stored["principal"] == {"sub": "u1", "username": "admin", "exp": 4_000_000_000}
    assert "good-token" not in json.dumps(aws.store.list_all())
    assert aws.notifier.inner.endpoint == ENDPOINT


def test_a_client_subscribed_to_one_quick_id_receives_nothing_else(aws: Aws) -> None:
    assert aws.connect("c-one") == {"statusCode": 200}
    assert aws.connect("c-node") == {"statusCode": 200}
    aws.send("c-one", {"type": "subscribe", "id": "t", "filter": {"quickIds": ["field:gw.1.1.V_TEMP"]}})
    aws.send("c-node", {"type": "subscribe", "id": "n", "filter": {"quickIds": ["node:gw.1"]}})
    assert received("c-one") == [{"type": "subscribed", "id": "t"}]

    assert aws.publish_field("gw.1.1.V_TEMP", 21.5) == {"posted": 2, "gone": [], "failed": 0}
    assert aws.publish_field("gw.1.1.V_HUM", 40) == {"posted": 1, "gone": [], "failed": 0}
    assert aws.publish_field("gw.2.1.V_TEMP", 18) == {"posted": 0, "gone": [], "failed": 0}

    one = received("c-one")[1:]
    assert [(m["type"], m["subscriptions"], m["data"]["entityQuickId"]) for m in one] == [
        ("event", ["t"], "field:gw.1.1.V_TEMP")]
    assert one[0]["data"]["type"] == "updated" and one[0]["data"]["entity"]["current"]["value"] == 21.5
    node = received("c-node")[1:]
    assert [m["data"]["entityId"] for m in node] == ["gw.1.1.V_TEMP", "gw.1.1.V_HUM"]


def test_a_gone_connection_is_removed(aws: Aws) -> None:
    for connection_id in ("c-alive", "c-gone"):
        assert aws.connect(connection_id) == {"statusCode": 200}
        aws.send(connection_id, {"type": "subscribe", "id": "all", "filter": {"entityTypes": ["field"]}})
    aws.notifier.gone.add("c-gone")
    result = aws.publish_field("gw.9.1.V_TEMP", 1)
    assert result["gone"] == ["c-gone"] and result["posted"] >= 1
    assert aws.store.get("c-gone") is None
    assert aws.store.get("c-alive") is not None
    assert aws.publish_field("gw.9.1.V_TEMP", 2)["gone"] == []
    assert [m["data"]["entity"]["current"]["value"] for m in received("c-alive") if m["type"] == "event"][-2:] == [1, 2]


def test_bad_messages_get_an_error_and_the_connection_stays(aws: Aws) -> None:
    assert aws.connect("c-bad") == {"statusCode": 200}
    for body in ("{nope", '{"type":"subscribe","id":"x","filter":{"quickIds":["gw.1"]}}', '{"type":"shout"}'):
        assert aws.send("c-bad", body) == {"statusCode": 200}
    aws.send("c-bad", {"type": "ping"})
    replies = received("c-bad")
    assert [r["type"] for r in replies] == ["error", "error", "error", "pong"]
    assert replies[1]["id"] == "x" and "quickIds" in replies[1]["message"]
    assert aws.store.get("c-bad") is not None


def test_disconnect_forgets_the_connection(aws: Aws) -> None:
    assert aws.connect("c-bye") == {"statusCode": 200}
    aws.send("c-bye", {"type": "subscribe", "id": "all", "filter": {}})
    assert aws.invoke("websocket_disconnect", "$disconnect", "c-bye") == {"statusCode": 200}
    assert aws.store.get("c-bye") is None
    before = len(received("c-bye"))
    aws.publish_field("gw.1.1.V_TEMP", 3)
    assert len(received("c-bye")) == before


def test_a_subscription_never_recreates_a_connection_gone_meanwhile(aws: Aws) -> None:
    assert aws.store.set_subscription("c-never", "s", {}) is False
    assert aws.store.get("c-never") is None
    aws.send("c-never", {"type": "subscribe", "id": "s", "filter": {}})
    assert received("c-never")[-1]["type"] == "error"
    assert aws.store.get("c-never") is None


def test_the_notify_function_survives_a_bad_event(aws: Aws) -> None:
    assert aws.entries.websocket_notify({"detail": "not an object"})["posted"] == 0
    assert aws.entries.websocket_notify({})["failed"] == 0


def test_the_adapter_turns_410_into_gone(aws_mock: None) -> None:
    notifier = ApiGatewayNotifier(ENDPOINT, REGION)
    with Stubber(notifier.client) as stub:
        stub.add_client_error("post_to_connection", service_error_code="GoneException", http_status_code=410)
        stub.add_response("post_to_connection", {}, {"ConnectionId": "c2", "Data": b"hi"})
        with pytest.raises(Gone):
            notifier.post("c1", b"hi")
        notifier.post("c2", b"hi")
        stub.assert_no_pending_responses()
