"""Fixtures for the API suite: the Chalice app over injected services, with the memory or the DynamoDB
repository (moto, a table per test), the embedded metric store in a temp dir, a synchronous local bus whose
events are recorded, and the local downlink whose messages the tests read.

Test modules import ``api_fixture``; pytest then offers it as ``api`` (``aws_mock`` is in tests/conftest.py).

Every call carries the token of a login as ``admin`` (whose password the fixture sets through
``MC_ADMIN_PASSWORD``) unless it says ``auth=False``, or ``auth="<token>"`` for another token. bcrypt runs at its
lowest cost here, so logins stay fast."""

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
ADMIN_PASSWORD = "admin-test-password"
_tables = itertools.count(1)


@dataclass
class Api:
    """The app under test plus what it sent: bus events and downlinks."""

    services: Services
    http: Any
    events: list[BusEvent] = field(default_factory=list)
    token: str | None = None
    """The default token every call carries (set by ``login``)."""

    @property
    def sent(self) -> list[Any]:
        return list(self.services.downlink.sent)  # type: ignore[attr-defined]

    def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
             headers: dict[str, str] | None = None, auth: bool | str = True,
             **query: Any) -> tuple[int, Any, dict[str, str]]:
        """One request; ``auth``: True sends the default token, False none, a string that token."""
        if query:
            path += "?" + urlencode(query, doseq=True)
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        sent_headers = {"Content-Type": "application/json", **(headers or {})}
        token = auth if isinstance(auth, str) else self.token if auth else None
        if token and not any(name.lower() == "authorization" for name in sent_headers):
            sent_headers["Authorization"] = f"Bearer {token}"
        response = self.http.request(method, path, headers=sent_headers, body=data)
        text = response.body.decode() if response.body else ""
        return response.status_code, json.loads(text) if text else None, dict(response.headers)

    def ok(self, method: str, path: str, body: Any = None, *, auth: bool | str = True, **query: Any) -> Any:
        status, data, _ = self.call(method, path, body, auth=auth, **query)
        assert status == 200, (status, data)
        return data

    def login(self, username: str = "admin", password: str = ADMIN_PASSWORD, **extra: Any) -> str:
        """Log in; the first login becomes the default token. Returns the token."""
        data = self.ok("POST", "/api/user/login", {"username": username, "password": password, **extra}, auth=False)
        token = str(data["token"])
        if self.token is None:
            self.token = token
        return token


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


def fast_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    """The admin password the first start uses, and bcrypt at its lowest cost (tests only)."""
    import chalicelib.core.auth as core_auth

    monkeypatch.setenv("MC_ADMIN_PASSWORD", ADMIN_PASSWORD)
    monkeypatch.setattr(core_auth, "BCRYPT_ROUNDS", 4)
    monkeypatch.setattr(core_auth, "_dummy_hash", None)


@pytest.fixture(params=["memory", "dynamodb"], name="api")
def api_fixture(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    from chalice.test import Client

    from app import app

    fast_auth(monkeypatch)
    services = make_services(request.param, tmp_path, request)
    set_services(services)
    with Client(app) as client:
        harness = Api(services, client.http)
        harness.login()
        services.bus.subscribe("api-tests", {"source": ["mycontroller"]}, harness.events.append)
        try:
            yield harness
        finally:
            reset_services(close=True)
