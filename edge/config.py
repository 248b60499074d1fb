"""The edge agent's configuration: one YAML file (``edge.yaml``), checked before anything starts.

A typo in the field should stop the agent at start with a message naming the key (``gateways[1].provider.
protocol.baudRate: …``), not make a gateway misbehave an hour later. Gateway entries keep the reference's
shape and camelCase names (``provider: {type: mysensors_v2, protocol: {type: serial, portname, baudRate}}``)
so that configs written for MyController v2 work; keys this schema does not know are kept and handed to the
plugin unchanged.

Relative paths (``edge.data_dir``, ``spool.path``, TLS files) are resolved against the directory of the
config file, so that the agent behaves the same whatever directory systemd starts it in. ``${NAME}`` in a
string is replaced by the environment variable ``NAME``, so that passwords need not live in the file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml

from mycontroller_protocol.ids import ID_PATTERN
from mycontroller_protocol.shadow import DEFAULT_SHADOW_NAME

from .errors import EdgeError
from .schema import Model, SecretStr, SectionError, field

DEFAULT_LINGER_MS = 50
"""Uplinks where a publish costs nothing (a local broker, the local stack): hardly any packing window."""
AWS_IOT_LINGER_MS = 1000
"""AWS IoT Core bills every publish: a second of messages a publish (``edge/uplink/packing.py``, ``docs/cost.md``).
The device-to-console budget (2 s at p99) takes it with the cloud's own second to spare."""


def default_linger_ms(uplink_type: str) -> int:
    """The packing window an uplink gets when ``linger_ms`` is not set: long where publishes are billed."""
    return AWS_IOT_LINGER_MS if uplink_type == "aws_iot" else DEFAULT_LINGER_MS


IOT_CORE_MAX_PUBLISH_BYTES = 128 * 1024
"""AWS IoT Core rejects a publish larger than this; no broker we target wants more from one batch."""

SECRET_KEYS = frozenset({"password", "secret", "token", "passphrase", "apikey", "api_key", "apiKey", "encryptionKey",
                         "applicationKey"})
"""Keys whose values never reach a log line or the status file."""

_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class EdgeConfigError(EdgeError, ValueError):
    """The configuration cannot be used; the message names the file and every bad key."""


class _Strict(Model):
    """Agent-level sections: an unknown key is a typo, and a typo should be reported."""


class _Open(Model):
    """Gateway sections: unknown keys belong to the plugin and are passed through untouched."""

    extra_allowed = True


def _check_id(value: str, what: str) -> str:
    if not ID_PATTERN.match(value):
        raise ValueError(f"{what} {value!r} must be 1-128 letters, digits, '_', '-', ':', '@' or '~' "
                         "(it is part of MQTT topics and of dotted resource ids)")
    return value


class EdgeSection(_Strict):
    id: str
    """The device's name: the up topic is ``<topic_prefix>/<id>/up`` and the default MQTT client id."""
    data_dir: Path = Path("data")
    """Spool, status file and the gateways' own state (sleep queues) live here."""
    status_interval_s: float = field(default=5.0, gt=0, le=3600)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    cloud_config: bool = False
    """Also run the gateways the cloud assigns to this device (``edgeId``), from its device shadow
    (``edge/shadow.py``); the file's own ``gateways`` keep running beside them."""
    shadow_name: str = DEFAULT_SHADOW_NAME
    """The named shadow holding the cloud's config; ``""``: the classic shadow."""

    field_checks = {"id": lambda value: _check_id(value, "edge id"),
                    "shadow_name": lambda value: value if value == "" else _check_id(value, "shadow name")}


class TlsSection(_Strict):
    ca: Path | None = None
    """CA bundle to trust (AWS: AmazonRootCA1.pem); the system trust store when unset."""
    cert: Path | None = None
    """Client certificate for mutual TLS (AWS IoT Core: the thing's certificate)."""
    key: Path | None = None
    """The certificate's private key (a path: the key itself never enters the config)."""

    def check(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise ValueError("tls.cert and tls.key go together (mutual TLS needs both)")


class UplinkSection(_Strict):
    type: Literal["aws_iot", "mqtt", "inprocess"] = "mqtt"
    endpoint: str | None = None
    """AWS IoT Core data endpoint (``xxxx-ats.iot.<region>.amazonaws.com``); ``host`` is accepted too."""
    host: str | None = None
    port: int | None = field(default=None, ge=1, le=65535)
    """Default 8883 with TLS (and for AWS IoT Core), 1883 without."""
    tls: TlsSection | None = None
    client_id: str | None = None
    """Default: the edge id. AWS IoT Core policies usually require the thing name here."""
    username: str | None = None
    password: SecretStr | None = None
    topic_prefix: str = "mc"
    ingest_rule: str | None = field(default=None, pattern=r"^[A-Za-z0-9_]{1,128}$")
    """``aws_iot`` only: publish the uplink through IoT Basic Ingest to this rule (``$aws/rules/<rule>/mc/<id>/up``),
    which skips IoT Core's messaging charge; the stack's ``IngestRuleName`` output, which ``infra.provision``
    writes here. Unset: the plain uplink topic (the rule takes both)."""
    keep_alive: int = field(default=60, ge=5, le=1200)
    """Seconds between pings when idle (AWS IoT Core accepts 30-1200)."""
    session_expiry: int = field(default=3600, ge=0, le=7 * 24 * 3600)
    """Seconds the broker keeps our session (and downlinks queued for it) while we are offline."""
    max_publish_bytes: int = field(default=5_000, ge=512, le=IOT_CORE_MAX_PUBLISH_BYTES)
    """Envelopes are packed into publishes up to this size; AWS IoT Core bills per started 5 KB."""
    linger_ms: int | None = field(default=None, ge=0, le=10_000)
    """How long a publish that is not full waits for more envelopes; commands, requests and presentations never
    wait (``uplink/packing.py``). Unset: 1000 for ``aws_iot`` (every publish is billed), 50 otherwise."""
    max_publishes_per_s: float = field(default=50.0, gt=0, le=1000)
    """AWS IoT Core allows about 100 publishes a second per connection; stay under it."""
    max_in_flight: int = field(default=16, ge=1, le=100)
    """Publishes awaiting their PUBACK at once. Pipelining hides the round trip to the cloud, and the awscrt
    client writes a publish over 4 KB in two socket writes, which Nagle plus delayed ACKs hold back by ~40 ms
    even on loopback; 16 in flight keeps 50 publishes/s flowing regardless (AWS IoT Core allows 100)."""
    ack_timeout_s: int = field(default=60, ge=1, le=3600)
    """A publish not acknowledged within this time is sent again (at-least-once)."""
    min_reconnect_delay_ms: int = field(default=250, ge=10)
    max_reconnect_delay_ms: int = field(default=30_000, ge=100)

    @staticmethod
    def _host(value: str | None) -> str | None:
        if value is not None and ("/" in value or not value.strip()):
            raise ValueError(f"{value!r} is not a host name: write the broker's name or address alone (a URL such "
                             "as tcp://host:1883 or http://… is not one), and its port as 'port'")
        return value

    @staticmethod
    def _prefix(value: str) -> str:
        value = value.strip("/")
        if not value or any(c in value for c in "+#"):
            raise ValueError("topic_prefix must be a non-empty topic without wildcards")
        return value

    field_checks = {"host": _host, "endpoint": _host, "topic_prefix": _prefix}

    def check(self) -> None:
        if self.type == "aws_iot":
            if not (self.endpoint or self.host):
                raise ValueError("uplink.endpoint is required for aws_iot")
            if self.tls is None or self.tls.cert is None:
                raise ValueError("uplink.tls.cert and uplink.tls.key are required for aws_iot (mutual TLS)")
        elif self.type == "mqtt" and not (self.host or self.endpoint):
            raise ValueError("uplink.host is required for mqtt")
        if self.ingest_rule and self.type != "aws_iot":
            raise ValueError("uplink.ingest_rule is AWS IoT Basic Ingest: for type aws_iot only")
        if self.max_reconnect_delay_ms < self.min_reconnect_delay_ms:
            raise ValueError("uplink.max_reconnect_delay_ms must not be below min_reconnect_delay_ms")

    @property
    def linger_s(self) -> float:
        """The packing window in seconds, with the uplink's default applied."""
        return (self.linger_ms if self.linger_ms is not None else default_linger_ms(self.type)) / 1000

    @property
    def address(self) -> tuple[str, int]:
        """Host and port the client connects to, with the defaults applied."""
        host = self.endpoint or self.host or ""
        secure = self.type == "aws_iot" or self.tls is not None
        return host, self.port or (8883 if secure else 1883)


class SpoolSection(_Strict):
    path: Path | None = None
    """Default: ``<data_dir>/spool.sqlite``."""
    max_bytes: int = field(default=256 * 1024 * 1024, ge=64 * 1024)
    max_messages: int = field(default=1_000_000, ge=100)
    synchronous: Literal["normal", "full"] = "normal"
    """``normal``: an append survives the agent's crash or SIGKILL, the last ones may not survive a power loss;
    ``full``: an fsync per append, survives power loss too (slow on SD cards)."""


class ProtocolSection(_Open):
    type: str = ""
    portname: str | None = None
    baudRate: int | None = field(default=None, gt=0)  # the reference's camelCase name
    server: str | None = None
    broker: str | None = None
    subscribe: str | None = None
    publish: str | None = None
    username: str | None = None
    password: str | None = None
    qos: int | None = field(default=None, ge=0, le=2)
    insecure: bool | None = None
    transmitPreDelay: str | float | None = None  # the reference's camelCase name

    def check(self) -> None:
        needs = {"serial": "portname", "ethernet": "server", "mqtt": "broker"}.get(self.type)
        if needs and not getattr(self, needs):
            raise ValueError(f"protocol type {self.type!r} needs {needs!r}")


class ProviderSection(_Open):
    type: str
    protocol: ProtocolSection | None = None


class GatewaySection(_Open):
    id: str
    description: str = ""
    enabled: bool = True
    provider: ProviderSection
    labels: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def _labels(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}
        return value

    field_checks = {"id": lambda value: _check_id(value, "gateway id")}
    before_checks = {"labels": _labels}

    def check(self) -> None:
        """MySensors MQTT topics are prefixes: ``mygateway1-out`` and ``mygateway1-out/#`` mean the same."""
        protocol = self.provider.protocol
        if self.provider.type == "mysensors_v2" and protocol is not None and protocol.type == "mqtt":
            if protocol.subscribe:
                protocol.subscribe = ",".join(prefix_filter(topic) for topic in protocol.subscribe.split(",")
                                              if topic.strip())
            if protocol.publish:
                protocol.publish = topic_prefix(protocol.publish)

    def plugin_config(self) -> dict[str, Any]:
        """The gateway's config as its plugin reads it: the reference's camelCase shape, unknown keys kept."""
        return self.model_dump()


def topic_prefix(topic: str) -> str:
    """``mygateway1-out/#`` → ``mygateway1-out``: the topic levels in front of any wildcard."""
    levels = topic.strip().strip("/").split("/")
    while levels and levels[-1] in ("#", "+", ""):
        levels.pop()
    return "/".join(levels)


def prefix_filter(topic: str) -> str:
    """A topic given as a prefix (``mygateway1-out``) as the filter that receives what is under it
    (``mygateway1-out/#``); a filter (``mygateway1-out/#``, ``a/+/b/#``) stays as it is."""
    topic = topic.strip()
    if "#" in topic or "+" in topic:
        return topic
    return f"{topic.rstrip('/')}/#"


class EdgeConfig(_Strict):
    edge: EdgeSection
    uplink: UplinkSection = field(default_factory=lambda: UplinkSection(type="inprocess"))
    spool: SpoolSection = field(default_factory=SpoolSection)
    gateways: list[GatewaySection] = field(default_factory=list)

    def check(self) -> None:
        seen: set[str] = set()
        for gateway in self.gateways:
            if gateway.id in seen:
                raise ValueError(f"gateway id {gateway.id!r} appears twice")
            seen.add(gateway.id)

    @property
    def spool_path(self) -> Path:
        return self.spool.path or self.edge.data_dir / "spool.sqlite"

    @property
    def status_path(self) -> Path:
        return self.edge.data_dir / "status.json"

    @property
    def client_id(self) -> str:
        return self.uplink.client_id or self.edge.id

    def enabled_gateways(self) -> list[GatewaySection]:
        return [g for g in self.gateways if g.enabled]

    def redacted(self) -> dict[str, Any]:
        """The whole config with secrets masked: what may be logged or shown."""
        return redact(self.model_dump())


def redact(value: Any) -> Any:
    """A copy with the values of secret-looking keys replaced by ``***``."""
    if isinstance(value, dict):
        return {k: "***" if str(k) in SECRET_KEYS and v not in (None, "") else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def _expand_env(value: Any) -> Any:
    if isinstance(value, str):
        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise EdgeConfigError(f"environment variable {name!r} is referenced by the config but not set")
            return os.environ[name]

        return _ENV_REFERENCE.sub(substitute, value)
    if isinstance(value, dict):
        return {k: _expand_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v) for v in value]
    return value


def _location(loc: tuple[int | str, ...], data: Any) -> str:
    """``gateways[1].provider.protocol.baudRate``, with the gateway's id when it has one."""
    text = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            gateway_id = node[part].get("id") if isinstance(node, list) and part < len(node) and isinstance(
                node[part], dict) else None
            text += f"[{part}]" + (f"(id={gateway_id})" if gateway_id and text == "gateways" else "")
            node = node[part] if isinstance(node, list) and part < len(node) else None
        else:
            if part in ("function-after", "function-before", "function-wrap") or "[" in part:
                continue
            text += ("." if text else "") + part
            node = node.get(part) if isinstance(node, dict) else None
    return text or "(top level)"


def format_errors(error: SectionError, data: Any, source: str = "config") -> str:
    lines = [f"{source}: {error.error_count()} problem(s)"]
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check its spelling)"
        lines.append(f"  {_location(tuple(item['loc']), data)}: {message}")
    return "\n".join(lines)


def parse_config(data: Any, base_dir: Path | None = None, source: str = "config") -> EdgeConfig:
    """Validate an already-loaded config (a dict); relative paths are taken from ``base_dir``."""
    if not isinstance(data, dict):
        raise EdgeConfigError(f"{source}: the top level must be a mapping with 'edge', 'uplink', 'spool', 'gateways'")
    data = _expand_env(data)
    try:
        config = EdgeConfig.model_validate(data)
    except SectionError as error:
        raise EdgeConfigError(format_errors(error, data, source)) from None
    if base_dir is not None:
        _resolve_paths(config, base_dir)
    return config


def _resolve_paths(config: EdgeConfig, base: Path) -> None:
    def resolve(path: Path) -> Path:
        path = path.expanduser()
        return path if path.is_absolute() else (base / path).resolve()

    config.edge.data_dir = resolve(config.edge.data_dir)
    if config.spool.path is not None:
        config.spool.path = resolve(config.spool.path)
    tls = config.uplink.tls
    if tls is not None:
        tls.ca = resolve(tls.ca) if tls.ca else None
        tls.cert = resolve(tls.cert) if tls.cert else None
        tls.key = resolve(tls.key) if tls.key else None


def load_config(path: str | Path) -> EdgeConfig:
    """Read and check ``edge.yaml``; raises ``EdgeConfigError`` saying what is wrong and where."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise EdgeConfigError(f"cannot read config {path}: {error.strerror or error}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise EdgeConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    return parse_config(data, path.parent.resolve(), str(path))
