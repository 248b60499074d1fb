"""Fixtures for the API suite: the Chalice app over injected services, with the memory or the DynamoDB
repository (moto, a table per test), the embedded metric store in a temp dir, a synchronous local bus whose
events are recorded, and the local downlink whose messages the tests read.

Test modules import ``api_fixture``; pytest then offers it as ``api`` (``aws_mock`` is in tests/conftest.py)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from chalicelib.config import Services, Settings, reset_services, set_services
from chalicelib.core.ports import BusEvent

MAX_BODY_BYTES = 512 * 1024
_tables = itertools.count(1)


@dataclass
class Api:
    """The app under test plus what it sent: bus events and downlinks."""

    services: Services
    http: Any
    events: list[BusEvent] = field(default_factory=list)

    @property
    def sent(self) -> list[Any]:
        return list(self.services.downlink.sent)  # type: ignore[attr-defined]

    def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
             headers: dict[str, str] | None = None, **query: Any) -> tuple[int, Any, dict[str, str]]:
        if query:
            path += "?" + urlencode(query, doseq=True)
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        sent_headers = {"Content-Type": "application/json", **(headers or {})}
        response = self.http.request(method, path, headers=sent_headers, body=data)
        text = response.body.decode() if response.body else ""
        return response.status_code, json.loads(text) if text else None, dict(response.headers)

    def ok(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        status, data, _ = self.call(method, path, body, **query)
        assert status == 200, (status, data)
        return data


def make_services(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Services:
    from chalicelib.adapters.bus_local import LocalEventBus
    from chalicelib.adapters.downlink_local import LocalDownlink
    from chalicelib.adapters.metrics_embedded import EmbeddedMetricStore

    repository: Any
    if kind == "memory":
        from chalicelib.adapters.repository_memory import MemoryRepository

        repository = MemoryRepository(tmp_path / "store", dump_interval_s=0)
    else:
        from chalicelib.adapters.repository_dynamodb import DynamoDBRepository

        request.getfixturevalue("aws_mock")
        repository = DynamoDBRepository(f"mc-api-{next(_tables)}", write_concurrency=2)
        repository.create_table()
    settings = Settings(storage=kind, data_dir=tmp_path, max_body_bytes=MAX_BODY_BYTES, metrics="embedded")
    return Services(settings=settings, repository=repository,
                    metrics=EmbeddedMetricStore(tmp_path / "metrics.sqlite3"),
                    bus=LocalEventBus("sync"), downlink=LocalDownlink())


@pytest.fixture(params=["memory", "dynamodb"], name="api")
def api_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    from chalice.test import Client

    from app import app

    services = make_services(request.param, tmp_path, request)
    set_services(services)
    with Client(app) as client:
        harness = Api(services, client.http)
        services.bus.subscribe("api-tests", {"source": ["mycontroller"]}, harness.events.append)
        try:
            yield harness
        finally:
            reset_services(close=True)
