"""The handler: something that acts when a task or schedule fires; its ``spec`` is checked against its ``type``."""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from ...model import CamelModel, State
from .checks import HandlerType, HttpMethod, Timeout, check_url, id_validator, validate_spec


class _Spec(CamelModel):
    """Keys besides a type's own are kept as sent: a spec in MyController v2's names round-trips through its
    console, and the handler function reads those names too (``handlers._merge``)."""

    model_config = {**CamelModel.model_config, "extra": "allow"}


class WebhookHandlerSpec(_Spec):
    url: str = ""
    """Default URL (a parameter may give its own)."""
    method: HttpMethod = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    query_parameters: dict[str, Any] = Field(default_factory=dict)
    expected_status: int = Field(default=200, ge=100, le=599)
    insecure: bool = False
    timeout: Timeout = "10s"
    username: str = ""
    password: str = ""

    @model_validator(mode="before")
    @classmethod
    def _reference_server_and_api(cls, data: Any) -> Any:
        """The reference's webhook handler names ``server`` and ``api``: joined, they are our ``url``."""
        if isinstance(data, dict) and not data.get("url") and isinstance(data.get("server"), str):
            api = data.get("api") if isinstance(data.get("api"), str) else ""
            url = data["server"].rstrip("/") + ("/" + api.lstrip("/") if api else "")
            data = {k: v for k, v in data.items() if k not in ("server", "api")} | {"url": url}
        return data

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_url(value)


class EmailHandlerSpec(_Spec):
    """SES when ``host`` is empty (AWS), SMTP otherwise. MyController v2's names are read too: ``fromEmail``,
    ``toEmails`` (``"a@x,b@y"``) and ``authType``; its email handler always spoke implicit TLS, so a spec in its
    names without ``tls`` gets ``ssl``."""

    sender: str = Field(default="", alias="from")
    to: list[str] = Field(default_factory=list)
    """Default recipients."""
    host: str = ""
    port: int = Field(default=587, ge=1, le=65535)
    username: str = ""
    password: str = ""
    tls: Literal["starttls", "ssl", "none"] = "starttls"

    @model_validator(mode="before")
    @classmethod
    def _reference_tls(cls, data: Any) -> Any:
        if isinstance(data, dict) and "tls" not in data and {"fromEmail", "toEmails", "authType"} & set(data):
            return {**data, "tls": "ssl"}
        return data


class TelegramHandlerSpec(_Spec):
    token: str = Field(min_length=1)
    chat_ids: list[str] = Field(default_factory=list)
    parse_mode: Literal["", "Markdown", "MarkdownV2", "HTML"] = ""


class SmsHandlerSpec(_Spec):
    """SNS in AWS; the local stack logs (or uses a configured gateway)."""

    sender_id: str = ""
    phone_numbers: list[str] = Field(default_factory=list)


class MqttHandlerSpec(_Spec):
    """Publish to ``broker`` (empty: the platform's own broker, IoT Core in AWS); MyController v2's ``publish``
    (its default topic) is read when ``topic`` is empty."""

    broker: str = ""
    topic: str = ""
    """Default topic."""
    qos: int = Field(default=0, ge=0, le=2)
    username: str = ""
    password: str = ""
    insecure: bool = False


class BackupHandlerSpec(_Spec):
    """MyController v2's backup handler: a backup into the blob store (``/api/backup``), the newest
    ``retentionCount`` kept (0: all). ``providerType``, ``storageExportType``, ``targetDirectory`` and the share
    flags are kept as sent: our archive has one format and one place."""

    provider_type: str = "disk"
    storage_export_type: str = "json"
    target_directory: str = ""
    prefix: str = Field(default="", max_length=64)
    retention_count: int = Field(default=0, ge=0, le=1000)


class EmptySpec(_Spec):
    pass


HANDLER_SPECS: Final[dict[str, type[CamelModel]]] = {
    "webhook": WebhookHandlerSpec, "email": EmailHandlerSpec, "telegram": TelegramHandlerSpec,
    "sms": SmsHandlerSpec, "mqtt": MqttHandlerSpec, "resource": EmptySpec, "backup": BackupHandlerSpec,
    "noop": EmptySpec,
}


class Handler(CamelModel):
    """Something that acts when a task or schedule fires (the reference's handler); ``spec`` fits ``type``."""

    id: str
    description: str = ""
    enabled: bool = True
    labels: dict[str, str] = Field(default_factory=dict)
    type: HandlerType
    spec: dict[str, Any] = Field(default_factory=dict)
    modified_on: str | None = None
    state: State = Field(default_factory=State)

    _id = id_validator("handler id")

    @field_validator("spec", mode="before")
    @classmethod
    def _spec(cls, value: Any, info: ValidationInfo) -> Any:
        model = HANDLER_SPECS.get(str(info.data.get("type")))
        if model is None:  # the type itself failed; its error is reported
            return value if isinstance(value, dict) else {}
        return validate_spec(model, value).model_dump(mode="json")
