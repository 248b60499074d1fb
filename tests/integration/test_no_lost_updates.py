"""No lost updates (#16 item 8), as they happened: a user edits labels in the API while a gateway's batch is
applied, the edge reports its state while a batch writes the same gateway, two runs of one task (or one handler)
finish at once. Each test makes the writers meet at the worst moment (after both read, before either writes)
through a repository that pauses there, over the memory and the SQLite repositories; every change must be kept.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chalicelib.core.model import FieldModel, Gateway, Kind, Record, event, iso_from_ms
from chalicelib.core.ports import ListQuery, Repository
from chalicelib.core.processor import Processor
from mycontroller_protocol.envelope import Envelope
from tests.integration.api_helpers import Api, fast_auth

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MINUTE = 60_000


class Meeting:
    """A repository that lets a test step in at the worst moments: ``on_transaction`` runs once at the start of the
    next ``transaction()`` (the processor opens it after its reads, before its writes); writers of ``kinds`` wait
    for each other (``parties``) at their first ``put`` each, so that all of them have read before any writes."""

    def __init__(self, inner: Repository) -> None:
        self.inner = inner
        self.on_transaction: Callable[[], Any] | None = None
        self.kinds: set[Kind] = set()
        self.barrier: threading.Barrier | None = None
        self._waited: set[int] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def transaction(self) -> Any:
        hook, self.on_transaction = self.on_transaction, None
        if hook is not None:
            hook()
        return self.inner.transaction()

    def put(self, kind: Kind, record: Record, **options: Any) -> None:
        me = threading.get_ident()
        if kind in self.kinds and self.barrier is not None and me not in self._waited:
            self._waited.add(me)
            self.barrier.wait(timeout=10)
        self.inner.put(kind, record, **options)


@pytest.fixture(params=["memory", "sqlite"])
def repository(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Meeting]:
    inner: Any
    if request.param == "memory":
        from chalicelib.adapters.repository_memory import MemoryRepository

        inner = MemoryRepository(None, dump_interval_s=0)
    else:
        from chalicelib.adapters.repository_sqlite import SqliteRepository

        inner = SqliteRepository(tmp_path / "repository.sqlite3")
    yield Meeting(inner)
    inner.close()


def mysensors(gateway: str, lines: list[str], at: int, seq: int) -> list[Envelope]:
    return [Envelope(gateway, "mysensors_v2", at + i, seq + i, f"{gateway}-stream-{seq + i}", line)
            for i, line in enumerate(lines)]


PRESENTATION = ["1;255;0;0;17;2.3.2", "1;255;3;0;11;Weather", "1;255;3;0;12;1.0", "1;1;0;0;6;Outside",
                "1;1;1;0;0;21.5"]
"""Node 1 presents itself (sketch version 1.0) with a temperature sensor that reports 21.5."""
LATER = ["1;255;3;0;12;2.0", "1;255;3;0;0;87", "1;1;1;0;0;22.5"]
"""The node's new sketch version (a label), its battery level, a new temperature."""


def test_a_label_edited_in_the_api_while_a_batch_is_applied_keeps_both_changes(
        repository: Meeting, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalice.test import Client

    from chalicelib.adapters.bus_local import LocalEventBus
    from chalicelib.adapters.downlink_local import LocalDownlink
    from chalicelib.adapters.metrics_none import NoMetricStore
    from chalicelib.api import build_api
    from chalicelib.bootstrap import Container
    from chalicelib.settings import Settings

    fast_auth(monkeypatch)
    container = Container(Settings(data_dir=tmp_path), repository=repository, metrics=NoMetricStore(),
                          bus=LocalEventBus("sync"), downlink=LocalDownlink(), schedules=None, handler_queue=None,
                          shadow=None)
    processor = Processor(repository, container.metrics)
    processor.process(mysensors("gw", PRESENTATION, T0, 1))
    with Client(build_api(container)) as client:
        api = Api(container, client.http)
        api.login()

        def user_edits() -> None:
            """The console: read the node and the field, add a label, save (while the batch is between its reads
            and its writes)."""
            node = api.ok("GET", "/api/node/gw.1")
            api.ok("POST", "/api/node", {**node, "labels": {**node["labels"], "room": "attic"}})
            field = api.ok("GET", "/api/field/gw.1.1.V_TEMP")
            api.ok("POST", "/api/field", {**field, "labels": {**field["labels"], "display": "big"}})

        repository.on_transaction = user_edits
        result = processor.process(mysensors("gw", LATER, T0 + 2 * MINUTE, 100))
        assert repository.on_transaction is None, "the batch did not store anything"

        node = api.ok("GET", "/api/node/gw.1")
        assert node["labels"]["room"] == "attic"  # the user's
        assert node["labels"]["version"] == "2.0" and node["others"]["battery_level"] == 87  # the device's
        field = api.ok("GET", "/api/field/gw.1.1.V_TEMP")
        assert field["labels"]["display"] == "big" and field["current"]["value"] == 22.5
        announced = {e.entity_id: e.entity for e in result.events}
        assert announced["gw.1"] is not None and announced["gw.1"]["labels"]["room"] == "attic"
        assert announced["gw.1.1.V_TEMP"] is not None and announced["gw.1.1.V_TEMP"]["labels"]["display"] == "big"
    container.close()


def test_the_edges_report_and_a_batch_on_one_gateway_keep_both(repository: Meeting) -> None:
    from chalicelib.adapters.bus_local import LocalEventBus
    from chalicelib.adapters.metrics_none import NoMetricStore
    from chalicelib.services.gateway_sync import GatewaySync

    repository.put(Kind.GATEWAY, Gateway(id="gw", provider={"type": "mysensors_v2"}, edge_id="pi").record())
    processor = Processor(repository, NoMetricStore())
    processor.process(mysensors("gw", PRESENTATION, T0, 1))
    sync = GatewaySync(repository, LocalEventBus("sync"), lambda: None)
    report = {"previous": {"state": {"reported": {}}}, "current": {"state": {"reported": {
        "applied": {"gw": {"status": "running", "hash": "abc"}}, "configVersion": 3,
        "reportedAt": iso_from_ms(T0 + MINUTE)}}}}
    repository.on_transaction = lambda: sync.on_documents("pi", report)
    processor.process(mysensors("gw", LATER, T0 + 5 * MINUTE, 100))
    gateway = repository.get(Kind.GATEWAY, "gw")
    assert gateway is not None
    assert gateway["others"]["edge"]["status"] == "running"  # the edge's report
    assert gateway["lastTransaction"] == iso_from_ms(T0 + 5 * MINUTE + len(LATER) - 1)  # the batch's


def two_at_once(*runs: Callable[[], Any]) -> list[Any]:
    results: list[Any] = [None] * len(runs)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            results[index] = runs[index]()
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(runs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    return results


def test_two_runs_of_one_task_at_once_lose_neither(repository: Meeting) -> None:
    """Two task functions (two Lambdas: no lock in common) evaluate one task for two events at the same moment:
    both evaluations are in its state, and both events' handler requests are queued."""
    from chalicelib.adapters.bus_local import LocalEventBus
    from chalicelib.functions.automation import Automation
    from chalicelib.functions.tasks import TaskFunction

    repository.put(Kind.TASK, {
        "id": "too-hot", "handlers": ["hook"],
        "eventFilter": {"eventTypes": ["updated"], "entityTypes": ["field"], "filters": {"id": "gw.1.1.V_TEMP"}},
        "evaluationConfig": {"rule": {"matchAll": True, "conditions": [
            {"variable": "entity.current.value", "operator": "gt", "value": 25}]}}})
    queued: list[dict[str, Any]] = []

    class Queue:
        def send(self, requests: Any) -> None:
            queued.extend(requests)

    def field_event(value: float, at: int) -> dict[str, Any]:
        record = FieldModel.model_validate({"gatewayId": "gw", "nodeId": "1", "sourceId": "1", "fieldId": "V_TEMP",
                                            "metricType": "gauge_float", "current": {
                                                "value": value, "timestamp": iso_from_ms(at), "sequence": at}}).record()
        return event("updated", Kind.FIELD, record).to_dict()

    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    functions = [TaskFunction(Automation(repository, LocalEventBus("sync"), Queue(), None,
                                         now=lambda: now)) for _ in range(2)]
    repository.kinds, repository.barrier = {Kind.TASK}, threading.Barrier(2)
    runs = two_at_once(lambda: functions[0].evaluate("too-hot", field_event(27.5, T0)),
                       lambda: functions[1].evaluate("too-hot", field_event(28.0, T0 + 1000)))
    assert all(run.outcome is not None and run.outcome.fire for run in runs)
    state = (repository.get(Kind.TASK, "too-hot") or {})["state"]
    assert state["executedCount"] == 2
    assert {run.outcome.trigger_id for run in runs} <= set(state["recentTriggers"])
    assert {r["triggerId"] for r in queued} == {run.outcome.trigger_id for run in runs}


def test_two_runs_of_one_handler_at_once_count_both(repository: Meeting, tmp_path: Path) -> None:
    from chalicelib.adapters.idempotency_sqlite import SqlitePersistenceLayer
    from chalicelib.functions.handlers import HandlerFunction

    repository.put(Kind.HANDLER, {"id": "hook", "type": "noop", "enabled": True, "spec": {}})
    functions = [HandlerFunction(repository, {}, SqlitePersistenceLayer(tmp_path / f"runs-{i}.sqlite3"))
                 for i in range(2)]
    repository.kinds, repository.barrier = {Kind.HANDLER}, threading.Barrier(2)
    two_at_once(lambda: functions[0]._record_state("hook", "ok", "1 call(s) made"),
                lambda: functions[1]._record_state("hook", "error", "timed out"))
    state = (repository.get(Kind.HANDLER, "hook") or {})["state"]
    assert (state["executedCount"], state["errorCount"]) == (2, 1)


def test_failed_logins_counted_by_two_processes_at_once_are_both_counted(repository: Meeting) -> None:
    """A guesser spreading its tries over two API instances gets no free ones."""
    from chalicelib.services.login_guard import LoginGuard

    guards = [LoginGuard(repository, clock=lambda: 1_000.0) for _ in range(2)]
    repository.kinds, repository.barrier = {Kind.LOGIN_ATTEMPT}, threading.Barrier(2)
    two_at_once(lambda: guards[0].failed("admin", None, known_user=True),
                lambda: guards[1].failed("admin", None, known_user=True))
    stored = repository.query(Kind.LOGIN_ATTEMPT, ListQuery(limit=0)).data
    assert [record["failures"] for record in stored] == [2]
