"""MyController v2's automation, as its users wrote it: JavaScript tasks and custom variables in the QuickJS sandbox
(limits, helpers, Go field names), Go templates translated to ours, and handler specs and parameters in the
reference's names kept and understood."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.core.automation.gotemplate import looks_like_go, translate
from chalicelib.core.automation.handlers import prepare_calls
from chalicelib.core.automation.javascript import ScriptError, ScriptLimitError, ScriptLimits, limits_for, run_script
from chalicelib.core.automation.models import Handler, Schedule, Task
from chalicelib.core.automation.schedules import fire_schedule
from chalicelib.core.automation.tasks import evaluate_task
from chalicelib.core.automation.templates import TemplateError, render
from chalicelib.core.data_repository import set_key_path, write

NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
FIELD = {"id": "gw.1.1.V_TEMP", "gatewayId": "gw", "current": {"value": 27.5}, "labels": {"room": "kitchen"}}


class Lookup:
    def get_by_quick_id(self, quick_id: str) -> dict[str, Any] | None:
        return FIELD if quick_id == "field:gw.1.1.V_TEMP" else None

    def find_by_labels(self, kind: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        return []


# --------------------------------------------------------------------------------------------- javascript


def test_a_script_reads_go_names_and_answers_its_last_value() -> None:
    variables = {"temp": FIELD, "taskEvent": {"type": "updated", "entityId": "gw.1.1.V_TEMP"}}
    assert run_script("temp.Current.Value > 25 && taskEvent.EntityID == 'gw.1.1.V_TEMP'", variables) is True
    assert run_script("({isTriggered: true, room: temp.Labels.room, id: temp.GatewayID})", variables) == \
        {"isTriggered": True, "room": "kitchen", "id": "gw"}


@pytest.mark.parametrize("algo", ["MD5", "Sha1", "Sha256", "Sha512"])
def test_the_reference_helpers_are_there(algo: str) -> None:
    expected = hashlib.new({"MD5": "md5"}.get(algo, algo.lower()), "héllo".encode()).hexdigest().upper()
    assert run_script(f"mcUtils.crypto.{algo}HexString('héllo')", {}) == expected
    assert run_script("mcUtils.convert.ToUInt16LE(mcUtils.convert.HexStringToBytes('0102'))", {}) == 0x0201
    assert run_script("mcUtils.convert.ToInt32BE([255, 255, 255, 254])", {}) == -2
    assert run_script("mcUtils.convert.HexStringToString('414243')", {}) == "ABC"


@pytest.mark.parametrize(("source", "error", "message"), [
    ("while (true) {}", ScriptLimitError, "longer than"),
    ("const a = []; while (true) a.push('x'.repeat(4096))", ScriptLimitError, "MB"),
    ("function f() { return f() } f()", ScriptLimitError, "recursed"),
    ("mcUtils.httpClient.New(false, '1s')", ScriptError, "no I/O"),
    ("require('fs')", ScriptError, "not available"),
    ("if (", ScriptError, "SyntaxError"),
])
def test_a_script_that_runs_away_fails_alone_with_a_clear_reason(source: str, error: type[Exception],
                                                                   message: str) -> None:
    started = time.monotonic()
    with pytest.raises(error, match=message):
        run_script(source, {}, ScriptLimits(max_seconds=0.2, max_memory_bytes=16 * 1024 * 1024))
    assert time.monotonic() - started < 3
    assert run_script("1 + 1", {}) == 2  # the next run is fresh


def test_a_tasks_script_timeout_label_is_bounded() -> None:
    assert limits_for({"script_timeout": "5s"}).max_seconds == 5
    assert limits_for({"script_timeout": "30m"}).max_seconds == 10


def test_a_javascript_task_fires_merges_its_result_and_a_failing_one_says_why() -> None:
    task = {"id": "hot", "evaluationType": "javascript", "variables": {
        "temp": {"type": "resource_by_quick_id", "resourceType": "field", "quickId": "gw.1.1.V_TEMP"}},
        "evaluationConfig": {"javascript": "({isTriggered: temp.Current.Value > 25, "
                                           "label: 'hot ' + temp.Labels.room})"},
        "handlerParameters": {"msg": "{{ .label }} at {{ .temp.Current.Value }}"}, "handlers": ["h"]}
    outcome = evaluate_task(Task.model_validate(task), None, Lookup(), NOW)
    assert outcome.fire and outcome.handler_requests[0].parameters == {"msg": "hot kitchen at 27.5"}
    task["evaluationConfig"] = {"javascript": "while (true) {}"}
    task["labels"] = {"script_timeout": "200ms"}
    failed = evaluate_task(Task.model_validate(task), None, Lookup(), NOW)
    assert not failed.fire and "longer than" in failed.new_state["message"]


def test_a_schedules_custom_variables_come_from_its_script() -> None:
    schedule = Schedule.model_validate({
        "id": "s", "type": "repeat", "spec": {"interval": "1m"}, "handlers": ["h"],
        "customVariableType": "javascript", "customVariableConfig": {"javascript": "({level: 3, who: schedule.ID})"},
        "handlerParameters": {"msg": "{{ .level }} {{ .who }}"}})
    assert schedule.record()["customVariableType"] == "javascript"
    outcome = fire_schedule(schedule, NOW, Lookup())
    assert outcome.handler_requests[0].parameters == {"msg": "3 s"}


# --------------------------------------------------------------------------------------------- go templates


@pytest.mark.parametrize(("source", "expected"), [
    ("{{.temp.Current.Value}}", "27.5"),
    ('{{ .temp.current.value | printf "%.0f" }}°C', "28°C"),
    ("{{ if gt .temp.Current.Value 25.0 }}hot{{ else if lt .temp.Current.Value 10.0 }}cold{{ else }}ok{{ end }}",
     "hot"),
    ("{{ range $i, $v := .items }}{{ $i }}:{{ $v }} {{ end }}", "0:a 1:b "),
    ("{{ with .temp.Labels }}{{ .room }}{{ else }}none{{ end }}", "kitchen"),
    ('{{ ternary (eq .n 3) "three" "other" }} {{ len .items }} {{ index .items 1 }}', "three 2 b"),
    ('{{ keyPath .temp "labels.room" }} {{ toJson .items }} {{ not .on }}', 'kitchen ["a","b"] false'),
    ("{{- /* a comment */ -}} {{ $x := .n }}{{ $x }}", "3"),
])
def test_go_templates_render_as_the_reference_renders_them(source: str, expected: str) -> None:
    assert looks_like_go(source)
    assert render(source, {"temp": FIELD, "items": ["a", "b"], "n": 3, "on": True}) == expected


def test_jinja_templates_stay_jinja_and_unsupported_go_says_what() -> None:
    for source in ("{{ temp.current.value }}", "{{ now() }}", "{{ not on }}", "{% if x %}{{ y }}{% endif %}"):
        assert not looks_like_go(source)
    for source, message in (('{{ define "x" }}{{ end }}', "define"), ("{{ if .on }}x", "without 'end'"),
                            ("{{ frobnicate .x }}", "unknown function")):
        with pytest.raises(TemplateError, match=message):
            render(source, {"on": True, "x": 1})
    assert "keyPath(temp" in translate("{{ .temp.Current.Value }}")


# --------------------------------------------------------------------------------------------- handlers


def test_reference_handler_specs_are_kept_and_understood() -> None:
    email = Handler.model_validate({"id": "mail", "type": "email", "spec": {
        "host": "smtp.example.com", "port": 465, "authType": "plain", "fromEmail": "mc@example.com",
        "toEmails": "a@example.com,b@example.com"}})
    assert email.spec["fromEmail"] == "mc@example.com" and email.spec["tls"] == "ssl"
    [call] = prepare_calls(email, {"alert": {"type": "email", "subject": "s", "body": "b"}})
    assert call.params["to"] == ["a@example.com", "b@example.com"] and call.params["from"] == "mc@example.com"
    mqtt = Handler.model_validate({"id": "m", "type": "mqtt", "spec": {"broker": "tcp://b:1883", "publish": "mc/out"}})
    [call] = prepare_calls(mqtt, {"p": {"type": "mqtt", "data": "on"}})
    assert (call.params["topic"], call.params["payload"]) == ("mc/out", "on")


def test_reference_resource_parameters_and_the_backup_handler() -> None:
    resource = Handler.model_validate({"id": "r", "type": "resource"})
    calls = prepare_calls(resource, {
        "one": {"type": "resource_by_quick_id", "resourceType": "field", "quickId": "gw.1.1.V_STATUS",
                "payload": "toggle", "preDelay": "2s"},
        "many": {"type": "resource_by_labels", "resourceType": "task", "labels": {"group": "night"},
                 "payload": "disable"},
        "repo": {"type": "resource_by_quick_id", "resourceType": "data_repository", "quickId": "home",
                 "keyPath": "mode", "payload": '"away"'}})
    by_name = {call.name: call.params for call in calls}
    assert by_name["one"]["quickId"] == "field:gw.1.1.V_STATUS" and by_name["one"]["delaySeconds"] == 2
    assert by_name["many"]["labels"] == {"group": "night"} and by_name["many"]["resourceType"] == "task"
    assert by_name["repo"]["quickId"] == "data_repository:home" and by_name["repo"]["keyPath"] == "mode"
    backup = Handler.model_validate({"id": "nightly", "type": "backup", "spec": {
        "providerType": "disk", "storageExportType": "yaml", "targetDirectory": "/backups", "retentionCount": 3}})
    [call] = prepare_calls(backup, {})
    assert call.params == {"prefix": "nightly", "retentionCount": 3}
    Task.model_validate({"id": "t", "handlerParameters": {"x": {"type": "resource_by_labels", "resourceType": "field",
                                                                "labels": {"a": "b"}, "payload": "1"}}})


def test_a_data_repository_is_written_at_a_key_path_unless_read_only() -> None:
    assert set_key_path({"a": {"b": [1, 2]}}, "a.b.1", 5) == {"a": {"b": [1, 5]}}
    assert write({"id": "r", "data": {}}, "temp.max", "30")["data"] == {"temp": {"max": 30}}  # type: ignore[index]
    assert write({"id": "r", "readOnly": True, "data": {}}, "x", "1") is None
