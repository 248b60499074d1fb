"""Revocation ends sessions, websockets included: logout, a password change, a role change, deleting the user or
the service token close that principal's open websockets (at once through the bus's ``session.revoked``, else at
the next periodic re-check) and nobody else's; the same in the AWS shape (connections in DynamoDB, the management
API's ``delete_connection``, the notify function fed by the revocation event)."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest

from chalicelib.adapters.notifier_local import LocalNotifier
from chalicelib.core.model import Kind
from chalicelib.services.auth import REVOCATION_SOURCE
from chalicelib.services.websocket import CLOSE_SESSION_ENDED, NOTIFY_PATTERN, WebsocketService
from tests.integration.api_helpers import Api

pytestmark = pytest.mark.integration
memory_only = pytest.mark.parametrize("api", ["memory"], indirect=True)

PASSWORD = "Juniper-Cascade-11"


class Sink:
    """A socket of the local front, as the notifier sees it."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed: tuple[int, str] | None = None
        self.closed_event = threading.Event()

    def offer(self, data: bytes) -> bool:
        self.sent.append(data)
        return self.closed is None

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)
        self.closed_event.set()


class Sockets:
    """The container's websocket service over the local notifier, subscribed to the (synchronous) bus as the
    local stack subscribes it."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.notifier = api.container.local_notifier()
        self.service: WebsocketService = api.container.websocket
        api.container.bus.subscribe("websocket-notify", NOTIFY_PATTERN, self.service.on_event)

    def open(self, token: str) -> Sink:
        connection_id = uuid.uuid4().hex
        sink = Sink()
        self.notifier.register(connection_id, sink)
        assert self.service.connect(connection_id, query={"access_token": token}) is not None
        return sink


def user(api: Api, name: str = "olga", role: str = "user") -> str:
    api.ok("POST", "/api/user", {"username": name, "password": PASSWORD, "role": role})
    return api.login(name, PASSWORD)


def ended(sink: Sink) -> bool:
    return sink.closed is not None and sink.closed[0] == CLOSE_SESSION_ENDED


@memory_only
def test_logout_closes_that_sessions_websocket_and_no_other(api: Api) -> None:
    sockets = Sockets(api)
    token = api.login()
    mine, other_session = sockets.open(token), sockets.open(str(api.token))
    assert api.ok("POST", "/api/user/logout", auth=token)["revoked"] is True
    assert ended(mine) and mine.closed is not None and "logged out" in mine.closed[1]
    assert other_session.closed is None
    assert len(sockets.service.store.list_all()) == 1


@memory_only
@pytest.mark.parametrize("change", ["password", "role", "delete user", "profile password"])
def test_a_password_or_role_change_or_deletion_closes_every_socket_of_the_user(api: Api, change: str) -> None:
    sockets = Sockets(api)
    olga = user(api)
    script = api.ok("POST", "/api/servicetoken", {"name": "s", "neverExpire": True}, auth=olga)["token"]
    first, second, by_token = sockets.open(olga), sockets.open(api.login("olga", PASSWORD)), sockets.open(script)
    admins = sockets.open(str(api.token))
    if change == "password":
        api.ok("POST", "/api/user", {"id": "olga", "username": "olga", "password": "Another-Cascade-12"})
    elif change == "profile password":
        api.ok("POST", "/api/user/profile", {"password": "Another-Cascade-12", "currentPassword": PASSWORD}, auth=olga)
    elif change == "role":
        api.ok("POST", "/api/user", {"id": "olga", "username": "olga", "role": "viewer"})
    else:
        api.ok("DELETE", "/api/user", ["olga"])
    assert ended(first) and ended(second)
    # a service token survives a password change (delete it to end it), not a role change or its user's deletion
    assert ended(by_token) == (change in ("role", "delete user"))
    assert admins.closed is None


@memory_only
def test_deleting_a_service_token_closes_its_sockets(api: Api) -> None:
    sockets = Sockets(api)
    made = api.ok("POST", "/api/servicetoken", {"name": "s", "neverExpire": True})
    kept = api.ok("POST", "/api/servicetoken", {"name": "t", "neverExpire": True})
    gone, stays = sockets.open(made["token"]), sockets.open(kept["token"])
    api.ok("DELETE", "/api/servicetoken", [made["id"]])
    assert ended(gone) and stays.closed is None


@memory_only
def test_a_revocation_the_bus_never_announced_is_caught_by_the_periodic_recheck(api: Api) -> None:
    sockets = Sockets(api)
    now = [1000.0]
    sockets.service.monotonic = lambda: now[0]
    olga = user(api)
    sink = sockets.open(olga)
    stored = api.container.repository.get(Kind.USER, "olga")
    api.container.repository.put(Kind.USER, {**stored, "sessionEpoch": 7})  # another process revoked them
    sockets.service.notify([])  # the first check runs
    assert ended(sink)
    again = sockets.open(api.login("olga", PASSWORD))
    api.container.repository.put(Kind.USER, {**api.container.repository.get(Kind.USER, "olga"), "sessionEpoch": 8})
    sockets.service.notify([])
    assert again.closed is None  # checked less than revalidate_s ago
    now[0] += sockets.service.revalidate_s
    sockets.service.notify([])
    assert ended(again)


@memory_only
def test_the_local_sweeper_closes_a_revoked_socket_without_any_event(api: Api) -> None:
    sockets = Sockets(api)
    sockets.service.revalidate_s = 0.2
    assert sockets.service.sweep  # the container's local websocket service sweeps
    olga = user(api)
    sink = sockets.open(olga)
    stored = api.container.repository.get(Kind.USER, "olga")
    started = time.monotonic()
    api.container.repository.put(Kind.USER, {**stored, "role": "viewer"})  # changed behind the API's back
    assert sink.closed_event.wait(5)
    assert ended(sink) and time.monotonic() - started < 5
    assert sink.closed is not None and "role changed" in sink.closed[1]


@memory_only
def test_an_expired_token_closes_its_socket(api: Api) -> None:
    sockets = Sockets(api)
    sink = sockets.open(str(api.token))
    connection = sockets.service.store.list_all()[0]
    problems = api.container.auth.session_problems([connection["principal"]], now_s=connection["principal"]["exp"])
    assert problems == ["token expired"]
    assert sink.closed is None


@memory_only
def test_the_revocation_event_is_not_a_domain_event_and_never_goes_out(api: Api) -> None:
    api.events.clear()
    token = api.login()
    revocations: list[Any] = []
    api.container.bus.subscribe("revocations", {"source": [REVOCATION_SOURCE]}, revocations.append)
    api.ok("POST", "/api/user/logout", auth=token)
    assert api.events == []  # tasks and the domain subscribers see nothing
    [event] = revocations
    assert event.detail_type == "session.revoked" and event.detail["userId"] == "admin"
    assert token not in str(event.detail)
    service = WebsocketService(api.container.connections, LocalNotifier(), authenticate=lambda _t: None)
    assert service.notify([event.detail]).posted == 0


# --------------------------------------------------------------------------------------------- the AWS shape


@pytest.mark.parametrize("api", ["dynamodb"], indirect=True)
def test_in_aws_the_notify_function_deletes_the_revoked_connection(api: Api, aws_mock: None) -> None:
    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    from chalicelib.adapters.connections_dynamodb import DynamoDBConnectionStore
    from chalicelib.adapters.notifier_apigw import ApiGatewayNotifier
    from chalicelib.functions.entries import LambdaEntries

    store = DynamoDBConnectionStore(f"connections-{uuid.uuid4().hex[:8]}", "us-east-1")
    store.create_table()
    notifier = ApiGatewayNotifier("https://abc123.execute-api.us-east-1.amazonaws.com/api", "us-east-1")
    api.use(connections=store, notifier=notifier)
    revocations: list[Any] = []
    api.container.bus.subscribe("revocations", {"source": [REVOCATION_SOURCE]}, revocations.append)
    entries = LambdaEntries(api.container)
    backend = apigatewaymanagementapi_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    token = api.login()
    for connection_id, carried in (("Conn1", token), ("Conn2", str(api.token))):
        assert api.container.websocket.connect(connection_id, query={"access_token": carried})
        notifier.post(connection_id, b"{}")
    assert {"Conn1", "Conn2"} <= set(backend.connections)
    api.ok("POST", "/api/user/logout", auth=token)
    [event] = revocations
    rule_event = {"version": "0", "id": str(uuid.uuid4()), "source": event.source,
                  "detail-type": event.detail_type, "detail": event.detail}
    entries.websocket_notify(rule_event)  # what the EventBridge rule hands the notify function
    assert "Conn1" not in backend.connections and "Conn2" in backend.connections
    assert [c["connectionId"] for c in store.list_all()] == ["Conn2"]
