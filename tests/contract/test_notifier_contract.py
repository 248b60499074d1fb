"""The websocket notifier contract, for the local front's notifier and API Gateway's management API (moto).

``post`` reaches an open connection; ``close`` ends that connection and no other (the websocket service calls it
when a session was revoked); closing a connection that is gone, or was never there, is not an error. Locally a
post to a closed connection raises ``Gone`` and the client gets the close code and reason; API Gateway's
``delete_connection`` carries neither (moto's management API accepts posts to any id, so that part is local only).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from chalicelib.core.ports import Gone, Notifier
from tests.contract.conftest import AWS, REGION


@dataclass
class LocalSink:
    sent: list[bytes] = field(default_factory=list)
    closed: tuple[int, str] | None = None

    def offer(self, data: bytes) -> bool:
        self.sent.append(data)
        return True

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


@dataclass
class NotifierHarness:
    notifier: Notifier
    open: Callable[[str], None]
    """Makes a connection exist (a client connected)."""
    received: Callable[[str], list[bytes]]
    alive: Callable[[str], bool]
    local: bool


def _local() -> NotifierHarness:
    from chalicelib.adapters.notifier_local import LocalNotifier

    notifier = LocalNotifier()
    sinks: dict[str, LocalSink] = {}

    def open_(connection_id: str) -> None:
        sinks[connection_id] = LocalSink()
        notifier.register(connection_id, sinks[connection_id])

    return NotifierHarness(notifier, open_, lambda c: list(sinks[c].sent),
                           lambda c: c in sinks and sinks[c].closed is None, local=True)


def _apigw() -> NotifierHarness:
    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    from chalicelib.adapters.notifier_apigw import ApiGatewayNotifier

    notifier = ApiGatewayNotifier(f"https://abc123.execute-api.{REGION}.amazonaws.com/api", REGION)
    backend: Any = apigatewaymanagementapi_backends[DEFAULT_ACCOUNT_ID][REGION]

    def received(connection_id: str) -> list[bytes]:
        connection = backend.connections.get(connection_id)
        return [connection.data] if connection is not None and connection.data else []

    def open_(connection_id: str) -> None:
        backend.connections.setdefault(connection_id, backend.connections.default_factory())

    return NotifierHarness(notifier, open_, received, lambda c: c in backend.connections, local=False)


@pytest.fixture(params=["local", pytest.param("apigw", marks=AWS)])
def harness(request: pytest.FixtureRequest) -> Iterator[NotifierHarness]:
    if request.param == "apigw":
        request.getfixturevalue("aws_mock")
        yield _apigw()
    else:
        yield _local()


def test_a_post_reaches_the_open_connection(harness: NotifierHarness) -> None:
    harness.open("c1")
    harness.notifier.post("c1", b'{"type":"pong"}')
    assert b"".join(harness.received("c1")) == b'{"type":"pong"}'


def test_close_ends_that_connection_and_no_other(harness: NotifierHarness) -> None:
    for connection_id in ("c1", "c2"):
        harness.open(connection_id)
        harness.notifier.post(connection_id, b"{}")
    harness.notifier.close("c1", 4401, "session ended: logged out")
    assert not harness.alive("c1") and harness.alive("c2")
    harness.notifier.post("c2", b"{}")
    if harness.local:
        with pytest.raises(Gone):
            harness.notifier.post("c1", b"{}")


def test_closing_what_is_gone_or_never_was_is_not_an_error(harness: NotifierHarness) -> None:
    harness.open("c1")
    harness.notifier.post("c1", b"{}")
    harness.notifier.close("c1", 4401, "session ended")
    harness.notifier.close("c1", 4401, "session ended")
    harness.notifier.close("never-there", 4401, "session ended")
    assert not harness.alive("c1")
