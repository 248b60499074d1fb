"""The pure parts of handlers: parameters per handler type, rendering them, and which spec keys are secrets.

A task or schedule that fires renders its ``handlerParameters`` against its variables (``render_parameters``)
and queues one ``HandlerRequest`` per handler. The handler function then turns the rendered parameters into
calls for its own type (``prepare_calls``): a parameter ``{"type": "<handler type>", ...}`` is for handlers of
that type only, and a plain string is the message for message-like handlers (email body, telegram and SMS text,
MQTT payload, webhook body), as in the reference. Each call's parameters are validated after rendering and
merged with the handler's spec (defaults: URL, recipients, chat ids, topic…), so the adapter that makes the call
(HTTP, SES/SMTP, telegram, SNS, MQTT, the resource service) has nothing left to decide.

Parameters per type:

=========  ==============================================================================================
webhook    ``url, method, headers, query (or queryParameters), body, expectedStatus``
email      ``to (list or "a@x, b@y"), subject, body``
telegram   ``chatIds, text, parseMode``
sms        ``phoneNumbers, text``
mqtt       ``topic, payload (non-text is sent as JSON), qos, retain``
resource   ``quickId, payload, keyPath, delay (or preDelay)``: set a field (``payload`` is the value or
           ``toggle``); ``enable``/``disable``/``reload`` a task, schedule, handler, forward payload or
           gateway; a node action for a node; set ``keyPath`` of a data repository's ``data``. MyController v2's
           ``resource_by_quick_id`` (``resourceType`` + ``quickId`` without prefix) and ``resource_by_labels``
           (``resourceType`` + ``labels``: every match, at most 100) are read as this type
backup     ``prefix, retentionCount`` (both default to the handler's spec; no parameter is needed)
noop       anything (does nothing; for tests and dry runs)
=========  ==============================================================================================

MyController v2's parameter names are read too (``reference_parameter``): a webhook's ``server`` + ``api``,
``data`` and ``responseCode``, an MQTT parameter's ``publish`` and ``data``; and its handler specs' names
(an email handler's ``fromEmail`` and ``toEmails``, an MQTT handler's ``publish``) when ours are empty.

Any typed parameter may carry ``disabled``: a template that, rendered truthy, drops the parameter (it is removed
from the rendered parameter either way).

Secrets (``secret_fields``, ``secret_paths``): passwords, tokens and authorization-like headers in handler
specs. The API encrypts them at rest and ``redact`` hides them in what it returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator

from ..actions import GATEWAY_ACTIONS, NODE_ACTIONS
from ..errors import DomainError
from ..model import ID_DEPTH, QUICK_ID_ALIASES, CamelModel, Kind, QuickIdError, Record, parse_quick_id
from .clock import Location, parse_duration
from .models import HANDLER_TYPES, Handler, check_duration, check_method, validation_message
from .templates import ENGINE, TemplateEngine, TemplateError, to_json, truthy

REDACTED: Final = "********"
SECRET_HEADERS: Final = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key", "x-auth-token",
                                   "x-access-token", "cookie"})
"""Header names (case-insensitive) whose values are secrets."""
_SECRET_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "webhook": ("password",),
    "email": ("password",),
    "telegram": ("token",),
    "sms": (),
    "mqtt": ("password",),
    "resource": (),
    "backup": (),
    "noop": (),
}
RESOURCE_COMMANDS: Final = ("enable", "disable", "reload")
_COMMAND_KINDS: Final = (Kind.TASK, Kind.SCHEDULE, Kind.HANDLER, Kind.FORWARD_PAYLOAD, Kind.GATEWAY)


class HandlerParameterError(DomainError, ValueError):
    """Parameters a handler cannot use; ``field`` names the parameter (``alert.url``)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# --------------------------------------------------------------------------------------------- secrets


def secret_fields(handler_type: str) -> tuple[str, ...]:
    """Spec key paths that hold secrets for a handler type. ``headers.<name>`` entries are matched
    case-insensitively; use ``secret_paths`` to get the paths present in a given spec."""
    if handler_type not in _SECRET_KEYS:
        raise ValueError(f"unknown handler type {handler_type!r}; expected one of {', '.join(HANDLER_TYPES)}")
    keys = _SECRET_KEYS[handler_type]
    if handler_type == "webhook":
        keys = keys + tuple(f"headers.{name}" for name in sorted(SECRET_HEADERS))
    return keys


def secret_paths(handler_type: str, spec: Mapping[str, Any]) -> list[str]:
    """The key paths of ``spec`` that hold secrets and are set (exact header spelling kept)."""
    paths = [key for key in _SECRET_KEYS.get(handler_type, ()) if spec.get(key) not in (None, "")]
    headers = spec.get("headers")
    if handler_type == "webhook" and isinstance(headers, Mapping):
        paths += [f"headers.{name}" for name, value in headers.items()
                  if name.lower() in SECRET_HEADERS and value not in (None, "")]
    return paths


def _replace_path(spec: dict[str, Any], path: str, value: Any) -> None:
    head, _, rest = path.partition(".")
    if not rest:
        spec[head] = value
    elif isinstance(spec.get(head), dict):
        spec[head] = {**spec[head]}
        _replace_path(spec[head], rest, value)


def redact(handler: Handler | Record) -> Record:
    """The handler as the API may return it: secrets replaced by ``REDACTED`` (never the stored ciphertext)."""
    record = handler.record() if isinstance(handler, Handler) else {**handler}
    spec = {**(record.get("spec") or {})}
    for path in secret_paths(str(record.get("type")), spec):
        _replace_path(spec, path, REDACTED)
    record["spec"] = spec
    return record


def restore_secrets(new_spec: Mapping[str, Any], old_spec: Mapping[str, Any], handler_type: str) -> dict[str, Any]:
    """A spec sent back by a client with ``REDACTED`` placeholders, with the stored secrets put back (so editing
    a handler in the UI does not wipe its token)."""
    result = {**new_spec}
    for path in secret_paths(handler_type, new_spec):
        head, _, rest = path.partition(".")
        new_value = result.get(head) if not rest else (result.get(head) or {}).get(rest)
        if new_value != REDACTED:
            continue
        old_value = old_spec.get(head) if not rest else (old_spec.get(head) or {}).get(rest)
        _replace_path(result, path, old_value)
    return result


# --------------------------------------------------------------------------------------------- parameter schemas


def _list_of_text(value: Any) -> Any:
    """``"a@x, b@y"`` (what a template renders) or a list, as a list of non-empty strings."""
    if isinstance(value, str):
        return [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
    if isinstance(value, list):
        return [str(item).strip() for item in value if str(item).strip()]
    return value


class _Params(CamelModel):
    disabled: Any = None


class WebhookParams(_Params):
    type: Literal["webhook"] = "webhook"
    url: str = ""
    method: str = ""
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, Any] = Field(default_factory=dict, validation_alias=AliasChoices("query", "queryParameters"))
    body: Any = None
    expected_status: int | None = Field(default=None, ge=100, le=599)

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        return check_method(value, allow_empty=True)


class EmailParams(_Params):
    type: Literal["email"] = "email"
    to: list[str] = Field(default_factory=list)
    subject: str = ""
    body: str = ""

    _to = field_validator("to", mode="before")(_list_of_text)


class TelegramParams(_Params):
    type: Literal["telegram"] = "telegram"
    chat_ids: list[str] = Field(default_factory=list)
    text: str = Field(min_length=1)
    parse_mode: str = ""

    _chat_ids = field_validator("chat_ids", mode="before")(_list_of_text)


class SmsParams(_Params):
    type: Literal["sms"] = "sms"
    phone_numbers: list[str] = Field(default_factory=list)
    text: str = Field(min_length=1, max_length=1600)

    _numbers = field_validator("phone_numbers", mode="before")(_list_of_text)


class MqttParams(_Params):
    type: Literal["mqtt"] = "mqtt"
    topic: str = ""
    payload: Any = ""
    qos: int | None = Field(default=None, ge=0, le=2)
    retain: bool = False


class ResourceParams(_Params):
    """One resource by ``quickId``, or (MyController v2's ``resource_by_labels``) every resource of
    ``resourceType`` carrying all ``labels`` (at most ``MAX_LABELLED`` of them, found when the handler runs)."""

    type: Literal["resource"] = "resource"
    quick_id: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    resource_type: str = ""
    payload: Any = None
    key_path: str = ""
    delay: str = Field(default="", validation_alias=AliasChoices("delay", "preDelay"))

    @field_validator("delay")
    @classmethod
    def _delay(cls, value: str) -> str:
        return check_duration(value, "delay")

    @model_validator(mode="after")
    def _target(self) -> ResourceParams:
        if self.labels and not self.quick_id:
            try:
                kind = QUICK_ID_ALIASES.get(self.resource_type.lower()) or Kind(self.resource_type.lower())
            except ValueError:
                raise ValueError(f"resourceType {self.resource_type!r} is not a resource type") from None
            if kind not in LABELLED_KINDS:
                raise ValueError(f"resourceType: resources by labels are {', '.join(k.value for k in LABELLED_KINDS)}")
            self.resource_type = kind.value
            quick_text = f"{kind.value}:{'.'.join(['x'] * ID_DEPTH.get(kind, 1))}"
        elif not self.quick_id:
            raise ValueError("quickId (or labels with resourceType) is required")
        else:
            quick_text = self.quick_id
        try:
            quick = parse_quick_id(quick_text)
        except QuickIdError as error:
            raise ValueError(f"quickId: {error}") from None
        command = str(self.payload).strip().lower() if self.payload is not None else ""
        if quick.kind == Kind.DATA_REPOSITORY:
            if self.payload is None:
                raise ValueError("payload is required: the value to set at keyPath in the data repository")
        elif quick.kind == Kind.FIELD:
            if self.payload is None or isinstance(self.payload, dict | list):
                raise ValueError("payload must be the value to set (text, number, boolean or 'toggle')")
        elif quick.kind == Kind.NODE:
            if command not in NODE_ACTIONS:
                raise ValueError(f"payload for a node must be one of {', '.join(NODE_ACTIONS)}, got {self.payload!r}")
        elif quick.kind in _COMMAND_KINDS:
            allowed = RESOURCE_COMMANDS + (GATEWAY_ACTIONS if quick.kind == Kind.GATEWAY else ())
            if command not in allowed:
                raise ValueError(f"payload for a {quick.kind.value} must be one of {', '.join(allowed)}, "
                                 f"got {self.payload!r}")
        else:
            raise ValueError(f"quickId: a resource handler cannot act on a {quick.kind.value}")
        return self


class BackupParams(_Params):
    """MyController v2's backup parameter: a prefix and how many archives to keep override the handler's."""

    type: Literal["backup"] = "backup"
    prefix: str = Field(default="", max_length=64)
    retention_count: int | None = Field(default=None, ge=0, le=1000)


class NoopParams(_Params):
    type: Literal["noop"] = "noop"


PARAMETER_MODELS: Final[dict[str, type[_Params]]] = {
    "webhook": WebhookParams, "email": EmailParams, "telegram": TelegramParams, "sms": SmsParams,
    "mqtt": MqttParams, "resource": ResourceParams, "backup": BackupParams, "noop": NoopParams,
}
MAX_LABELLED: Final = 100
"""Resources one ``resource_by_labels`` parameter acts on (the reference's limit)."""
LABELLED_KINDS: Final = (Kind.GATEWAY, Kind.NODE, Kind.FIELD, Kind.TASK, Kind.SCHEDULE, Kind.HANDLER,
                         Kind.DATA_REPOSITORY)


def reference_parameter(handler_type: str, value: Mapping[str, Any]) -> dict[str, Any] | None:
    """A parameter written in MyController v2's names as ours for ``handler_type``, or None when it is for another
    type. ``resource_by_quick_id`` (its ``quickId`` has no type prefix) and ``resource_by_labels`` are for resource
    handlers; a webhook's ``server``/``api``/``data``/``responseCode`` and an MQTT ``publish``/``data`` are renamed."""
    kind = value.get("type")
    if kind in ("resource_by_quick_id", "resource_by_labels"):
        if handler_type != "resource":
            return None
        resource_type = str(value.get("resourceType") or "")
        quick_id = str(value.get("quickId") or "")
        if quick_id and ":" not in quick_id and resource_type:
            quick_id = f"{resource_type}:{quick_id}"
        converted = {k: v for k, v in value.items() if k not in ("type", "quickId")}
        converted.update(type="resource", quickId=quick_id if kind == "resource_by_quick_id" else "")
        if kind == "resource_by_quick_id":
            converted.pop("labels", None)
        return converted
    if kind != handler_type:
        return None
    converted = dict(value)
    if handler_type == "webhook":
        if not converted.get("url") and isinstance(converted.get("server"), str):
            api = converted.get("api") if isinstance(converted.get("api"), str) else ""
            converted["url"] = converted["server"].rstrip("/") + ("/" + api.lstrip("/") if api else "")
        if "body" not in converted and "data" in converted:
            converted["body"] = converted["data"]
        if "expectedStatus" not in converted and converted.get("responseCode"):
            converted["expectedStatus"] = converted["responseCode"]
        for key in ("server", "api", "data", "responseCode", "customData", "insecure"):
            converted.pop(key, None)
    elif handler_type == "mqtt":
        if not converted.get("topic") and converted.get("publish"):
            converted["topic"] = converted["publish"]
        if "payload" not in converted and "data" in converted:
            converted["payload"] = converted["data"]
        converted.pop("publish", None)
        converted.pop("data", None)
    return converted


# --------------------------------------------------------------------------------------------- rendering


def render_parameters(parameters: Mapping[str, Any], variables: Mapping[str, Any], *, now: datetime,
                      location: Location | None = None, engine: TemplateEngine = ENGINE) -> dict[str, Any]:
    """Every template inside the parameters rendered against the variables; parameters whose ``disabled`` renders
    truthy are dropped. A parameter that fails to render raises ``HandlerParameterError`` naming it."""
    rendered: dict[str, Any] = {}
    for name, value in parameters.items():
        try:
            result = engine.render_value(value, variables, now=now, location=location)
        except TemplateError as error:
            raise HandlerParameterError(f"handler parameter {name!r}: {error}", name) from None
        if isinstance(result, dict) and "disabled" in result and truthy(result.pop("disabled")):
            continue
        rendered[name] = result
    return rendered


# --------------------------------------------------------------------------------------------- calls


@dataclass(slots=True)
class HandlerCall:
    """One thing a handler does for one parameter: validated, merged with the handler's spec, JSON-shaped."""

    handler_id: str
    handler_type: str
    name: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Record:
        return {"handlerId": self.handler_id, "handlerType": self.handler_type, "name": self.name,
                "params": self.params}


def _typed(model: type[_Params], name: str, value: Mapping[str, Any]) -> Any:
    try:
        return model.model_validate(value)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join([name, *(str(p) for p in first["loc"])])
        message = validation_message(first)
        raise HandlerParameterError(f"handler parameter {where}: {message}", where) from None


def _message_params(handler_type: str, name: str, text: str) -> dict[str, Any] | None:
    """A plain string parameter as the message of a message-like handler; ``None`` for other types."""
    if handler_type == "email":
        return {"type": "email", "subject": f"MyController: {name}", "body": text}
    if handler_type in ("telegram", "sms"):
        return {"type": handler_type, "text": text}
    if handler_type == "mqtt":
        return {"type": "mqtt", "payload": text}
    if handler_type == "webhook":
        return {"type": "webhook", "body": text}
    return None


def _require(value: Any, message: str, where: str) -> Any:
    if not value:
        raise HandlerParameterError(message, where)
    return value


def _merge(handler_type: str, spec: Mapping[str, Any], name: str, params: Any) -> dict[str, Any]:
    """Parameters completed from the handler's spec: what the adapter needs to act, nothing more."""
    if isinstance(params, WebhookParams):
        url = _require(params.url or spec.get("url"), f"handler parameter {name}: no url (parameter or handler "
                       "spec)", f"{name}.url")
        if not str(url).startswith(("http://", "https://")):
            raise HandlerParameterError(f"handler parameter {name}.url must be an http(s) URL, got {url!r}",
                                        f"{name}.url")
        return {"url": url, "method": params.method or spec.get("method") or "POST",
                "headers": {**(spec.get("headers") or {}), **params.headers},
                "query": {**(spec.get("queryParameters") or {}), **params.query},
                "body": params.body,
                "expectedStatus": params.expected_status or spec.get("expectedStatus") or 200,
                "insecure": bool(spec.get("insecure")),
                "timeoutSeconds": parse_duration(str(spec.get("timeout") or "10s")).total_seconds()}
    if isinstance(params, EmailParams):
        recipients = _require(params.to or spec.get("to") or _list_of_text(spec.get("toEmails") or ""),
                              f"handler parameter {name}: no recipients (to)", f"{name}.to")
        return {"to": list(recipients), "subject": params.subject or f"MyController: {name}",
                "body": params.body, "from": spec.get("from") or spec.get("fromEmail") or ""}
    if isinstance(params, TelegramParams):
        chats = _require(params.chat_ids or spec.get("chatIds"), f"handler parameter {name}: no chatIds",
                         f"{name}.chatIds")
        return {"chatIds": list(chats), "text": params.text, "parseMode": params.parse_mode or spec.get("parseMode")
                or ""}
    if isinstance(params, SmsParams):
        numbers = _require(params.phone_numbers or spec.get("phoneNumbers"),
                           f"handler parameter {name}: no phoneNumbers", f"{name}.phoneNumbers")
        return {"phoneNumbers": list(numbers), "text": params.text, "senderId": spec.get("senderId", "")}
    if isinstance(params, MqttParams):
        topic = _require(params.topic or spec.get("topic") or spec.get("publish"),
                         f"handler parameter {name}: no topic", f"{name}.topic")
        payload = params.payload if isinstance(params.payload, str) else to_json(params.payload)
        qos = params.qos if params.qos is not None else int(spec.get("qos") or 0)
        return {"topic": topic, "payload": payload, "qos": qos, "retain": params.retain}
    if isinstance(params, ResourceParams):
        delay = parse_duration(params.delay).total_seconds() if params.delay else 0.0
        payload = params.payload
        if params.labels and not params.quick_id:
            if params.resource_type not in (Kind.FIELD.value, Kind.DATA_REPOSITORY.value) and isinstance(payload, str):
                payload = payload.strip().lower()
            return {"quickId": "", "labels": dict(params.labels), "resourceType": params.resource_type,
                    "payload": payload, "keyPath": params.key_path, "delaySeconds": delay}
        quick = parse_quick_id(params.quick_id)
        if quick.kind not in (Kind.FIELD, Kind.DATA_REPOSITORY) and isinstance(payload, str):
            payload = payload.strip().lower()
        return {"quickId": str(quick), "payload": payload, "keyPath": params.key_path or quick.key_path,
                "delaySeconds": delay}
    if isinstance(params, BackupParams):
        retention = params.retention_count if params.retention_count is not None else spec.get("retentionCount")
        return {"prefix": params.prefix or spec.get("prefix") or "", "retentionCount": int(retention or 0)}
    return {}


def prepare_calls(handler: Handler | Record, parameters: Mapping[str, Any]) -> list[HandlerCall]:
    """The calls a handler makes for rendered parameters, in parameter-name order.

    Parameters typed for another handler type are skipped; a noop handler makes one call whatever it gets.
    Raises ``HandlerParameterError`` naming the parameter when one cannot be used (no URL, bad quick id…): a
    handler request that cannot succeed should fail at once, not be retried.
    """
    model = handler if isinstance(handler, Handler) else Handler.model_validate(handler)
    if model.type == "noop":
        return [HandlerCall(model.id, "noop", "noop", {"parameters": dict(parameters)})]
    calls: list[HandlerCall] = []
    for name in sorted(parameters):
        value = parameters[name]
        if isinstance(value, str):
            typed_value = _message_params(model.type, name, value)
            if typed_value is None:
                continue
        elif isinstance(value, Mapping):
            converted = reference_parameter(model.type, value)
            if converted is None:
                continue
            typed_value = converted
        else:
            continue
        params = _typed(PARAMETER_MODELS[model.type], name, typed_value)
        calls.append(HandlerCall(model.id, model.type, name, _merge(model.type, model.spec, name, params)))
    if model.type == "backup":
        if not calls:  # a backup needs no parameter: the handler's spec says it all
            calls.append(HandlerCall(model.id, "backup", "backup", _merge("backup", model.spec, "backup",
                                                                          BackupParams())))
        for call in calls:
            call.params["prefix"] = call.params.get("prefix") or model.id  # the reference's default
    return calls
