"""Handlers: parameters per type rendered against variables, merged with the spec; secrets named and redacted."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.core.automation.handlers import (
    REDACTED,
    HandlerParameterError,
    prepare_calls,
    redact,
    render_parameters,
    restore_secrets,
    secret_fields,
    secret_paths,
)
from chalicelib.core.automation.models import Handler

NOW = datetime(2024, 5, 1, 6, 30, tzinfo=UTC)
VARIABLES = {"temp": 31.5, "room": "kitchen", "emails": ["ops@example.org", "me@example.org"]}


def handler(kind: str, spec: dict[str, Any] | None = None) -> Handler:
    return Handler.model_validate({"id": f"{kind}-1", "type": kind, "spec": spec or {}})


def calls(kind: str, parameters: dict[str, Any], spec: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    rendered = render_parameters(parameters, VARIABLES, now=NOW)
    return [c.to_dict() for c in prepare_calls(handler(kind, spec), rendered)]


# --------------------------------------------------------------------------------------------- rendering


def test_parameters_render_against_the_variables_and_disabled_ones_drop() -> None:
    rendered = render_parameters({
        "text": "{{ room }} is {{ temp }}°C at {{ now().strftime('%H:%M') }}",
        "hook": {"type": "webhook", "body": {"room": "{{ room }}", "values": ["{{ temp * 2 }}"]}},
        "quiet": {"type": "telegram", "text": "x", "disabled": "{{ temp > 30 }}"},
        "loud": {"type": "telegram", "text": "y", "disabled": "{{ temp > 40 }}"},
    }, VARIABLES, now=NOW)
    assert rendered == {
        "text": "kitchen is 31.5°C at 06:30",
        "hook": {"type": "webhook", "body": {"room": "kitchen", "values": ["63.0"]}},
        "loud": {"type": "telegram", "text": "y"},
    }


def test_a_parameter_that_fails_to_render_is_named() -> None:
    with pytest.raises(HandlerParameterError, match="'broken'") as caught:
        render_parameters({"fine": "ok", "broken": "{{ 1 / 0 }}"}, {}, now=NOW)
    assert caught.value.field == "broken"


# --------------------------------------------------------------------------------------------- calls per type


def test_webhook_calls_merge_the_spec() -> None:
    spec = {"url": "https://hooks.example.org/in", "headers": {"Authorization": "Bearer t", "X-A": "1"},
            "queryParameters": {"src": "mc"}, "timeout": "3s"}
    [typed, plain] = calls("webhook", {
        "alert": {"type": "webhook", "method": "put", "headers": {"X-A": "2"}, "query": {"room": "{{ room }}"},
                  "body": {"t": "{{ temp }}"}, "expectedStatus": 204},
        "note": "{{ room }} hot",
        "mail": {"type": "email", "to": "x@y.z"},  # for email handlers only
    }, spec)
    assert typed == {"handlerId": "webhook-1", "handlerType": "webhook", "name": "alert", "params": {
        "url": "https://hooks.example.org/in", "method": "PUT", "headers": {"Authorization": "Bearer t", "X-A": "2"},
        "query": {"src": "mc", "room": "kitchen"}, "body": {"t": "31.5"}, "expectedStatus": 204, "insecure": False,
        "timeoutSeconds": 3.0}}
    assert plain["name"] == "note" and plain["params"]["body"] == "kitchen hot" and plain["params"]["method"] == "POST"
    with pytest.raises(HandlerParameterError, match="no url"):
        calls("webhook", {"alert": {"type": "webhook"}})
    with pytest.raises(HandlerParameterError, match=r"alert\.method"):
        calls("webhook", {"alert": {"type": "webhook", "method": "SEND"}}, spec)


def test_email_telegram_sms_and_mqtt_calls() -> None:
    [email] = calls("email", {"m": {"type": "email", "to": "{{ emails|join(', ') }}", "subject": "Hot",
                                    "body": "{{ temp }}"}}, {"from": "mc@example.org"})
    assert email["params"] == {"to": ["ops@example.org", "me@example.org"], "subject": "Hot", "body": "31.5",
                               "from": "mc@example.org"}
    [default_to] = calls("email", {"note": "it is {{ temp }}"}, {"to": ["ops@example.org"]})
    assert default_to["params"]["to"] == ["ops@example.org"] and default_to["params"]["subject"] == "MyController: note"
    with pytest.raises(HandlerParameterError, match="no recipients"):
        calls("email", {"note": "x"})
    [telegram] = calls("telegram", {"t": "hot {{ room }}"}, {"token": "123:abc", "chatIds": ["42"]})
    assert telegram["params"] == {"chatIds": ["42"], "text": "hot kitchen", "parseMode": ""}
    [sms] = calls("sms", {"s": {"type": "sms", "phoneNumbers": "+4917000, +4917001", "text": "{{ temp }}"}})
    assert sms["params"]["phoneNumbers"] == ["+4917000", "+4917001"]
    with pytest.raises(HandlerParameterError, match=r"s\.text"):
        calls("sms", {"s": {"type": "sms", "phoneNumbers": ["+49"], "text": ""}})
    [mqtt] = calls("mqtt", {"p": {"type": "mqtt", "payload": {"temp": "{{ temp }}"}, "qos": 1}}, {"topic": "alerts"})
    assert mqtt["params"] == {"topic": "alerts", "payload": '{"temp":"31.5"}', "qos": 1, "retain": False}


@pytest.mark.parametrize(("parameter", "params"), [
    ({"quickId": "field:gw.1.2.V_STATUS", "payload": "toggle"},
     {"quickId": "field:gw.1.2.V_STATUS", "payload": "toggle", "keyPath": "", "delaySeconds": 0.0}),
    ({"quickId": "task:night-lights", "payload": "Disable", "preDelay": "1m30s"},
     {"quickId": "task:night-lights", "payload": "disable", "keyPath": "", "delaySeconds": 90.0}),
    ({"quickId": "schedule:wake", "payload": "enable"},
     {"quickId": "schedule:wake", "payload": "enable", "keyPath": "", "delaySeconds": 0.0}),
    ({"quickId": "node:gw.4", "payload": "reboot", "delay": "5s"},
     {"quickId": "node:gw.4", "payload": "reboot", "keyPath": "", "delaySeconds": 5.0}),
    ({"quickId": "gateway:gw", "payload": "discover_nodes"},
     {"quickId": "gateway:gw", "payload": "discover_nodes", "keyPath": "", "delaySeconds": 0.0}),
])
def test_resource_calls(parameter: dict[str, Any], params: dict[str, Any]) -> None:
    [call] = calls("resource", {"r": {"type": "resource", **parameter}})
    assert call["params"] == params


@pytest.mark.parametrize(("parameter", "message"), [
    ({"quickId": "task:x", "payload": "explode"}, "enable, disable, reload"),
    ({"quickId": "node:gw.4", "payload": "dance"}, "heartbeat_request"),
    ({"quickId": "field:gw.1.2.V_STATUS", "payload": {"a": 1}}, "value to set"),
    ({"quickId": "firmware:fw1", "payload": "enable"}, "cannot act"),
    ({"quickId": "nonsense", "payload": "1"}, "quickId"),
    ({"quickId": "field:gw.1.2.V_STATUS", "payload": "1", "delay": "later"}, "r.delay"),
])
def test_bad_resource_parameters_are_named(parameter: dict[str, Any], message: str) -> None:
    with pytest.raises(HandlerParameterError, match=message) as caught:
        calls("resource", {"r": {"type": "resource", **parameter}})
    assert caught.value.field is not None and caught.value.field.startswith("r")


def test_noop_takes_anything_and_string_parameters_skip_non_message_handlers() -> None:
    assert calls("noop", {"a": "x", "b": {"type": "email"}}) == [
        {"handlerId": "noop-1", "handlerType": "noop", "name": "noop", "params": {"parameters": {
            "a": "x", "b": {"type": "email"}}}}]
    assert calls("resource", {"text": "hello"}) == []


# --------------------------------------------------------------------------------------------- secrets


def test_secret_fields_per_type() -> None:
    assert secret_fields("telegram") == ("token",)
    assert secret_fields("email") == ("password",)
    assert secret_fields("mqtt") == ("password",)
    assert secret_fields("sms") == () and secret_fields("noop") == () and secret_fields("resource") == ()
    webhook = secret_fields("webhook")
    assert "password" in webhook and "headers.authorization" in webhook and "headers.x-api-key" in webhook
    with pytest.raises(ValueError, match="unknown handler type"):
        secret_fields("pigeon")


def test_redact_hides_every_secret_and_leaves_the_rest() -> None:
    hook = handler("webhook", {"url": "https://h.example.org", "password": "pw",
                               "headers": {"authorization": "Bearer abc", "X-Api-Key": "k", "Accept": "json"}})
    assert sorted(secret_paths("webhook", hook.spec)) == ["headers.X-Api-Key", "headers.authorization", "password"]
    before = copy.deepcopy(hook.record())
    shown = redact(hook)
    assert shown["spec"]["password"] == REDACTED
    assert shown["spec"]["headers"] == {"authorization": REDACTED, "X-Api-Key": REDACTED, "Accept": "json"}
    assert shown["spec"]["url"] == "https://h.example.org"
    assert "pw" not in repr(shown) and "Bearer" not in repr(shown)
    assert hook.record() == before  # the stored handler is untouched
    telegram = redact(handler("telegram", {"token": "123:secret"}).record())
    assert telegram["spec"]["token"] == REDACTED
    assert redact(handler("email", {"password": ""}))["spec"]["password"] == ""  # nothing to hide


def test_restore_secrets_puts_back_what_the_client_saw_redacted() -> None:
    stored = {"token": "123:secret", "chatIds": ["1"]}
    edited = {**redact(handler("telegram", stored))["spec"], "chatIds": ["1", "2"]}
    assert restore_secrets(edited, stored, "telegram") == {**stored, "chatIds": ["1", "2"], "parseMode": ""}
    changed = {**edited, "token": "456:new"}
    assert restore_secrets(changed, stored, "telegram")["token"] == "456:new"


@pytest.mark.parametrize(("kind", "spec", "location"), [
    ("telegram", {}, "token"),
    ("webhook", {"url": "ftp://nope"}, "url"),
    ("webhook", {"method": "SEND"}, "method"),
    ("mqtt", {"qos": 3}, "qos"),
    ("email", {"port": 0}, "port"),
])
def test_handler_specs_are_checked_per_type(kind: str, spec: dict[str, Any], location: str) -> None:
    with pytest.raises(ValidationError) as caught:
        handler(kind, spec)
    [error] = caught.value.errors()
    assert error["loc"] == ("spec",) and location in error["msg"]


def test_webhook_spec_in_the_reference_shape_server_and_api_becomes_url() -> None:
    from chalicelib.core.automation.models import Handler

    handler = Handler.model_validate({"id": "h", "type": "webhook",
                                      "spec": {"server": "http://127.0.0.1:9000/", "api": "/hooks/temp",
                                               "method": "put", "queryParameters": {"a": "1"}}})
    assert handler.spec["url"] == "http://127.0.0.1:9000/hooks/temp" and handler.spec["method"] == "PUT"
    assert "server" not in handler.spec and "api" not in handler.spec
    only_server = Handler.model_validate({"id": "h", "type": "webhook", "spec": {"server": "https://example.com"}})
    assert only_server.spec["url"] == "https://example.com"
