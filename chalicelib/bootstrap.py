"""The composition root: everything one process needs, built from its settings, once.

``Container`` holds the process's adapters (chosen by ``Settings``), the application services built over them
and the function bodies Lambda runs. Each part is built on first use and kept: a Lambda cold start pays only for
what its function touches (the ingest function never builds the websocket service), and a warm one reuses its
clients. Adapter modules are imported inside their builders, so a local run never imports boto3 or pynamodb.

``app.py`` (one container per Lambda process) and the local stack are the callers; tests build their own, giving
any part ready-made as a keyword (``Container(settings, repository=..., bus=...)``; ``None`` where a part is
optional means "not used": ``schedules=None`` keeps no triggers, ``handler_queue=None`` runs no handlers).
Nothing else holds process-wide state: API handlers reach the container through their request, functions get
their parts as constructor arguments.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar, overload

from .settings import ADMIN_PASSWORD_ENV, Settings, SettingsError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

    from .adapters.notifier_local import LocalNotifier
    from .core.auth import SigningSecret
    from .core.automation.clock import Location
    from .core.identity import GatewayOwners
    from .core.outbound import PolicySource
    from .core.ports import (
        BlobStore,
        ConnectionStore,
        DeadLetterSink,
        DownlinkSender,
        EventBus,
        HandlerExecutor,
        HandlerQueue,
        MetricStore,
        Notifier,
        Repository,
        ScheduleRegistry,
        SecretBox,
        SecretValues,
        ShadowStore,
    )
    from .functions.automation import Automation
    from .functions.forward import ForwardPayloadFunction
    from .functions.handlers import HandlerFunction
    from .functions.ingest import Ingest
    from .functions.jobs import SystemJobs
    from .functions.scheduled import ScheduledFunction
    from .functions.schedules import ScheduleFunction
    from .functions.tasks import TaskFunction
    from .services.actions import ActionService
    from .services.auth import AuthService
    from .services.backup import BackupService
    from .services.firmware import FirmwareFiles
    from .services.gateway_sync import GatewaySync
    from .services.importer import ReferenceImport
    from .services.records import Records
    from .services.sleeping_queue import SleepingQueues
    from .services.uploads import Uploads
    from .services.virtual_devices import VirtualDevices
    from .services.websocket import WebsocketService

log = logging.getLogger(__name__)
T = TypeVar("T")


class Part(Generic[T]):
    """A container attribute built by ``build(container)`` on first read, once (thread-safe), unless given."""

    def __init__(self, build: Callable[[Container], T]) -> None:
        self.build = build
        self.name = build.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type) -> Part[T]: ...

    @overload
    def __get__(self, instance: Container, owner: type) -> T: ...

    def __get__(self, instance: Container | None, owner: type) -> Part[T] | T:
        if instance is None:
            return self
        parts = instance._parts
        if self.name in parts:
            value: T = parts[self.name]
            return value
        with instance._lock:
            if self.name not in parts:
                parts[self.name] = self.build(instance)
            built: T = parts[self.name]
            return built

    def __set__(self, instance: Container, value: T) -> None:
        raise AttributeError(f"{self.name} is built by the container; give it to Container() instead")


# --------------------------------------------------------------------------------------------- adapters


def _repository(c: Container) -> Repository:
    settings = c.settings
    if settings.storage == "dynamodb":
        from .adapters.repository_dynamodb import DynamoDBRepository

        return DynamoDBRepository(settings.table_name, settings.aws_region, settings.dynamodb_endpoint)
    if settings.storage == "sqlite":
        from .adapters.repository_sqlite import FILE_NAME, SqliteRepository

        return SqliteRepository(settings.data_dir / FILE_NAME, migrate_from=settings.data_dir / "repository")
    from .adapters.repository_memory import MemoryRepository

    return MemoryRepository(settings.data_dir / "repository", settings.dump_interval_s)


def _metrics(c: Container) -> MetricStore:
    settings = c.settings
    if settings.metrics == "none":
        from .adapters.metrics_none import NoMetricStore

        return NoMetricStore()
    if settings.metrics == "influxdb":
        from .adapters.metrics_influxdb import InfluxCredentials, InfluxDBMetricStore, influxdb_credentials

        credentials = InfluxCredentials(token=settings.influxdb_token or "")
        if settings.influxdb_token_secret:  # the deployed way: the token never sits in the environment
            try:
                credentials = influxdb_credentials(c.secret_values.read(settings.influxdb_token_secret))
            except ValueError as error:
                raise SettingsError(f"INFLUXDB_TOKEN_SECRET: {error}") from None
        return InfluxDBMetricStore(url=settings.influxdb_url or "", token=credentials.token,
                                   username=credentials.username, password=credentials.password,
                                   org=settings.influxdb_org or "", bucket=settings.influxdb_bucket or "")
    from .adapters.metrics_embedded import EmbeddedMetricStore

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return EmbeddedMetricStore(settings.data_dir / "metrics.sqlite3")


def _bus(c: Container) -> EventBus:
    if c.settings.bus == "eventbridge":
        from .adapters.bus_eventbridge import EventBridgeBus

        audience = consumers = None
        if c.settings.notify_audience == "subscribed":  # packs nobody watches skip the notifier (bus_packing)
            from .services.websocket import Audience

            audience = Audience(c.connections, ttl_s=c.settings.ws_index_ttl_s)
        if c.settings.consumer_audience == "interested":  # packs no task or mapping wants skip those functions
            from .functions.interest import ConsumerInterest

            consumers = ConsumerInterest(c.repository)
        return EventBridgeBus(c.settings.event_bus_name, audience=audience, consumers=consumers)
    from .adapters.bus_local import LocalEventBus

    return LocalEventBus("sync")


def _iot_data_client(c: Container) -> Any:
    import boto3

    return boto3.client("iot-data", region_name=c.settings.aws_region, endpoint_url=c.settings.iot_data_endpoint)


def _downlink(c: Container) -> DownlinkSender:
    """Downlinks go to the edge device that owns their gateway (its ``edgeId``), looked up by ``gateway_owners``."""
    if c.settings.downlink == "iotdata":
        from .adapters.downlink_iotdata import IotDataDownlink

        return IotDataDownlink(client=_iot_data_client(c), topic_prefix=c.settings.topic_prefix,
                               edges=c.gateway_owners.edges_of)
    from .adapters.downlink_local import LocalDownlink

    return LocalDownlink(edges=c.gateway_owners.edges_of)


def _schedules(c: Container) -> ScheduleRegistry | None:
    settings = c.settings
    if settings.scheduler == "eventbridge":
        from .adapters.schedules_eventbridge import EventBridgeScheduleRegistry

        return EventBridgeScheduleRegistry(settings.scheduler_target_arn or "", settings.scheduler_role_arn or "",
                                           settings.scheduler_group, region=settings.aws_region)
    from .adapters.schedules_local import LocalScheduleRegistry

    return LocalScheduleRegistry()


def _handler_queue(c: Container) -> HandlerQueue | None:
    settings = c.settings
    if settings.handler_queue == "sqs":
        from .adapters.handler_queue_sqs import SqsHandlerQueue

        return SqsHandlerQueue(settings.handler_queue_url or "", region=settings.aws_region)
    from .adapters.handler_queue_local import LocalHandlerQueue

    # the very handler function Lambda runs, looked up at delivery (it is built after its queue)
    return LocalHandlerQueue(lambda event, context: c.handler_function.handle(event, context),
                             dead_letter_path=settings.data_dir / "handler-dead-letters.jsonl")


def _ingest_dead_letters(c: Container) -> DeadLetterSink:
    settings = c.settings
    if settings.ingest_dead_letters == "sqs":
        from .adapters.dead_letters_sqs import SqsDeadLetters

        return SqsDeadLetters(settings.ingest_dead_letter_queue_url or "", region=settings.aws_region)
    from .adapters.dead_letters_local import INGEST_DEAD_LETTERS, LocalDeadLetters

    return LocalDeadLetters(settings.data_dir / INGEST_DEAD_LETTERS)


def _signing_secret(c: Container) -> SigningSecret:
    settings = c.settings
    if settings.signing_secret == "ssm":
        from .adapters.signing_secret_ssm import SsmSigningSecret

        return SsmSigningSecret(settings.signing_secret_parameter, settings.aws_region)
    from .adapters.signing_secret_local import FILE_NAME, LocalSigningSecret

    return LocalSigningSecret(settings.data_dir / FILE_NAME)


def _shadow(c: Container) -> ShadowStore | None:
    settings = c.settings
    if settings.shadow == "iotdata":
        from .adapters.shadow_iotdata import IotDataShadowStore

        return IotDataShadowStore(shadow_name=settings.shadow_name, region=settings.aws_region,
                                  endpoint_url=settings.iot_data_endpoint)
    from .adapters.shadow_local import LocalShadowStore

    shadow = LocalShadowStore(shadow_name=settings.shadow_name)
    # what the IoT rule and the shadow_reported function do in AWS: reported documents into the gateways
    shadow.on_documents(lambda thing, message: c.gateway_sync.on_documents(thing, message))
    return shadow


def _secrets(c: Container) -> SecretBox:
    settings = c.settings
    if settings.secrets == "kms":
        from .adapters.secrets_kms import KmsSecretBox

        return KmsSecretBox(settings.kms_key_id or "", region=settings.aws_region)
    from .adapters.secrets_local import LocalSecretBox

    return LocalSecretBox(settings.data_dir / "secret.key")


def _secret_values(c: Container) -> SecretValues:
    """Credentials of other services, read from Secrets Manager (only built when a setting names a secret)."""
    from .adapters.secret_values_secretsmanager import SecretsManagerValues

    return SecretsManagerValues(region=c.settings.aws_region)


def _blobs(c: Container) -> BlobStore:
    settings = c.settings
    if settings.blobs == "s3":
        from .adapters.blob_s3 import S3BlobStore

        return S3BlobStore(settings.blob_bucket or "", region=settings.aws_region)
    from .adapters.blob_local import LocalBlobStore

    return LocalBlobStore(settings.data_dir / "blobs")


def _upload_blobs(c: Container) -> BlobStore:
    """Where clients put files themselves (presigned uploads): a bucket of its own in AWS (CORS for the console, a
    day's lifecycle, no versions kept), else the blob store itself."""
    settings = c.settings
    if settings.blobs == "s3" and settings.upload_bucket and settings.upload_bucket != settings.blob_bucket:
        from .adapters.blob_s3 import S3BlobStore

        return S3BlobStore(settings.upload_bucket, region=settings.aws_region)
    return c.blobs


def _connections(c: Container) -> ConnectionStore:
    """Websocket connections: in DynamoDB beside the resources in AWS, in memory with the local front."""
    settings = c.settings
    if settings.storage == "dynamodb":
        from .adapters.connections_dynamodb import DynamoDBConnectionStore

        return DynamoDBConnectionStore(settings.connections_table, settings.aws_region, settings.dynamodb_endpoint)
    from .adapters.connections_memory import MemoryConnectionStore

    return MemoryConnectionStore()


def _notifier(c: Container) -> Notifier:
    if c.settings.storage == "dynamodb":
        from .adapters.notifier_apigw import ApiGatewayNotifier

        return ApiGatewayNotifier(c.settings.websocket_endpoint, c.settings.aws_region)
    from .adapters.notifier_local import LocalNotifier

    return LocalNotifier()


def _executors(c: Container) -> dict[str, HandlerExecutor]:
    """One executor per handler type, from the settings (AWS clients only when selected)."""
    from .adapters.handler_backup import BackupExecutor
    from .adapters.handler_email_smtp import SmtpEmailExecutor
    from .adapters.handler_mqtt import IotDataPublisher, MqttExecutor, PahoPublisher, Publisher
    from .adapters.handler_resource import ResourceExecutor
    from .adapters.handler_telegram import TelegramExecutor
    from .adapters.handler_webhook import WebhookExecutor
    from .functions.handlers import EmailExecutor, NoopExecutor, Unavailable

    settings = c.settings
    ses: HandlerExecutor | None = None
    if settings.email == "ses":
        from .adapters.handler_email_ses import SesEmailExecutor

        ses = SesEmailExecutor(region=settings.aws_region, default_sender=settings.email_from)
    sms: HandlerExecutor = Unavailable("sms: SMS handlers need SMS=sns (Amazon SNS)")
    if settings.sms == "sns":
        from .adapters.handler_sms_sns import SnsSmsExecutor

        sms = SnsSmsExecutor(region=settings.aws_region)
    platform: Publisher | None = None
    if settings.downlink == "iotdata":
        platform = IotDataPublisher(_iot_data_client(c))
    elif settings.mqtt_broker:
        platform = PahoPublisher(settings.mqtt_broker)
    return {
        "webhook": WebhookExecutor(c.outbound),
        "email": EmailExecutor(SmtpEmailExecutor(default_sender=settings.email_from, policy=c.outbound), ses),
        "telegram": TelegramExecutor(settings.telegram_api_url),
        "sms": sms,
        "mqtt": MqttExecutor(platform, c.outbound),
        "resource": ResourceExecutor(c.repository, c.downlink, c.bus, c.schedules, c.location),
        "backup": BackupExecutor(lambda: c.backups),
        "noop": NoopExecutor(),
    }


def _virtual_devices(c: Container) -> VirtualDevices:
    from .services.virtual_devices import VirtualDevices

    return VirtualDevices(c.repository)


def _sleeping_queues(c: Container) -> SleepingQueues:
    from .services.sleeping_queue import SleepingQueues

    return SleepingQueues(c.records)


def _outbound(c: Container) -> PolicySource:
    """Where handlers and webhook variables may connect (``core/outbound.py``): the system settings' allow list,
    private networks unless in Lambda (``OUTBOUND_PRIVATE``)."""
    from .adapters.outbound import private_allowed
    from .core.outbound import PolicySource

    return PolicySource(c.repository, private=private_allowed(c.settings.outbound_private))


def _idempotency(c: Container) -> BasePersistenceLayer:
    """Handler runs' idempotency records beside the resources: the DynamoDB table (its ``pk`` and ``ttl``), or
    SQLite in the data directory."""
    settings = c.settings
    if settings.storage == "dynamodb":
        import boto3
        from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

        client = boto3.client("dynamodb", region_name=settings.aws_region, endpoint_url=settings.dynamodb_endpoint)
        return DynamoDBPersistenceLayer(table_name=settings.table_name, key_attr="pk", expiry_attr="ttl",
                                        boto3_client=client)
    from .adapters.idempotency_sqlite import SqlitePersistenceLayer

    layer = SqlitePersistenceLayer(settings.data_dir / "handler-runs.sqlite3")
    layer.purge_expired()  # what DynamoDB's TTL does in AWS, here once per start
    return layer


# --------------------------------------------------------------------------------------------- services


def _gateway_owners(c: Container) -> GatewayOwners:
    from .core.identity import GatewayOwners

    return GatewayOwners(c.repository)


def _records(c: Container) -> Records:
    from .services.records import Records

    return Records(c.repository, c.bus)


def _auth(c: Container) -> AuthService:
    from .core.ports import BusEvent
    from .services.auth import REVOCATION_SOURCE, REVOKED_TYPE, AuthService
    from .services.login_guard import LoginGuard, LoginPolicy

    settings = c.settings
    policy = LoginPolicy(free_failures=settings.login_free_failures, window_s=settings.login_window_s,
                         lock_s=settings.login_lock_s, max_lock_s=settings.login_lock_max_s)

    def announce(detail: dict[str, Any]) -> None:  # revocations reach websocket notify through the bus
        c.bus.publish([BusEvent(REVOCATION_SOURCE, REVOKED_TYPE, detail)])

    return AuthService(c.repository, c.signing_secret, admin_password=c.admin_password,
                       show_password=c.show_password, guard=LoginGuard(c.repository, policy), announce=announce)


def _actions(c: Container) -> ActionService:
    from .services.actions import ActionService

    return ActionService(c.records, c.downlink, c.blobs, link_expires_s=c.settings.presign_expires_s)


def _gateway_sync(c: Container) -> GatewaySync:
    from .services.gateway_sync import GatewaySync

    # the shadow store is looked up at each sync: the local one calls back into this service when built
    return GatewaySync(c.repository, c.bus, lambda: c.shadow,
                       forget_owners=lambda ids: c.gateway_owners.forget(ids))  # an edgeId changed in this process


def _backups(c: Container) -> BackupService:
    from .services.backup import BackupService

    def rearm() -> dict[str, int] | None:  # (the restored tasks reach the ingest's choice of consumers in a minute)
        if c.schedules is None:
            return None
        from .functions.schedules import reload_registry

        c.tasks.invalidate()
        return reload_registry(c.automation)

    from mycontroller_protocol.version import VERSION

    from .observability import IN_LAMBDA

    return BackupService(c.repository, c.blobs, c.records, max_bytes=c.settings.backup_max_bytes,
                         app_version=VERSION, rearm=rearm, in_thread=not IN_LAMBDA, uploads=c.uploads)


def _importer(c: Container) -> ReferenceImport:
    from .services.importer import ReferenceImport

    def after(edges: set[str]) -> None:
        from .functions.automation import mark_automation_changed

        c.tasks.invalidate()
        mark_automation_changed(c.repository)  # imported tasks and forward payloads: publishers weigh again
        if c.schedules is not None:
            from .functions.schedules import reload_registry

            reload_registry(c.automation)
        c.gateway_sync.sync_things(edges)

    return ReferenceImport(c.repository, c.records, c.firmware, c.secrets,
                           max_bytes=c.settings.backup_max_bytes, after=after)


def _uploads(c: Container) -> Uploads:
    from .services.uploads import Uploads

    return Uploads(c.upload_blobs, c.blobs, expires_s=c.settings.presign_expires_s)


def _firmware(c: Container) -> FirmwareFiles:
    from .services.firmware import FirmwareFiles

    return FirmwareFiles(c.repository, c.blobs, c.records)


def _websocket(c: Container) -> WebsocketService:
    from .services.websocket import WebsocketService

    remote = c.settings.storage == "dynamodb"  # connect and notify run in other Lambda containers
    return WebsocketService(c.connections, c.notifier, authenticate=c.auth.principal_or_none,
                            index_ttl_s=c.settings.ws_index_ttl_s if remote else 30.0,
                            check_sessions=c.auth.session_problems, revalidate_s=c.settings.ws_revalidate_s,
                            sweep=not remote)  # locally the sockets live here: a sweeper re-checks them


# --------------------------------------------------------------------------------------------- functions


def _ingest(c: Container) -> Ingest:
    from .core.processor import Processor
    from .core.providers import default_interpreters
    from .functions.ingest import Ingest

    interpreters = default_interpreters()
    mysensors: Any = interpreters.get("mysensors_v2")
    if mysensors is not None:  # an edge whose firmware URL expired gets a new one (the actions built only then)
        mysensors.firmware_link = lambda gateway_id, node_id: c.actions.firmware_link(gateway_id, node_id)
    processor = Processor(c.repository, c.metrics, interpreters,
                          last_seen_resolution_ms=int(c.settings.last_seen_interval_s * 1000),
                          unchanged_resolution_ms=int(c.settings.unchanged_value_interval_s * 1000),
                          keep_records_s=c.settings.keep_records_s)
    return Ingest(processor, c.bus, c.downlink, c.gateway_owners,
                  dead_letters=c.ingest_dead_letters)


def _automation(c: Container) -> Automation:
    from .adapters.webhook_urllib import UrllibWebhookResolver
    from .functions.automation import Automation, SettingsCache

    settings = SettingsCache(c.repository, fallback_location=lambda: c.fallback_location)
    return Automation(c.repository, c.bus, c.handler_queue, c.schedules, UrllibWebhookResolver(policy=c.outbound),
                      settings, now=c.now)


def _forward(c: Container) -> ForwardPayloadFunction:
    from .functions.forward import ForwardPayloadFunction

    return ForwardPayloadFunction(c.repository, c.downlink)


def _tasks(c: Container) -> TaskFunction:
    from .functions.tasks import TaskFunction

    return TaskFunction(c.automation)


def _schedule_runs(c: Container) -> ScheduleFunction:
    from .functions.schedules import ScheduleFunction

    return ScheduleFunction(c.automation)


def _jobs(c: Container) -> SystemJobs:
    from .functions.jobs import SystemJobs

    return SystemJobs(c.automation, c.downlink)


def _scheduled(c: Container) -> ScheduledFunction:
    from .functions.scheduled import ScheduledFunction

    return ScheduledFunction(c.automation, c.tasks, c.schedule_runs, c.jobs)


def _handler_function(c: Container) -> HandlerFunction:
    from .functions.handlers import HandlerFunction

    queue = c.handler_queue
    return HandlerFunction(c.repository, c.executors, c.idempotency, secrets=c.secrets,
                           queue=queue if hasattr(queue, "send_delayed") else None)  # type: ignore[arg-type]


def _utcnow() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)


def _admin_password_from_env() -> str | None:
    return os.environ.get(ADMIN_PASSWORD_ENV) or None


def _admin_password_source(c: Container) -> Callable[[], str | None]:
    """Where the first ``admin``'s password is read: the stack's Secrets Manager secret in AWS (never an
    environment value there; only the API function's role may read it), else ``MC_ADMIN_PASSWORD``."""
    secret = c.settings.admin_password_secret
    if secret:
        return lambda: c.secret_values.read(secret)
    return _admin_password_from_env


ADAPTERS: Final = ("repository", "metrics", "bus", "downlink", "schedules", "handler_queue", "signing_secret", "shadow",
                   "secrets", "secret_values", "blobs", "upload_blobs", "connections", "notifier", "executors",
                   "idempotency", "ingest_dead_letters")
"""The parts that hold connections or state; the others are built over them."""


class Container:
    """One process's parts. Read an attribute to get the part, built on first use; give parts to replace them."""

    repository = Part(_repository)
    metrics = Part(_metrics)
    bus = Part(_bus)
    downlink = Part(_downlink)
    schedules = Part(_schedules)
    """Where schedule and interval-task triggers are kept; ``None``: not kept in step (tests, tools)."""
    handler_queue = Part(_handler_queue)
    ingest_dead_letters = Part(_ingest_dead_letters)
    """Where the ingest function keeps messages that fail for good (``DeadLetterSink``)."""
    """Where tasks and schedules queue handler runs; ``None``: handlers are not run (tests, tools)."""
    signing_secret = Part(_signing_secret)
    shadow = Part(_shadow)
    """Edge devices' shadows (gateway configs from the cloud); ``None``: gateway upserts do not reach edges."""
    secrets = Part(_secrets)
    secret_values = Part(_secret_values)
    """Secrets of other services (Secrets Manager), read once each: the InfluxDB credentials."""
    blobs = Part(_blobs)
    upload_blobs = Part(_upload_blobs)
    """Where presigned uploads land before the API takes them (the blob store unless ``UPLOAD_BUCKET`` differs)."""
    connections = Part(_connections)
    notifier = Part(_notifier)
    executors = Part(_executors)
    outbound = Part(_outbound)
    """The outbound policy's source: what handlers and webhook variables may connect to, now."""
    idempotency = Part(_idempotency)
    gateway_owners = Part(_gateway_owners)
    """Which edge device owns each gateway: the ingest function's check, the downlinks' address book."""
    records = Part(_records)
    auth = Part(_auth)
    actions = Part(_actions)
    gateway_sync = Part(_gateway_sync)
    backups = Part(_backups)
    uploads = Part(_uploads)
    """Files a client sends to the blob store itself (presigned URLs), staged until the API takes them."""
    firmware = Part(_firmware)
    virtual_devices = Part(_virtual_devices)
    """Virtual devices' trait values (``services/virtual_devices.py``)."""
    importer = Part(_importer)
    """MyController v2 exports imported (``services/importer.py``)."""
    sleeping_queues = Part(_sleeping_queues)
    """Commands edge agents hold for sleeping nodes; the local stack attaches its agent's queues."""
    websocket = Part(_websocket)
    ingest = Part(_ingest)
    automation = Part(_automation)
    forward = Part(_forward)
    tasks = Part(_tasks)
    schedule_runs = Part(_schedule_runs)
    jobs = Part(_jobs)
    scheduled = Part(_scheduled)
    handler_function = Part(_handler_function)

    def __init__(self, settings: Settings | None = None, *, now: Callable[[], datetime] = _utcnow,
                 fallback_location: Location | None = None,
                 admin_password: Callable[[], str | None] | None = None,
                 show_password: Callable[[str], None] | None = None, **given: Any) -> None:
        unknown = sorted(name for name in given if not isinstance(getattr(type(self), name, None), Part))
        if unknown:
            raise TypeError(f"Container() got parts it does not have: {', '.join(unknown)}")
        self.settings = settings if settings is not None else Settings.from_env()
        self.now = now
        self.fallback_location = fallback_location
        """Where sun schedules are computed when the system settings carry no coordinates (tests, tools)."""
        self.admin_password = admin_password or _admin_password_source(self)
        """The first ``admin``'s password, read when no user exists yet (``ADMIN_PASSWORD_SECRET`` or
        ``MC_ADMIN_PASSWORD``)."""
        self.show_password = show_password
        """Where a generated first password is shown once (stderr when ``None``)."""
        self._parts: dict[str, Any] = dict(given)
        self._lock = threading.RLock()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Container:
        return cls(Settings.from_env(env))

    def with_parts(self, settings: Settings | None = None, *, rebuilt: tuple[str, ...] = (),
                   **parts: Any) -> Container:
        """A new container over the adapters this one has built (and its options), with ``parts`` in their place
        and the adapters named in ``rebuilt`` built anew from the settings: services and functions are built again
        over them (tests that swap one adapter mid-way)."""
        given: dict[str, Any] = {name: self._parts[name] for name in ADAPTERS
                                 if name in self._parts and name not in rebuilt}
        given.update(parts)
        return Container(settings or self.settings, now=self.now, fallback_location=self.fallback_location,
                         admin_password=self.admin_password, show_password=self.show_password, **given)

    def built(self, name: str) -> bool:
        """Whether the part is there already (closing must not build what was never used)."""
        return name in self._parts

    def location(self) -> Location | None:
        """The installation's location: the system settings', else ``fallback_location``."""
        from .core.settings import load_settings

        return load_settings(self.repository).location() or self.fallback_location

    def local_notifier(self) -> LocalNotifier:
        """The local front's notifier (it registers its sockets there); an error when the container is AWS's."""
        from .adapters.notifier_local import LocalNotifier

        notifier = self.notifier
        if not isinstance(notifier, LocalNotifier):
            raise TypeError("the local front needs the local notifier (STORAGE is not dynamodb)")
        return notifier

    def close(self) -> None:
        """Flush and close what holds state and was built (metric stores flush, the memory repository dumps)."""
        closers: list[Callable[[], Any]] = []
        if self.built("websocket"):
            closers += [self.websocket.stop]
        if self.built("metrics"):
            closers += [self.metrics.flush]
        if self.built("bus"):
            closers += [self.bus.close]
        if self.built("metrics"):
            closers += [self.metrics.close]
        if self.built("repository"):
            closers += [self.repository.close]
        for closer in closers:
            try:
                closer()
            except Exception:  # closing one must not keep the others open
                log.exception("closing %s failed", closer)
