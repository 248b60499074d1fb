"""The integration tests' marks and the real services they share.

Every test collected under this folder is marked ``integration`` here, so that a new file cannot forget it
(``pytest -m "not integration"`` runs the rest). The services are private processes on free loopback ports with
their data under the test's tmp dir; a missing binary skips the test with the reason on a developer's machine and
fails it under CI (``services.unavailable``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.integration.services import require_binary, start_mosquitto, start_victoria_metrics

if TYPE_CHECKING:  # imported by the fixtures that use them: a conftest every integration test loads stays light
    from tests.integration.api_helpers import Api
    from tests.integration.edge_helpers import Broker

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every item of this folder ``integration`` (the hook sees the whole session: only ours are touched)."""
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A private anonymous mosquitto without persistence: ``(host, port)``."""
    require_binary("mosquitto", "/usr/sbin/mosquitto")
    host, port, stop = start_mosquitto(tmp_path)
    try:
        yield host, port
    finally:
        stop()


@pytest.fixture
def make_broker(tmp_path: Path) -> Iterator[Callable[..., Broker]]:
    """Makes (and starts, unless ``start=False``) restartable mosquittos under ``tmp_path / name``; all of them are
    stopped after the test. Arguments as ``edge_helpers.Broker``."""
    from tests.integration.edge_helpers import Broker

    require_binary("mosquitto", "/usr/sbin/mosquitto")
    brokers: list[Broker] = []

    def make(name: str = "mosquitto", *, persistent: bool = True, acl: str | None = None,
             listener: list[str] | None = None, start: bool = True) -> Broker:
        broker = Broker(tmp_path / name, persistent=persistent, acl=acl, listener=listener)
        brokers.append(broker)
        if start:
            broker.start()
        return broker

    try:
        yield make
    finally:
        for broker in brokers:
            broker.stop()


@pytest.fixture
def broker(make_broker: Callable[..., Broker]) -> Broker:
    """A started mosquitto that keeps its sessions and queued messages across its own restarts."""
    return make_broker("mosquitto")


@pytest.fixture
def volatile_broker(make_broker: Callable[..., Broker]) -> Broker:
    """A started mosquitto without persistence: a restart forgets every session and subscription."""
    return make_broker("volatile", persistent=False)


@pytest.fixture
def certificates(tmp_path: Path) -> dict[str, Path]:
    """A throw-away CA with a server (localhost/127.0.0.1) and a client certificate, made by the openssl CLI."""
    from tests.integration.edge_helpers import make_certificates

    require_binary("openssl")
    return make_certificates(tmp_path / "certs")


@pytest.fixture(scope="module")
def victoria_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A single-node VictoriaMetrics for the module: its base URL (tests keep apart by their own series)."""
    require_binary("victoria-metrics", "/usr/bin/victoria-metrics")
    url, stop = start_victoria_metrics(Path(tmp_path_factory.mktemp("vm")))
    try:
        yield url
    finally:
        stop()


@pytest.fixture(params=["memory", "sqlite", "dynamodb"], name="api")
def api_fixture(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    """The API over a container of its own, logged in as ``admin``; once with the memory repository, once with
    SQLite (the local stack's default), once with DynamoDB (moto). Bus events and downlinks are recorded
    (``api.events``, ``api.sent``)."""
    from chalice.test import Client

    from chalicelib.api import build_api
    from tests.integration.api_helpers import Api, fast_auth, make_container

    fast_auth(monkeypatch)
    container = make_container(request.param, tmp_path, request)
    with Client(build_api(container)) as client:
        harness = Api(container, client.http)
        harness.login()
        container.bus.subscribe("api-tests", {"source": ["mycontroller"]}, harness.events.append)
        try:
            yield harness
        finally:
            container.close()
