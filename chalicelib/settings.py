"""What one process is configured with: every setting, its environment variable, default and meaning, once.

``Settings.from_env()`` reads and checks the environment, naming the variable at fault (``SettingsError``). The
configuration reference (``docs/configuration.md``) is generated from the fields below
(``python -m chalicelib.settings > docs/configuration.md``) and a test holds the two together, so the table
cannot drift from the code. The defaults are the embedded local set-up; the AWS template sets the rest.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any, Final

DEFAULT_MAX_BODY_BYTES: Final = 1024 * 1024
DEFAULT_BACKUP_MAX_BYTES: Final = 50 * 1024 * 1024
DEFAULT_FIRMWARE_MAX_BYTES: Final = 16 * 1024 * 1024
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
OTHER_VARIABLES: Final = (
    ("MC_HOST", "text", "`127.0.0.1`", "where `make run` listens (API, websocket and console on one port)"),
    ("MC_PORT", "integer", "`8000`", "the port of `make run`"),
    ("POWERTOOLS_SERVICE_NAME", "text", "`mycontroller`", "the service named in every log line (each Lambda "
     "function has its own; `make run`: `mycontroller-local`)"),
    ("LOGIN_MESSAGE", "text", "(empty)", "the message `/api/status` gives the console's login page"),
    ("DOCUMENTATION_URL", "text", "`https://v2.mycontroller.org`", "the documentation link `/api/status` gives"),
    ("GIT_COMMIT", "text", "`none`", "the build's commit, shown by `/api/version` (set by the deployment)"),
    ("BUILD_DATE", "text", "`none`", "the build's date, shown by `/api/version` (set by the deployment)"),
)
"""Read by the local stack, the logging set-up or the status routes rather than by ``Settings``; in the reference
all the same."""
_ORIGIN: Final = re.compile(r"^https?://(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d{1,5})?\Z")
ADMIN_PASSWORD_ENV: Final = "MC_ADMIN_PASSWORD"
"""Read when the first user is created, never kept in ``Settings`` (a password does not belong in a repr)."""


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the environment variable."""


def setting(env: str, default: Any, doc: str, *, choices: tuple[str, ...] = (), kind: str = "text",
            minimum: float = 0, secret: bool = False) -> Any:
    """A field read from ``env``: ``kind`` is text, choice, number, int, path or level (``LOG_LEVELS``)."""
    if choices:
        kind = "choice"
    return field(default=default, repr=not secret,
                 metadata={"env": env, "doc": doc, "choices": choices, "kind": kind, "minimum": minimum})


def _parse(meta: Mapping[str, Any], raw: str | None, default: Any) -> Any:
    name, kind = meta["env"], meta["kind"]
    text = (raw or "").strip()
    if not text:
        return default
    if kind == "choice":
        value = text.lower()
        if value not in meta["choices"]:
            raise SettingsError(f"{name}={value!r} is not one of {', '.join(meta['choices'])}")
        return value
    if kind == "level":
        value = text.upper()
        if value not in LOG_LEVELS:
            raise SettingsError(f"{name}={text!r} is not one of {', '.join(LOG_LEVELS)}")
        return value
    if kind in ("number", "int"):
        try:
            number = float(text)
        except ValueError:
            raise SettingsError(f"{name}={text!r} is not a number") from None
        if number < meta["minimum"]:
            raise SettingsError(f"{name}={text!r} must be at least {meta['minimum']:g}")
        return int(number) if kind == "int" else number
    if kind == "path":
        return Path(text)
    return text


@dataclass(frozen=True, slots=True)
class Settings:
    """What the environment selects. Adapters are chosen here, once per process (a cold start, ``make run``)."""

    storage: str = setting("STORAGE", "sqlite", "where resources are kept: SQLite (`DATA_DIR/repository.sqlite3`, "
                           "each write on disk before it is answered; a memory repository's dump in "
                           "`DATA_DIR/repository/` is migrated on the first start), the memory repository (dumped to "
                           "`DATA_DIR/repository/` every `DUMP_INTERVAL_S`: a crash loses up to that much; for tests "
                           "and benchmarks) or DynamoDB", choices=("sqlite", "memory", "dynamodb"))
    table_name: str = setting("TABLE_NAME", "mycontroller", "the DynamoDB table (`STORAGE=dynamodb`)")
    dynamodb_endpoint: str | None = setting("DYNAMODB_ENDPOINT", None, "DynamoDB endpoint URL (DynamoDB Local); "
                                            "empty: AWS")
    aws_region: str = setting("AWS_REGION", "us-east-1", "region of the AWS adapters (falls back to "
                              "`AWS_DEFAULT_REGION`)")
    data_dir: Path = setting("DATA_DIR", Path(".mycontroller"), "where the SQLite or memory repository, the embedded "  # noqa: RUF009
                             "metric store, blobs and local keys live", kind="path")
    dump_interval_s: float = setting("DUMP_INTERVAL_S", 60.0, "seconds between memory repository dumps "
                                     "(`STORAGE=memory`; also on stop; 0: on stop only)", kind="number")
    metrics: str = setting("METRICS", "embedded", "the metric store: embedded (SQLite, `DATA_DIR/metrics.sqlite3`), "
                           "InfluxDB 2, or none", choices=("embedded", "influxdb", "none"))
    influxdb_url: str | None = setting("INFLUXDB_URL", None, "InfluxDB 2 URL (`METRICS=influxdb`)")
    influxdb_token: str | None = setting("INFLUXDB_TOKEN", None, "InfluxDB 2 token (locally; in AWS "
                                         "`INFLUXDB_TOKEN_SECRET`)", secret=True)
    influxdb_token_secret: str | None = setting("INFLUXDB_TOKEN_SECRET", None, "the Secrets Manager secret (name or "
                                                "ARN) holding the InfluxDB credentials, in place of `INFLUXDB_TOKEN`: "
                                                "a token (the text, or JSON with `token`), or JSON with `username` "
                                                "and `password` (the secret Timestream for InfluxDB keeps)")
    influxdb_org: str | None = setting("INFLUXDB_ORG", None, "InfluxDB 2 organisation")
    influxdb_bucket: str | None = setting("INFLUXDB_BUCKET", None, "InfluxDB 2 bucket")
    bus: str = setting("BUS", "local", "the event bus: in-process (EventBridge-style patterns) or an EventBridge "
                       "custom bus", choices=("local", "eventbridge"))
    event_bus_name: str = setting("EVENT_BUS_NAME", "mycontroller", "the EventBridge bus (`BUS=eventbridge`)")
    downlink: str = setting("DOWNLINK", "local", "how commands reach gateways: in-process, or iot-data publishes "
                            "to the gateways' down topics", choices=("local", "iotdata"))
    topic_prefix: str = setting("TOPIC_PREFIX", "mc", "prefix of the edge topics (`<prefix>/<thing>/...`)")
    iot_data_endpoint: str | None = setting("IOT_DATA_ENDPOINT", None, "iot-data endpoint URL; empty: the "
                                            "account's, found by boto3")
    max_body_bytes: int = setting("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, "largest API request body; larger is "
                                  "a 413", kind="int", minimum=1)
    log_level: str = setting("LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING, ERROR or CRITICAL", kind="level")
    scheduler: str = setting("SCHEDULER", "local", "where enabled schedules and interval tasks are registered: a "
                             "local timer or EventBridge Scheduler", choices=("local", "eventbridge"))
    scheduler_target_arn: str | None = setting("SCHEDULER_TARGET_ARN", None, "the function every schedule invokes "
                                               "(`SCHEDULER=eventbridge`, required)")
    scheduler_role_arn: str | None = setting("SCHEDULER_ROLE_ARN", None, "the role EventBridge Scheduler assumes "
                                             "(`SCHEDULER=eventbridge`, required)")
    scheduler_group: str = setting("SCHEDULER_GROUP", "mycontroller", "the schedule group")
    signing_secret: str = setting("SIGNING_SECRET", "local", "where the JWT signing key lives: `DATA_DIR/jwt-secret` "
                                  "(mode 0600) or an SSM SecureString; created on first use",
                                  choices=("local", "ssm"))
    signing_secret_parameter: str = setting("SIGNING_SECRET_PARAMETER", "/mycontroller/jwt-secret",
                                            "the SSM parameter (`SIGNING_SECRET=ssm`)")
    admin_password_secret: str | None = setting("ADMIN_PASSWORD_SECRET", None, "the Secrets Manager secret (name "
                                                 "or ARN) holding the first `admin` user's password, read when no "
                                                 "user exists yet (the stack's `AdminPassword`); empty: "
                                                 "`MC_ADMIN_PASSWORD`")
    login_free_failures: int = setting("LOGIN_FREE_FAILURES", 5, "failed logins a username, and a client address, "
                                       "may make within `LOGIN_WINDOW_S` before logins are answered 429 with "
                                       "`Retry-After`", kind="int", minimum=1)
    login_window_s: int = setting("LOGIN_WINDOW_S", 900, "seconds after its last failure that a username's or an "
                                  "address's failed logins are forgotten", kind="int", minimum=1)
    login_lock_s: int = setting("LOGIN_LOCK_S", 30, "seconds of the first lock after the free failures; each "
                                "further failure doubles it", kind="int", minimum=1)
    login_lock_max_s: int = setting("LOGIN_LOCK_MAX_S", 900, "the longest lock", kind="int", minimum=1)
    shadow: str = setting("SHADOW", "local", "where gateway configs for edge devices (`edgeId`) are written and "
                          "their reported state read: in-process or AWS IoT device shadows",
                          choices=("local", "iotdata"))
    shadow_name: str = setting("SHADOW_NAME", "mycontroller", "the named shadow (set but empty: the classic shadow)")
    connections_table: str = setting("CONNECTIONS_TABLE", "mycontroller-connections", "websocket connections "
                                     "table when `STORAGE=dynamodb` (in memory otherwise)")
    websocket_endpoint: str | None = setting("WEBSOCKET_ENDPOINT", None, "API Gateway websocket management "
                                             "endpoint for the bus-fed notify function; the `on_ws_*` handlers "
                                             "learn it from their event")
    ws_index_ttl_s: float = setting("WS_INDEX_TTL_S", 1.0, "seconds notify trusts its subscription index built "
                                    "from the DynamoDB connections", kind="number")
    ws_revalidate_s: float = setting("WS_REVALIDATE_S", 2.0, "seconds between re-checks of open websockets' "
                                     "sessions (a logged-out, changed or deleted principal's sockets close); a "
                                     "revocation closes them at once through the bus", kind="number", minimum=0.1)
    notify_audience: str = setting("NOTIFY_AUDIENCE", "all", "which of this process's bus events reach the "
                                   "websocket notifier in AWS: `all`, or only those some live connection subscribed "
                                   "to (`subscribed`: the publisher reads the connections at most every "
                                   "`WS_INDEX_TTL_S`; the stack sets it on the ingest function)",
                                   choices=("all", "subscribed"))
    consumer_audience: str = setting("CONSUMER_AUDIENCE", "all", "which of this process's bus events reach the tasks "
                                     "and forward payload functions in AWS: `all`, or only those an enabled task's "
                                     "event filter or forward payload's source field takes (`interested`: the "
                                     "publisher reads the tasks and forward payloads at most every 5 s, and leaves "
                                     "out of the bus what no consumer, the notifier included, wants; the stack sets "
                                     "it on the ingest function)", choices=("all", "interested"))
    last_seen_interval_s: float = setting("LAST_SEEN_INTERVAL_S", 60.0, "seconds between writes of a node's and a "
                                          "source's `lastSeen` while it keeps reporting (its fields are written "
                                          "with every value); keep it well under the nodes' inactive duration "
                                          "(15 minutes by default); the stack sets it from its `LastSeenInterval`",
                                          kind="number", minimum=1)
    unchanged_value_interval_s: float = setting(
        "UNCHANGED_VALUE_INTERVAL_S", 0.0, "seconds between writes of a field whose reading repeats its stored value: "
        "within them a reading equal to the stored one is not written (its `current` time and `lastSeen` stay as "
        "stored, up to this old), but still goes to the metric store and is announced as an update with its own "
        "time; 0 writes every reading; the stack sets it on the ingest function from its `LastSeenInterval`",
        kind="number", minimum=0)
    keep_records_s: float = setting(
        "KEEP_RECORDS_S", 0.0, "seconds the ingest takes a node or source it read as read, with its version, instead "
        "of reading it again every batch (its write is conditional on that version: a change made meanwhile is read "
        "and kept); an edit of a node's or source's labels reaches the ingest's choices within it; 0 reads every "
        "batch; the stack sets it on the ingest function from its `LastSeenInterval`", kind="number", minimum=0)
    handler_queue: str = setting("HANDLER_QUEUE", "local", "where handler runs queue: the in-process queue or "
                                 "SQS", choices=("local", "sqs"))
    handler_queue_url: str | None = setting("HANDLER_QUEUE_URL", None, "the handler queue's URL "
                                            "(`HANDLER_QUEUE=sqs`, required)")
    ingest_dead_letters: str = setting("INGEST_DEAD_LETTERS", "local", "where device messages that fail for good "
                                       "(unreadable, invalid, or needing a stored record that cannot be read) are "
                                       "kept at once, with the reason, instead of being retried: "
                                       "`DATA_DIR/ingest-dead-letters.jsonl` or the ingest queue's SQS dead-letter "
                                       "queue", choices=("local", "sqs"))
    ingest_dead_letter_queue_url: str | None = setting("INGEST_DEAD_LETTER_QUEUE_URL", None, "that queue's URL "
                                                       "(`INGEST_DEAD_LETTERS=sqs`, required)")
    secrets: str = setting("SECRETS", "local", "how handler secrets are encrypted at rest: AES-256-GCM with "
                           "`DATA_DIR/secret.key` (0600) or KMS", choices=("local", "kms"))
    kms_key_id: str | None = setting("KMS_KEY_ID", None, "the KMS key id, ARN or alias (`SECRETS=kms`, required)")
    blobs: str = setting("BLOBS", "local", "where firmware files and backups are kept: `DATA_DIR/blobs` or S3",
                         choices=("local", "s3"))
    blob_bucket: str | None = setting("BLOB_BUCKET", None, "the bucket (`BLOBS=s3`, required)")
    upload_bucket: str | None = setting("UPLOAD_BUCKET", None, "the bucket clients send files to through presigned "
                                        "uploads, which the API then takes (`BLOBS=s3`; empty: `BLOB_BUCKET`; the "
                                        "stack's has CORS for the console and expires what is left after a day)")
    backup_max_bytes: int = setting("BACKUP_MAX_BYTES", DEFAULT_BACKUP_MAX_BYTES, "largest backup archive made, "
                                    "uploaded or restored", kind="int", minimum=1)
    firmware_max_bytes: int = setting("FIRMWARE_MAX_BYTES", DEFAULT_FIRMWARE_MAX_BYTES, "largest firmware upload "
                                      "(in place of `MAX_BODY_BYTES` on that route)", kind="int", minimum=1)
    direct_upload_max_bytes: int | None = setting("DIRECT_UPLOAD_MAX_BYTES", None, "largest file the API takes in "
                                                  "a request body itself (firmware uploads, restores); larger ones "
                                                  "go to presigned URLs when the blob store has them (S3); empty: "
                                                  "`FIRMWARE_MAX_BYTES`/`BACKUP_MAX_BYTES` alone (in AWS 4000000: "
                                                  "Lambda's 6 MB payload, base64 included)", kind="int", minimum=1)
    presign_expires_s: int = setting("PRESIGN_EXPIRES_S", 900, "seconds a presigned upload or download URL "
                                     "stays valid (also the URL an edge fetches a node's firmware from for "
                                     "`firmware_update`)", kind="int", minimum=1)
    email: str = setting("EMAIL", "smtp", "email handlers: SMTP (handlers need a `host`) or SES for handlers "
                         "without one", choices=("smtp", "ses"))
    email_from: str = setting("EMAIL_FROM", "", "default sender when an email handler has none")
    sms: str = setting("SMS", "none", "SMS handlers: none (they fail with a clear message) or Amazon SNS",
                       choices=("none", "sns"))
    telegram_api_url: str = setting("TELEGRAM_API_URL", "https://api.telegram.org", "Telegram bot API base URL")
    mqtt_broker: str = setting("MQTT_BROKER", "", "the platform broker of MQTT handlers without a `broker` "
                               "(`mqtt://host:1883`); with `DOWNLINK=iotdata` they publish through iot-data")
    outbound_private: str = setting("OUTBOUND_PRIVATE", "auto", "whether webhook handlers and webhook variables may "
                                    "reach private networks (10/8, 172.16/12, 192.168/16, fc00::/7…): `auto` allows "
                                    "them except in AWS Lambda; loopback and link-local addresses are refused "
                                    "always, and hosts or networks listed in the system settings' `outbound.allow` "
                                    "are allowed always", choices=("auto", "allow", "deny"))
    cors_origins: str = setting("CORS_ORIGINS", "", "origins (`https://console.example.org`, comma-separated, or "
                                "`*`) whose pages may call the API from another origin; empty: none, the console "
                                "and the API share one origin (`make run`, the stack's distribution)")
    max_connections: int = setting("MAX_CONNECTIONS", 1000, "`make run`: open connections at most (HTTP and "
                                   "websocket); past it the oldest connection still waiting for a request is "
                                   "closed", kind="int", minimum=16)
    request_timeout_s: float = setting("REQUEST_TIMEOUT_S", 10.0, "`make run`: seconds a client has to send a "
                                       "request's headers, and at most between two parts of its body, before its "
                                       "connection is closed", kind="number", minimum=0.5)
    forwarded_allow_ips: str = setting("FORWARDED_ALLOW_IPS", "", "`make run` behind a reverse proxy: the "
                                       "proxies' addresses (comma-separated, or `*`) whose `X-Forwarded-For` and "
                                       "`X-Forwarded-Proto` are believed; empty: none, the peer is the client")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for item in fields(cls):
            meta = item.metadata
            raw = env.get(meta["env"])
            if item.name == "aws_region" and not (raw or "").strip():
                raw = env.get("AWS_DEFAULT_REGION")
            values[item.name] = _parse(meta, raw, item.default)
        if "SHADOW_NAME" in env:  # set but empty: the classic shadow
            values["shadow_name"] = (env["SHADOW_NAME"] or "").strip()
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        """Settings that need others: raise naming every missing variable."""
        needs: list[tuple[bool, str, tuple[tuple[str, Any], ...]]] = [
            (self.blobs == "s3", "BLOBS=s3", (("BLOB_BUCKET", self.blob_bucket),)),
            (self.handler_queue == "sqs", "HANDLER_QUEUE=sqs", (("HANDLER_QUEUE_URL", self.handler_queue_url),)),
            (self.ingest_dead_letters == "sqs", "INGEST_DEAD_LETTERS=sqs",
             (("INGEST_DEAD_LETTER_QUEUE_URL", self.ingest_dead_letter_queue_url),)),
            (self.secrets == "kms", "SECRETS=kms", (("KMS_KEY_ID", self.kms_key_id),)),
            (self.scheduler == "eventbridge", "SCHEDULER=eventbridge",
             (("SCHEDULER_TARGET_ARN", self.scheduler_target_arn), ("SCHEDULER_ROLE_ARN", self.scheduler_role_arn))),
            (self.metrics == "influxdb", "METRICS=influxdb",
             (("INFLUXDB_URL", self.influxdb_url), ("INFLUXDB_ORG", self.influxdb_org),
              ("INFLUXDB_BUCKET", self.influxdb_bucket))),
        ]
        for selected, choice, required in needs:
            missing = [name for name, value in required if not value]
            if selected and missing:
                raise SettingsError(f"{choice} needs {', '.join(missing)}")
        self.allowed_origins()

    def allowed_origins(self) -> tuple[str, ...]:
        """``CORS_ORIGINS`` as origins (``scheme://host[:port]``, lower case) or ``("*",)``; () for none."""
        origins: list[str] = []
        for item in self.cors_origins.split(","):
            origin = item.strip().rstrip("/").lower()
            if not origin:
                continue
            if origin != "*" and not _ORIGIN.match(origin):
                raise SettingsError(f"CORS_ORIGINS: {item.strip()!r} is not an origin (scheme://host[:port], no "
                                    "path) or *")
            origins.append(origin)
        if "*" in origins and len(origins) > 1:
            raise SettingsError("CORS_ORIGINS: * allows every origin; list origins or give * alone")
        return tuple(dict.fromkeys(origins))


def _default_text(item: Field[Any]) -> str:
    default = item.default
    if default is None or default == "":
        return "(empty)"
    return f"`{default}`"


def reference(write: Callable[[str], Any] = sys.stdout.write) -> None:
    """The configuration reference as Markdown (``docs/configuration.md``), from the fields above."""
    write("# Configuration\n\n"
          "Every setting is an environment variable, read once per process (a Lambda cold start, `make run`).\n"
          "The defaults are the embedded local set-up; the AWS template sets the others. Generated from\n"
          "`chalicelib/settings.py` by `python -m chalicelib.settings > docs/configuration.md`.\n\n"
          "| variable | values | default | what it sets |\n|---|---|---|---|\n")
    for item in fields(Settings):
        meta = item.metadata
        values = ", ".join(f"`{choice}`" for choice in meta["choices"]) or {
            "number": "number", "int": "integer", "path": "path", "level": "level"}.get(meta["kind"], "text")
        write(f"| `{meta['env']}` | {values} | {_default_text(item)} | {meta['doc']} |\n")
    write(f"| `{ADMIN_PASSWORD_ENV}` | text | (empty) | the first `admin` user's password when no user exists yet "
          "(read at that moment, never stored in the settings); empty: a generated one is printed once |\n")
    for env, values, default, doc in OTHER_VARIABLES:
        write(f"| `{env}` | {values} | {default} | {doc} |\n")


if __name__ == "__main__":
    reference()
