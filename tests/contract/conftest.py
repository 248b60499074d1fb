"""One fixture per port, parametrised over every adapter of that port: each contract test runs against each.

The AWS adapters run under moto (the module-scoped ``aws_mock`` of ``tests/conftest.py``, asked for only by the
AWS parameters, which are marked ``integration``). Where a port's effect is not a return value (a bus delivery,
a downlink, a schedule's target input, a queued handler request, a device's shadow report), the fixture hands
out a small harness that observes it the way each side really delivers it: a subscriber's handler or an
EventBridge rule's SQS target, the edge's callback or moto's record of iot-data publishes, and so on. The tests
talk only to the port and to the harness; the two places a harness reaches past the port say so (the local
timer's public ``entries``, fired one at a time; the moment a shadow update computes its patch, where a racing
writer is slipped in).
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any, Final

import pytest

from chalicelib.core.ports import BlobStore, ConnectionStore, MetricStore, Repository, ShadowStore
from mycontroller_protocol.envelope import Downlink, decode_downlinks, down_topic
from mycontroller_protocol.shadow import shadow_topic
from tests.contract.fake_influxdb import FakeInfluxDB
from tests.contract.harnesses import (
    IDEMPOTENCY_PREFIX,
    BusHarness,
    DownlinkHarness,
    IdempotencyHarness,
    QueueHarness,
    Registered,
    ScheduleHarness,
    SecretsHarness,
    ShadowHarness,
    SigningHarness,
)
from tests.contract.metric_fixtures import INFLUXDB_STORE, STORE_FACTORIES, influxdb_store

REGION: Final = "us-east-1"
AWS: Final = pytest.mark.integration
"""The mark of every parameter that runs an AWS adapter under moto."""

_names = itertools.count(1)


def unique(prefix: str) -> str:
    """A resource name of its own per test (tables, buses, queues share one moto backend per module)."""
    return f"{prefix}-{next(_names)}"


def wait_for(condition: Callable[[], bool], timeout: float = 5.0, step: float = 0.01) -> bool:
    """Poll until ``condition()`` holds; whether it did before ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


class AwsClients:
    """boto3 clients for one moto mock, made on first use (a client costs tens of milliseconds to build)."""

    def _client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, region_name=REGION)

    @cached_property
    def events(self) -> Any:
        return self._client("events")

    @cached_property
    def sqs(self) -> Any:
        return self._client("sqs")

    @cached_property
    def iot(self) -> Any:
        return self._client("iot")

    @cached_property
    def iot_data(self) -> Any:
        return self._client("iot-data")

    @cached_property
    def scheduler(self) -> Any:
        return self._client("scheduler")

    @cached_property
    def s3(self) -> Any:
        return self._client("s3")

    @cached_property
    def kms(self) -> Any:
        return self._client("kms")

    @cached_property
    def ssm(self) -> Any:
        return self._client("ssm")

    @cached_property
    def dynamodb(self) -> Any:
        return self._client("dynamodb")


class AtomicCalls:
    """A boto3 client whose ``names`` calls run one at a time. moto checks a write's condition and then writes
    without a lock, so racing threads could both pass it; the real services' conditional writes (DynamoDB's
    ``ConditionExpression``, SSM's ``Overwrite=False``) are atomic, and this restores that for the races tested."""

    def __init__(self, client: Any, *names: str) -> None:
        self._client = client
        self._names = frozenset(names)
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name not in self._names:
            return attribute

        def atomic(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return atomic


@pytest.fixture(scope="module")
def aws(aws_mock: None) -> AwsClients:
    """Clients shared by a module's AWS parameters (inside its moto mock)."""
    return AwsClients()


def _aws(request: pytest.FixtureRequest) -> AwsClients:
    clients: AwsClients = request.getfixturevalue("aws")
    return clients


def drain_queue(sqs: Any, url: str) -> list[str]:
    """Every message body visible on an SQS queue now, deleted as read."""
    bodies: list[str] = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return bodies
        bodies += [m["Body"] for m in got]
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])


def queue_arn(sqs: Any, url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return str(attributes["QueueArn"])


# --------------------------------------------------------------------------------------------- repository


@pytest.fixture(params=["memory", "sqlite", pytest.param("dynamodb", marks=AWS)])
def repository(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Repository]:
    """A fresh, empty repository: memory (persisting to a temp dir), SQLite (a file in a temp dir) or DynamoDB
    (moto, a table per test, its conditional PutItems made atomic as DynamoDB's are: ``AtomicCalls``)."""
    if request.param == "memory":
        from chalicelib.adapters.repository_memory import MemoryRepository

        memory = MemoryRepository(tmp_path / "store", dump_interval_s=0)
        yield memory
        memory.close()
        return
    if request.param == "sqlite":
        from chalicelib.adapters.repository_sqlite import SqliteRepository

        sqlite = SqliteRepository(tmp_path / "store" / "repository.sqlite3")
        yield sqlite
        sqlite.close()
        return

    from chalicelib.adapters.repository_dynamodb import DynamoDBRepository

    request.getfixturevalue("aws_mock")
    dynamo = DynamoDBRepository(unique("mc-contract"), write_concurrency=4)
    dynamo.create_table()
    connection = dynamo._conn  # reaching past the port: pynamodb's connection, whose put_item moto runs unlocked
    lock = threading.Lock()
    put_item = connection.put_item

    def atomic_put_item(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return put_item(*args, **kwargs)

    connection.put_item = atomic_put_item  # type: ignore[method-assign]
    yield dynamo
    dynamo.close()


# --------------------------------------------------------------------------------------------- metric store


@pytest.fixture(scope="module")
def fake_influxdb() -> Iterator[FakeInfluxDB]:
    """An InfluxDB 2 API on a loopback port for the module (``fake_influxdb.FakeInfluxDB``)."""
    server = FakeInfluxDB()
    yield server
    server.stop()


@pytest.fixture(params=[*sorted(STORE_FACTORIES), INFLUXDB_STORE])
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MetricStore]:
    """A fresh, empty store of each adapter under contract (for InfluxDB: a bucket of its own, provisioned)."""
    if request.param == INFLUXDB_STORE:
        # influxdb-client's writer polls every 100 ms until its last batch is sent when closed (the adapter's
        # flush closes it): poll every 2 ms instead, so that a flush costs what the sending costs
        monkeypatch.setattr("influxdb_client.client.write_api.sleep", lambda _seconds: time.sleep(0.002))
        server: FakeInfluxDB = request.getfixturevalue("fake_influxdb")
        bucket = unique("metrics")
        server.create_bucket(bucket)
        instance = influxdb_store(server.url, bucket)
    else:
        instance = STORE_FACTORIES[request.param](tmp_path)
    yield instance
    instance.close()


# --------------------------------------------------------------------------------------------- event bus


def as_document(event: Any) -> dict[str, Any]:
    """An event as EventBridge hands it to a target: ``source``, ``detail-type``, ``detail``."""
    return {"source": event.source, "detail-type": event.detail_type, "detail": event.detail}


@pytest.fixture(params=["local", pytest.param("eventbridge", marks=AWS)])
def bus(request: pytest.FixtureRequest) -> Iterator[BusHarness]:
    if request.param == "local":
        from chalicelib.adapters.bus_local import LocalEventBus

        local = LocalEventBus(mode="thread")  # the local stack's mode: delivery on the bus's own thread

        def local_tap(pattern: dict[str, Any]) -> Callable[[], list[dict[str, Any]]]:
            seen: list[dict[str, Any]] = []
            local.subscribe(unique("tap"), pattern, lambda event: seen.append(as_document(event)))

            def received() -> list[dict[str, Any]]:
                assert local.drain(5.0), "the local bus did not deliver within 5 s"
                return json.loads(json.dumps(seen))  # as a consumer would read it: JSON, a copy

            return received

        yield BusHarness(local, local_tap)
        local.close(5.0)
        return

    from chalicelib.adapters.bus_eventbridge import EventBridgeBus

    clients = _aws(request)
    name = unique("mc-contract-bus")
    clients.events.create_event_bus(Name=name)

    def rule_tap(pattern: dict[str, Any]) -> Callable[[], list[dict[str, Any]]]:
        """A rule with the pattern as packs carry it (``core/bus_packing.py``), its consumer's view of each pack:
        the events the per-event pattern selects."""
        from chalicelib.core.bus_packing import packed_pattern, selector, unpack

        rule = unique(f"{name}-tap")
        url = clients.sqs.create_queue(QueueName=rule)["QueueUrl"]
        clients.events.put_rule(Name=rule, EventBusName=name, EventPattern=json.dumps(packed_pattern(pattern)))
        clients.events.put_targets(Rule=rule, EventBusName=name,
                                   Targets=[{"Id": "queue", "Arn": queue_arn(clients.sqs, url)}])
        seen: list[dict[str, Any]] = []
        wanted = selector(pattern)

        def received() -> list[dict[str, Any]]:
            for message in map(json.loads, drain_queue(clients.sqs, url)):
                seen.extend({"source": message["source"], "detail-type": detail_type, "detail": detail}
                            for detail_type, detail in unpack(message["detail"])
                            if wanted(message["source"], detail_type, detail))
            return list(seen)

        return received

    eventbridge = EventBridgeBus(name, client=clients.events)
    yield BusHarness(eventbridge, rule_tap)
    eventbridge.close()


# --------------------------------------------------------------------------------------------- downlink


EDGES: Final = {"gw1": "edge-a", "gw2": "edge-a", "plug": "edge-b"}
"""Which edge device (IoT thing) owns which gateway in the downlink contract; ``orphan`` is owned by none."""


def _edge_resolver(adapter: type) -> tuple[dict[str, Any], Callable[[str], str | None]]:
    """The ``edges`` argument for a downlink adapter that routes by owning edge, and the owner of a gateway.

    Adapters from before edge ownership (``core/identity.py``) route by gateway: each gateway is then its own
    addressee and every gateway is reachable."""
    if "edges" not in inspect.signature(adapter).parameters:
        return {}, lambda gateway: gateway

    def edges(gateway_ids: Any) -> dict[str, str]:
        return {gateway: EDGES[gateway] for gateway in gateway_ids if gateway in EDGES}

    return {"edges": edges}, EDGES.get


@pytest.fixture(params=["local", pytest.param("iotdata", marks=AWS)])
def downlink(request: pytest.FixtureRequest) -> Iterator[DownlinkHarness]:
    if request.param == "local":
        from chalicelib.adapters.downlink_local import LocalDownlink

        options, owner = _edge_resolver(LocalDownlink)
        local = LocalDownlink(**options)
        inboxes: dict[str, list[Downlink]] = {}

        def edge(addressee: str) -> list[Downlink]:
            if addressee not in inboxes:  # the edge connects: what waited for it arrives first, in order
                inbox = inboxes[addressee] = []
                local.register(addressee, inbox.extend)
            return list(inboxes[addressee])

        yield DownlinkHarness(local, edge, owner)
        local.close()
        return

    from moto.backends import get_backend
    from moto.core import DEFAULT_ACCOUNT_ID

    from chalicelib.adapters.downlink_iotdata import IotDataDownlink

    clients = _aws(request)
    published: list[tuple[str, bytes]] = get_backend("iot-data")[DEFAULT_ACCOUNT_ID][REGION].published_payloads
    published.clear()

    def subscriber(addressee: str) -> list[Downlink]:
        topic = down_topic(addressee)
        return [d for got, payload in published if got == topic for d in decode_downlinks(payload)]

    options, owner = _edge_resolver(IotDataDownlink)
    yield DownlinkHarness(IotDataDownlink(clients.iot_data, **options), subscriber, owner)
    published.clear()


# --------------------------------------------------------------------------------------------- schedule registry


@pytest.fixture(params=["local", pytest.param("eventbridge", marks=AWS)])
def schedules(request: pytest.FixtureRequest) -> Iterator[ScheduleHarness]:
    if request.param == "local":
        from chalicelib.adapters.schedules_local import LocalScheduleRegistry

        local = LocalScheduleRegistry()

        def local_registered(name: str) -> Registered:
            entry = local.get(name)
            assert entry is not None, f"no schedule {name!r}"
            return Registered(entry.expression, entry.timezone, entry.start, entry.end)

        def local_input(name: str) -> dict[str, Any]:
            entry = local.get(name)
            assert entry is not None and entry.next_due is not None, f"schedule {name!r} is not due to fire"
            solo = LocalScheduleRegistry()  # the timer's own firing, of this entry alone (others may be due too)
            solo.entries[name] = dataclasses.replace(entry)
            fired: list[dict[str, Any]] = []
            solo.run_due(entry.next_due, target=fired.append)
            [payload] = fired
            return payload

        yield ScheduleHarness(local, local_registered, local_input)
        local.stop()
        return

    from chalicelib.adapters.schedules_eventbridge import EventBridgeScheduleRegistry

    clients = _aws(request)
    group = unique("mc-contract")
    registry = EventBridgeScheduleRegistry("arn:aws:lambda:us-east-1:123456789012:function:scheduler",
                                           "arn:aws:iam::123456789012:role/scheduler", group=group,
                                           client=clients.scheduler)
    registry.create_group()

    def described(name: str) -> dict[str, Any]:
        return dict(clients.scheduler.get_schedule(Name=name, GroupName=group))

    def aws_registered(name: str) -> Registered:
        found = described(name)
        return Registered(found["ScheduleExpression"], found["ScheduleExpressionTimezone"], found.get("StartDate"),
                          found.get("EndDate"))

    def aws_input(name: str) -> dict[str, Any]:
        payload: dict[str, Any] = json.loads(described(name)["Target"]["Input"])
        return payload

    yield ScheduleHarness(registry, aws_registered, aws_input)


# --------------------------------------------------------------------------------------------- handler queue


@pytest.fixture(params=["local", pytest.param("sqs", marks=AWS)])
def handler_queue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[QueueHarness]:
    if request.param == "local":
        from chalicelib.adapters.handler_queue_local import LocalHandlerQueue

        got: list[dict[str, Any]] = []
        lock = threading.Lock()

        def consumer(event: dict[str, Any], _context: Any) -> dict[str, Any]:
            with lock:
                got.extend(json.loads(record["body"]) for record in event["Records"])
            return {"batchItemFailures": []}

        local = LocalHandlerQueue(consumer, dead_letter_path=tmp_path / "dead.jsonl", backoff_s=0.05)
        local.start()

        def consumed(count: int, timeout: float) -> list[dict[str, Any]]:
            wait_for(lambda: len(got) >= count, timeout)
            with lock:
                return list(got)

        yield QueueHarness(local, consumed)
        local.stop(5.0)
        return

    from chalicelib.adapters.handler_queue_sqs import SqsHandlerQueue

    clients = _aws(request)
    url = clients.sqs.create_queue(QueueName=unique("mc-contract-handlers"))["QueueUrl"]
    seen: list[dict[str, Any]] = []

    def receive(count: int, timeout: float) -> list[dict[str, Any]]:
        def enough() -> bool:
            seen.extend(json.loads(body) for body in drain_queue(clients.sqs, url))
            return len(seen) >= count

        wait_for(enough, timeout, step=0.05)
        return list(seen)

    yield QueueHarness(SqsHandlerQueue(url, client=clients.sqs, backoff_s=0.0), receive)


# --------------------------------------------------------------------------------------------- blob store


@pytest.fixture(params=["local", pytest.param("s3", marks=AWS)])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    """An empty blob store: a temp directory, or a bucket of its own (with the deployment's key prefix)."""
    if request.param == "local":
        from chalicelib.adapters.blob_local import LocalBlobStore

        return LocalBlobStore(tmp_path / "blobs")
    from chalicelib.adapters.blob_s3 import S3BlobStore

    clients = _aws(request)
    bucket = unique("mc-contract-blobs")
    clients.s3.create_bucket(Bucket=bucket)
    return S3BlobStore(bucket, client=clients.s3, prefix="stack-a")


# --------------------------------------------------------------------------------------------- device shadow


def _racer(monkeypatch: pytest.MonkeyPatch, module: Any, store: ShadowStore) -> Callable[[str, dict[str, Any]], Any]:
    """``racing`` for an adapter module that computes its update with ``desired_patch`` after reading."""

    @contextmanager
    def racing(thing: str, desired: dict[str, Any]) -> Iterator[None]:
        original = module.desired_patch
        pending = [desired]

        def overtaken(current: Any, document: Any) -> Any:
            if pending:
                store.update_desired(thing, pending.pop())  # the other writer lands first
            return original(current, document)

        with monkeypatch.context() as patch:
            patch.setattr(module, "desired_patch", overtaken)
            yield
        assert not pending, "the racing writer never ran"

    return racing


@pytest.fixture(params=["local", pytest.param("iotdata", marks=AWS)])
def shadows(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> ShadowHarness:
    if request.param == "local":
        from chalicelib.adapters import shadow_local

        local = shadow_local.LocalShadowStore()

        def local_report(thing: str, reported: dict[str, Any]) -> None:
            local.device_publish(shadow_topic(thing, "update", local.shadow_name),
                                 json.dumps({"state": {"reported": reported}}).encode())

        return ShadowHarness(local, lambda: unique("edge"), local_report, _racer(monkeypatch, shadow_local, local))

    from chalicelib.adapters import shadow_iotdata

    clients = _aws(request)
    remote = shadow_iotdata.IotDataShadowStore(clients.iot_data)

    def new_thing() -> str:
        thing = unique("edge")
        clients.iot.create_thing(thingName=thing)
        return thing

    def aws_report(thing: str, reported: dict[str, Any]) -> None:
        clients.iot_data.update_thing_shadow(thingName=thing, shadowName=remote.shadow_name,
                                             payload=json.dumps({"state": {"reported": reported}}).encode())

    return ShadowHarness(remote, new_thing, aws_report, _racer(monkeypatch, shadow_iotdata, remote))


# --------------------------------------------------------------------------------------------- secrets


@pytest.fixture(params=["local", pytest.param("kms", marks=AWS)])
def secrets(request: pytest.FixtureRequest, tmp_path: Path) -> SecretsHarness:
    if request.param == "local":
        from chalicelib.adapters.secrets_local import LocalSecretBox

        path = tmp_path / "secret.key"
        return SecretsHarness(LocalSecretBox(path), lambda: LocalSecretBox(path),
                              lambda: LocalSecretBox(tmp_path / "other.key"))

    from chalicelib.adapters.secrets_kms import KmsSecretBox

    kms = _aws(request).kms
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    return SecretsHarness(KmsSecretBox(key, client=kms), lambda: KmsSecretBox(key, client=kms),
                          lambda: KmsSecretBox(kms.create_key()["KeyMetadata"]["KeyId"], client=kms))


# --------------------------------------------------------------------------------------------- signing secret


@pytest.fixture(params=["local", pytest.param("ssm", marks=AWS)])
def signing(request: pytest.FixtureRequest, tmp_path: Path) -> SigningHarness:
    if request.param == "local":
        from chalicelib.adapters.signing_secret_local import LocalSigningSecret

        path = tmp_path / "data" / "jwt-secret"

        def write(text: str) -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text.encode())

        return SigningHarness(lambda: LocalSigningSecret(path), lambda: path.read_bytes() if path.exists() else None,
                              write, lambda: LocalSigningSecret(tmp_path / "elsewhere" / "jwt-secret"))

    from chalicelib.adapters.signing_secret_ssm import SsmSigningSecret

    ssm = AtomicCalls(_aws(request).ssm, "put_parameter")
    parameter = f"/{unique('mc-contract')}/jwt-secret"

    def stored() -> bytes | None:
        try:
            return str(ssm.get_parameter(Name=parameter, WithDecryption=True)["Parameter"]["Value"]).encode()
        except ssm.exceptions.ParameterNotFound:
            return None

    def preset(text: str) -> None:
        ssm.put_parameter(Name=parameter, Value=text, Type="SecureString")

    return SigningHarness(lambda: SsmSigningSecret(parameter, client=ssm), stored, preset,
                          lambda: SsmSigningSecret(f"{parameter}-elsewhere", client=ssm))


# --------------------------------------------------------------------------------------------- connections


@pytest.fixture(params=["memory", pytest.param("dynamodb", marks=AWS)])
def connections(request: pytest.FixtureRequest) -> ConnectionStore:
    """An empty connection store: in memory, or a DynamoDB table of its own (moto)."""
    if request.param == "memory":
        from chalicelib.adapters.connections_memory import MemoryConnectionStore

        return MemoryConnectionStore()
    from chalicelib.adapters.connections_dynamodb import DynamoDBConnectionStore

    table = DynamoDBConnectionStore(unique("mc-contract-connections"), client=_aws(request).dynamodb)
    table.create_table()
    return table


# --------------------------------------------------------------------------------------------- idempotency

@pytest.fixture(params=["sqlite", pytest.param("dynamodb", marks=AWS)])
def idempotency(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IdempotencyHarness]:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

    make: Callable[[], Any]
    if request.param == "sqlite":
        from chalicelib.adapters.idempotency_sqlite import SqlitePersistenceLayer

        path = tmp_path / "handler-runs.sqlite3"  # a file, as the local stack keeps it

        def make() -> Any:
            return SqlitePersistenceLayer(path)
    else:
        from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

        from chalicelib.adapters.repository_dynamodb import table_definition

        client = AtomicCalls(_aws(request).dynamodb, "put_item")
        definition = table_definition(unique("mc-contract-runs"))  # the resource table, which holds the runs
        ttl = definition.pop("TimeToLiveSpecification")
        client.create_table(**definition)
        client.update_time_to_live(TableName=definition["TableName"], TimeToLiveSpecification=ttl)

        def make() -> Any:
            # as the composition root builds it for STORAGE=dynamodb: the resource table, its pk and ttl
            return DynamoDBPersistenceLayer(table_name=definition["TableName"], key_attr="pk", expiry_attr="ttl",
                                            boto3_client=client)

    harness = IdempotencyHarness(lambda: None)

    def layer(ttl_s: int = 3600) -> Any:
        persistence = make()
        persistence.configure(IdempotencyConfig(event_key_jmespath="key", expires_after_seconds=ttl_s,
                                                raise_on_no_idempotency_key=True), key_prefix=IDEMPOTENCY_PREFIX)
        harness.layers.append(persistence)
        return persistence

    harness.layer = layer
    yield harness
    for persistence in harness.layers:
        if hasattr(persistence, "close"):
            persistence.close()
