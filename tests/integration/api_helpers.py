"""Helpers of the API suite: the API's Chalice app over a container of its own, with the memory, the SQLite (the
local stack's default) or the DynamoDB repository (moto, a table per test), the embedded metric store in a temp
dir, a synchronous local bus whose events are recorded, and the local downlink whose messages the tests read.

The ``api`` fixture (``tests/integration/conftest.py``) builds one for each repository (``aws_mock`` is in
tests/conftest.py).

Every call carries the token of a login as ``admin`` (whose password the fixture sets through
``MC_ADMIN_PASSWORD``) unless it says ``auth=False``, or ``auth="<token>"`` for another token. bcrypt runs at its
lowest cost here, so logins stay fast."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from chalicelib.bootstrap import Container
from chalicelib.core.automation.clock import Location
from chalicelib.core.ports import BusEvent
from chalicelib.settings import Settings

MAX_BODY_BYTES = 512 * 1024
ADMIN_PASSWORD = "Harbor-Lantern-2048"
_tables = itertools.count(1)


@dataclass
class Api:
    """The app under test plus what it sent: bus events and downlinks."""

    container: Container
    http: Any
    events: list[BusEvent] = field(default_factory=list)
    token: str | None = None
    """The default token every call carries (set by ``login``)."""

    @property
    def sent(self) -> list[Any]:
        return list(self.container.downlink.sent)  # type: ignore[attr-defined]

    def use(self, settings: Settings | None = None, *, rebuilt: tuple[str, ...] = (), **parts: Any) -> None:
        """Carry on with a container that has these settings and parts in place of the current ones, and the parts
        named in ``rebuilt`` built as a process builds them (the other adapters, the data and the login are kept)."""
        from chalice.test import Client

        from chalicelib.api import build_api

        self.container = self.container.with_parts(settings, rebuilt=rebuilt, **parts)
        self.http = Client(build_api(self.container)).http

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
        try:
            data = json.loads(text) if text else None
        except ValueError:  # a text answer (MyController v2's logout)
            data = text
        return response.status_code, data, dict(response.headers)

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


def make_container(kind: str, tmp_path: Path, request: pytest.FixtureRequest, *,
                   fallback_location: Location | None = None, built: tuple[str, ...] = (), **parts: Any) -> Container:
    """A container over the memory, a SQLite or a DynamoDB (moto) repository, embedded metrics, a synchronous local
    bus and the local downlink; no schedule registry, handler queue or shadow unless given in ``parts`` or named in
    ``built`` (the container builds those from the settings, as a process does)."""
    from chalicelib.adapters.bus_local import LocalEventBus
    from chalicelib.adapters.downlink_local import LocalDownlink
    from chalicelib.adapters.metrics_embedded import EmbeddedMetricStore

    repository: Any
    if kind == "memory":
        from chalicelib.adapters.repository_memory import MemoryRepository

        repository = MemoryRepository(tmp_path / "store", dump_interval_s=0)
    elif kind == "sqlite":
        from chalicelib.adapters.repository_sqlite import FILE_NAME, SqliteRepository

        repository = SqliteRepository(tmp_path / FILE_NAME)
    else:
        from chalicelib.adapters.repository_dynamodb import DynamoDBRepository

        request.getfixturevalue("aws_mock")
        repository = DynamoDBRepository(f"mc-api-{next(_tables)}", write_concurrency=2)
        repository.create_table()
    settings = Settings(storage=kind, data_dir=tmp_path, max_body_bytes=MAX_BODY_BYTES, metrics="embedded")
    defaults: dict[str, Any] = {name: None for name in ("schedules", "handler_queue", "shadow") if name not in built}
    return Container(settings, fallback_location=fallback_location, repository=repository,
                     metrics=EmbeddedMetricStore(tmp_path / "metrics.sqlite3"),
                     bus=LocalEventBus("sync"), downlink=LocalDownlink(), **{**defaults, **parts})


def fast_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    """The admin password the first start uses, and bcrypt at its lowest cost (tests only)."""
    import chalicelib.core.auth as core_auth

    monkeypatch.setenv("MC_ADMIN_PASSWORD", ADMIN_PASSWORD)
    monkeypatch.setattr(core_auth, "BCRYPT_ROUNDS", 4)
    monkeypatch.setattr(core_auth, "_dummy_hash", None)
