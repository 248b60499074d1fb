"""The composition root: settings from the environment, adapters built from them once per process.

Lambda keeps a process warm across invocations, so adapters (DynamoDB connection, InfluxDB client, boto3
clients) are built on the first call after a cold start and reused. Adapter modules are imported inside the
builders, so a memory-only local run never imports boto3 or pynamodb. The local stack and the tests inject
their own in-process instances with ``set_services``.

Environment (all optional; the defaults are the embedded local set-up):

==================  ===============================================================================
STORAGE             ``memory`` (default) or ``dynamodb``
TABLE_NAME          DynamoDB table (default ``mycontroller``)
DYNAMODB_ENDPOINT   endpoint URL for DynamoDB Local (default: AWS)
AWS_REGION          region for the AWS adapters (falls back to AWS_DEFAULT_REGION, then ``us-east-1``)
DATA_DIR            where the memory repository (``<DATA_DIR>/repository/``) and the embedded metric store
                    (``<DATA_DIR>/metrics.sqlite3``) keep their files (default ``./.mycontroller``)
DUMP_INTERVAL_S     seconds between memory repository dumps (default 60; 0 = on close only)
METRICS             ``embedded`` (default), ``influxdb`` or ``none``
INFLUXDB_URL        InfluxDB 2 URL (``influxdb``), with INFLUXDB_TOKEN, INFLUXDB_ORG, INFLUXDB_BUCKET
BUS                 ``local`` (default, in-process) or ``eventbridge``
EVENT_BUS_NAME      EventBridge bus (default ``mycontroller``)
DOWNLINK            ``local`` (default, in-process) or ``iotdata`` (IoT Core publish)
TOPIC_PREFIX        topic prefix of the gateways' down topics (default ``mc``)
IOT_DATA_ENDPOINT   iot-data endpoint URL (default: the account's, found by boto3)
SCHEDULER           ``local`` (default, in-process registry) or ``eventbridge`` (EventBridge Scheduler): where
                    the triggers of enabled schedules and interval tasks are kept
SCHEDULER_TARGET_ARN  ``eventbridge``: the function every schedule invokes (required)
SCHEDULER_ROLE_ARN  ``eventbridge``: the role EventBridge Scheduler assumes to invoke it (required)
SCHEDULER_GROUP     ``eventbridge``: the schedule group (default ``mycontroller``)
MAX_BODY_BYTES      largest accepted API request body (default 1048576); larger gets 413
LOG_LEVEL           DEBUG, INFO (default), WARNING, ERROR
SIGNING_SECRET      ``local`` (default: ``<DATA_DIR>/jwt-secret``, mode 0600) or ``ssm``: where the JWT signing
                    key lives (created on first use when missing)
SIGNING_SECRET_PARAMETER  ``ssm``: the SecureString parameter (default ``/mycontroller/jwt-secret``)
MC_ADMIN_PASSWORD   the first ``admin`` user's password, when no user exists yet (read at that moment, never
                    kept in ``Settings``); unset: a generated one is printed once
SHADOW              ``local`` (default, in-process) or ``iotdata`` (AWS IoT device shadow): where gateway configs
                    for edge devices (``edgeId``) are written and their reported state read
SHADOW_NAME         the named shadow (default ``mycontroller``; empty: the classic shadow)
CONNECTIONS_TABLE   websocket connections table when ``STORAGE=dynamodb`` (default ``mycontroller-connections``;
                    memory otherwise)
WEBSOCKET_ENDPOINT  API Gateway websocket management endpoint (``https://<api>.execute-api.<region>.amazonaws.com/
                    <stage>``) for the bus-fed notify function; the ``on_ws_*`` handlers learn it from their event
WS_INDEX_TTL_S      seconds notify trusts its subscription index built from the DynamoDB connections (default 1)
HANDLER_QUEUE       ``local`` (default: the local stack's in-process queue) or ``sqs``: where handler runs queue
HANDLER_QUEUE_URL   ``sqs``: the handler queue's URL (required)
SECRETS             ``local`` (default: AES-256-GCM, key ``<DATA_DIR>/secret.key`` 0600) or ``kms``: how handler
                    secrets are encrypted at rest
KMS_KEY_ID          ``kms``: the key id, ARN or alias (required)
BLOBS               ``local`` (default: files under ``<DATA_DIR>/blobs``) or ``s3``: where firmware files and
                    backups are kept
BLOB_BUCKET         ``s3``: the bucket (required)
BACKUP_MAX_BYTES    largest backup archive made, uploaded or restored (default 52428800); also the firmware
                    upload limit (FIRMWARE_MAX_BYTES, default 16777216) in place of MAX_BODY_BYTES on that route
(EMAIL, EMAIL_FROM, SMS, TELEGRAM_API_URL, MQTT_BROKER: see ``handler_function.HandlerSettings``)
==================  ===============================================================================
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .core.ports import (
    BlobStore,
    DownlinkSender,
    EventBus,
    HandlerQueue,
    MetricStore,
    Repository,
    ScheduleRegistry,
    SecretBox,
    ShadowStore,
)

if TYPE_CHECKING:
    from .core.auth import SigningSecret
    from .ingest import Ingest
    from .websocket import WebsocketService

STORAGE_CHOICES: Final = ("memory", "dynamodb")
METRICS_CHOICES: Final = ("embedded", "influxdb", "none")
BUS_CHOICES: Final = ("local", "eventbridge")
DOWNLINK_CHOICES: Final = ("local", "iotdata")
SCHEDULER_CHOICES: Final = ("local", "eventbridge")
SHADOW_CHOICES: Final = ("local", "iotdata")
SIGNING_SECRET_CHOICES: Final = ("local", "ssm")
HANDLER_QUEUE_CHOICES: Final = ("local", "sqs")
SECRETS_CHOICES: Final = ("local", "kms")
BLOBS_CHOICES: Final = ("local", "s3")
DEFAULT_BACKUP_MAX_BYTES: Final = 50 * 1024 * 1024
DEFAULT_FIRMWARE_MAX_BYTES: Final = 16 * 1024 * 1024
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_MAX_BODY_BYTES: Final = 1024 * 1024


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the environment variable."""


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = (env.get(name) or default).strip().lower()
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(choices)}")
    return value


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0) -> float:
    text = (env.get(name) or "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r} is not a number") from None
    if value < minimum:
        raise ConfigError(f"{name}={text!r} must be at least {minimum:g}")
    return value


def _text(env: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    value = (env.get(name) or "").strip()
    return value or default


@dataclass(frozen=True, slots=True)
class Settings:
    """What the environment selects; ``from_env`` reads and checks it, naming the variable at fault."""

    storage: str = "memory"
    table_name: str = "mycontroller"
    dynamodb_endpoint: str | None = None
    aws_region: str = "us-east-1"
    data_dir: Path = Path(".mycontroller")
    dump_interval_s: float = 60.0
    metrics: str = "embedded"
    influxdb_url: str | None = None
    influxdb_token: str | None = field(default=None, repr=False)
    influxdb_org: str | None = None
    influxdb_bucket: str | None = None
    bus: str = "local"
    event_bus_name: str = "mycontroller"
    downlink: str = "local"
    topic_prefix: str = "mc"
    iot_data_endpoint: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    log_level: str = "INFO"
    scheduler: str = "local"
    scheduler_target_arn: str | None = None
    scheduler_role_arn: str | None = None
    scheduler_group: str = "mycontroller"
    signing_secret: str = "local"
    signing_secret_parameter: str = "/mycontroller/jwt-secret"
    shadow: str = "local"
    shadow_name: str = "mycontroller"
    connections_table: str = "mycontroller-connections"
    websocket_endpoint: str | None = None
    ws_index_ttl_s: float = 1.0
    handler_queue: str = "local"
    handler_queue_url: str | None = None
    secrets: str = "local"
    kms_key_id: str | None = None
    blobs: str = "local"
    blob_bucket: str | None = None
    backup_max_bytes: int = DEFAULT_BACKUP_MAX_BYTES
    firmware_max_bytes: int = DEFAULT_FIRMWARE_MAX_BYTES

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        log_level = (env.get("LOG_LEVEL") or "INFO").strip().upper()
        if log_level not in LOG_LEVELS:
            raise ConfigError(f"LOG_LEVEL={log_level!r} is not one of {', '.join(LOG_LEVELS)}")
        settings = cls(
            storage=_choice(env, "STORAGE", STORAGE_CHOICES, "memory"),
            table_name=_text(env, "TABLE_NAME", "mycontroller") or "mycontroller",
            dynamodb_endpoint=_text(env, "DYNAMODB_ENDPOINT"),
            aws_region=_text(env, "AWS_REGION") or _text(env, "AWS_DEFAULT_REGION") or "us-east-1",
            data_dir=Path(_text(env, "DATA_DIR", ".mycontroller") or ".mycontroller"),
            dump_interval_s=_number(env, "DUMP_INTERVAL_S", 60.0),
            metrics=_choice(env, "METRICS", METRICS_CHOICES, "embedded"),
            influxdb_url=_text(env, "INFLUXDB_URL"),
            influxdb_token=_text(env, "INFLUXDB_TOKEN"),
            influxdb_org=_text(env, "INFLUXDB_ORG"),
            influxdb_bucket=_text(env, "INFLUXDB_BUCKET"),
            bus=_choice(env, "BUS", BUS_CHOICES, "local"),
            event_bus_name=_text(env, "EVENT_BUS_NAME", "mycontroller") or "mycontroller",
            downlink=_choice(env, "DOWNLINK", DOWNLINK_CHOICES, "local"),
            topic_prefix=_text(env, "TOPIC_PREFIX", "mc") or "mc",
            iot_data_endpoint=_text(env, "IOT_DATA_ENDPOINT"),
            max_body_bytes=int(_number(env, "MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, minimum=1)),
            log_level=log_level,
            scheduler=_choice(env, "SCHEDULER", SCHEDULER_CHOICES, "local"),
            scheduler_target_arn=_text(env, "SCHEDULER_TARGET_ARN"),
            scheduler_role_arn=_text(env, "SCHEDULER_ROLE_ARN"),
            scheduler_group=_text(env, "SCHEDULER_GROUP", "mycontroller") or "mycontroller",
            signing_secret=_choice(env, "SIGNING_SECRET", SIGNING_SECRET_CHOICES, "local"),
            signing_secret_parameter=_text(env, "SIGNING_SECRET_PARAMETER", "/mycontroller/jwt-secret")
            or "/mycontroller/jwt-secret",
            shadow=_choice(env, "SHADOW", SHADOW_CHOICES, "local"),
            shadow_name=(env.get("SHADOW_NAME", "mycontroller") or "").strip(),
            connections_table=_text(env, "CONNECTIONS_TABLE", "mycontroller-connections") or "mycontroller-connections",
            websocket_endpoint=_text(env, "WEBSOCKET_ENDPOINT"),
            ws_index_ttl_s=_number(env, "WS_INDEX_TTL_S", 1.0),
            handler_queue=_choice(env, "HANDLER_QUEUE", HANDLER_QUEUE_CHOICES, "local"),
            handler_queue_url=_text(env, "HANDLER_QUEUE_URL"),
            secrets=_choice(env, "SECRETS", SECRETS_CHOICES, "local"),
            kms_key_id=_text(env, "KMS_KEY_ID"),
            blobs=_choice(env, "BLOBS", BLOBS_CHOICES, "local"),
            blob_bucket=_text(env, "BLOB_BUCKET"),
            backup_max_bytes=int(_number(env, "BACKUP_MAX_BYTES", DEFAULT_BACKUP_MAX_BYTES, minimum=1)),
            firmware_max_bytes=int(_number(env, "FIRMWARE_MAX_BYTES", DEFAULT_FIRMWARE_MAX_BYTES, minimum=1)),
        )
        if settings.blobs == "s3" and not settings.blob_bucket:
            raise ConfigError("BLOBS=s3 needs BLOB_BUCKET")
        if settings.handler_queue == "sqs" and not settings.handler_queue_url:
            raise ConfigError("HANDLER_QUEUE=sqs needs HANDLER_QUEUE_URL")
        if settings.secrets == "kms" and not settings.kms_key_id:
            raise ConfigError("SECRETS=kms needs KMS_KEY_ID")
        if settings.scheduler == "eventbridge":
            missing = [name for name, value in (("SCHEDULER_TARGET_ARN", settings.scheduler_target_arn),
                                                ("SCHEDULER_ROLE_ARN", settings.scheduler_role_arn)) if not value]
            if missing:
                raise ConfigError(f"SCHEDULER=eventbridge needs {', '.join(missing)}")
        if settings.metrics == "influxdb":
            missing = [name for name, value in (("INFLUXDB_URL", settings.influxdb_url),
                                                ("INFLUXDB_ORG", settings.influxdb_org),
                                                ("INFLUXDB_BUCKET", settings.influxdb_bucket)) if not value]
            if missing:
                raise ConfigError(f"METRICS=influxdb needs {', '.join(missing)}")
        return settings


@dataclass(slots=True)
class Services:
    """The adapters one process uses, built from ``settings``."""

    settings: Settings
    repository: Repository
    metrics: MetricStore
    bus: EventBus
    downlink: DownlinkSender
    extras: dict[str, Any] = field(default_factory=dict)
    """Room for what the local stack wants to carry along (its ingest queue, simulator…)."""
    schedules: ScheduleRegistry | None = None
    """Where schedule and interval-task triggers are kept; ``None``: not kept in step (tests, tools)."""
    handler_queue: HandlerQueue | None = None
    """Where tasks and schedules queue handler runs; ``None``: handlers are not run (tests, tools)."""
    signing_secret: SigningSecret | None = None
    """The JWT signing key's source; ``None``: built from ``settings`` on first use (``build_signing_secret``)."""
    shadow: ShadowStore | None = None
    """Edge devices' shadows (gateway configs from the cloud); ``None``: gateway upserts do not reach edges."""
    secrets: SecretBox | None = None
    blobs: BlobStore | None = None
    """Firmware files and backups; ``None``: built from ``settings`` on first use (``blob_store``)."""
    """Encrypts handler secrets at rest; ``None``: built from ``settings`` on first use (``secret_box``)."""

    def close(self) -> None:
        """Flush and close what holds state (the memory repository dumps, metric stores flush)."""
        for closer in (self.metrics.flush, self.bus.close, self.metrics.close, self.repository.close):
            try:
                closer()
            except Exception:  # closing one must not keep the others open
                import logging

                logging.getLogger(__name__).exception("closing %s failed", closer)


# --------------------------------------------------------------------------------------------- builders


def build_repository(settings: Settings) -> Repository:
    if settings.storage == "dynamodb":
        from .adapters.repository_dynamodb import DynamoDBRepository

        return DynamoDBRepository(settings.table_name, settings.aws_region, settings.dynamodb_endpoint)
    from .adapters.repository_memory import MemoryRepository

    return MemoryRepository(settings.data_dir / "repository", settings.dump_interval_s)


def build_metrics(settings: Settings) -> MetricStore:
    if settings.metrics == "none":
        from .adapters.metrics_none import NoMetricStore

        return NoMetricStore()
    if settings.metrics == "influxdb":
        from .adapters.metrics_influxdb import InfluxDBMetricStore

        return InfluxDBMetricStore(url=settings.influxdb_url or "", token=settings.influxdb_token or "",
                                   org=settings.influxdb_org or "", bucket=settings.influxdb_bucket or "")
    from .adapters.metrics_embedded import EmbeddedMetricStore

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return EmbeddedMetricStore(settings.data_dir / "metrics.sqlite3")


def build_bus(settings: Settings) -> EventBus:
    if settings.bus == "eventbridge":
        from .adapters.bus_eventbridge import EventBridgeBus

        return EventBridgeBus(settings.event_bus_name)
    from .adapters.bus_local import LocalEventBus

    return LocalEventBus("sync")


def build_downlink(settings: Settings) -> DownlinkSender:
    if settings.downlink == "iotdata":
        import boto3

        from .adapters.downlink_iotdata import IotDataDownlink

        client = boto3.client("iot-data", region_name=settings.aws_region, endpoint_url=settings.iot_data_endpoint)
        return IotDataDownlink(client=client, topic_prefix=settings.topic_prefix)
    from .adapters.downlink_local import LocalDownlink

    return LocalDownlink()


def build_schedules(settings: Settings) -> ScheduleRegistry:
    if settings.scheduler == "eventbridge":
        from .adapters.schedules_eventbridge import EventBridgeScheduleRegistry

        return EventBridgeScheduleRegistry(settings.scheduler_target_arn or "", settings.scheduler_role_arn or "",
                                           settings.scheduler_group, region=settings.aws_region)
    from .adapters.schedules_local import LocalScheduleRegistry

    return LocalScheduleRegistry()


def build_signing_secret(settings: Settings) -> SigningSecret:
    if settings.signing_secret == "ssm":
        from .adapters.signing_secret_ssm import SsmSigningSecret

        return SsmSigningSecret(settings.signing_secret_parameter, settings.aws_region)
    from .adapters.signing_secret_local import FILE_NAME, LocalSigningSecret

    return LocalSigningSecret(settings.data_dir / FILE_NAME)


def build_shadow(settings: Settings) -> ShadowStore:
    if settings.shadow == "iotdata":
        from .adapters.shadow_iotdata import IotDataShadowStore

        return IotDataShadowStore(shadow_name=settings.shadow_name, region=settings.aws_region,
                                  endpoint_url=settings.iot_data_endpoint)
    from .adapters.shadow_local import LocalShadowStore

    return LocalShadowStore(shadow_name=settings.shadow_name)


def build_secrets(settings: Settings) -> SecretBox:
    if settings.secrets == "kms":
        from .adapters.secrets_kms import KmsSecretBox

        return KmsSecretBox(settings.kms_key_id or "", region=settings.aws_region)
    from .adapters.secrets_local import LocalSecretBox

    return LocalSecretBox(settings.data_dir / "secret.key")


def _built_once(services: Services, attribute: str, build: Callable[[Settings], Any]) -> Any:
    """``services.<attribute>``, built from the services' settings on first use (adapters few requests need)."""
    if getattr(services, attribute) is None:
        with _lock:
            if getattr(services, attribute) is None:
                setattr(services, attribute, build(services.settings))
    return getattr(services, attribute)


def secret_box(services: Services) -> SecretBox:
    """The services' secret box, built on first use (API upserts, the handler function)."""
    box: SecretBox = _built_once(services, "secrets", build_secrets)
    return box


def build_blobs(settings: Settings) -> BlobStore:
    if settings.blobs == "s3":
        from .adapters.blob_s3 import S3BlobStore

        return S3BlobStore(settings.blob_bucket or "", region=settings.aws_region)
    from .adapters.blob_local import LocalBlobStore

    return LocalBlobStore(settings.data_dir / "blobs")


def blob_store(services: Services) -> BlobStore:
    """The services' blob store, built on first use (firmware and backup routes)."""
    blobs: BlobStore = _built_once(services, "blobs", build_blobs)
    return blobs


def build_handler_queue(settings: Settings) -> HandlerQueue | None:
    """The SQS handler queue; ``None`` for ``local`` (the local stack builds its in-process queue itself)."""
    if settings.handler_queue == "sqs":
        from .adapters.handler_queue_sqs import SqsHandlerQueue

        return SqsHandlerQueue(settings.handler_queue_url or "", region=settings.aws_region)
    return None


def build_services(settings: Settings | None = None) -> Services:
    """Every adapter the settings select (``Settings.from_env()`` when none are given)."""
    settings = settings or Settings.from_env()
    repository = build_repository(settings)
    return Services(settings=settings, repository=repository, metrics=build_metrics(settings),
                    bus=build_bus(settings), downlink=build_downlink(settings),
                    schedules=build_schedules(settings), shadow=build_shadow(settings),
                    handler_queue=build_handler_queue(settings))


# --------------------------------------------------------------------------------------------- the cache

_lock = threading.Lock()
_services: Services | None = None
_ingest: Ingest | None = None


def get_services() -> Services:
    """The process's services, built on first use (a cold start) and shared afterwards."""
    global _services
    services = _services
    if services is not None:
        return services
    with _lock:
        if _services is None:
            _services = build_services()
        return _services


def set_services(services: Services) -> None:
    """Use these services from now on (tests, the local stack). The previous ones are not closed."""
    global _services, _ingest
    with _lock:
        _services = services
        _ingest = None


def reset_services(*, close: bool = False) -> None:
    """Forget the current services (closing them first if asked); the next ``get_services`` builds anew."""
    global _services, _ingest
    with _lock:
        services, _services, _ingest = _services, None, None
    if close and services is not None:
        services.close()


def get_ingest() -> Ingest:
    """The ingest function's runner over the current services, built once like them."""
    global _ingest
    ingest = _ingest
    if ingest is not None:
        return ingest
    services = get_services()
    with _lock:
        if _ingest is None:
            from .core.processor import Processor
            from .ingest import Ingest

            _ingest = Ingest(Processor(services.repository, services.metrics), services.bus, services.downlink)
        return _ingest


# --------------------------------------------------------------------------------------------- websocket

_websocket: WebsocketService | None = None


def build_websocket(settings: Settings) -> WebsocketService:
    """Connections in DynamoDB and pushes through API Gateway when ``STORAGE=dynamodb`` (AWS), else in memory with
    the local notifier (the local stack registers its connections with it)."""
    from .websocket import WebsocketService

    if settings.storage == "dynamodb":
        from .adapters.connections_dynamodb import DynamoDBConnectionStore
        from .adapters.notifier_apigw import ApiGatewayNotifier

        return WebsocketService(
            DynamoDBConnectionStore(settings.connections_table, settings.aws_region, settings.dynamodb_endpoint),
            ApiGatewayNotifier(settings.websocket_endpoint, settings.aws_region),
            index_ttl_s=settings.ws_index_ttl_s)
    from .adapters.connections_memory import MemoryConnectionStore
    from .adapters.notifier_local import LocalNotifier

    return WebsocketService(MemoryConnectionStore(), LocalNotifier())


def get_websocket() -> WebsocketService:
    """The process's websocket service, built on first use from the current services' settings."""
    global _websocket
    websocket = _websocket
    if websocket is not None:
        return websocket
    settings = get_services().settings
    with _lock:
        if _websocket is None:
            _websocket = build_websocket(settings)
        return _websocket


def set_websocket(websocket: WebsocketService | None) -> None:
    """Use this websocket service from now on (tests, the local stack); ``None``: build anew on next use."""
    global _websocket
    with _lock:
        _websocket = websocket
