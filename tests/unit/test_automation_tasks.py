"""Tasks: event matching, variables, rules with the reference's operators, dampening, duplicates, auto-disable."""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest
from pydantic import ValidationError

from chalicelib.adapters.repository_memory import MemoryRepository
from chalicelib.core.automation.handlers import prepare_calls
from chalicelib.core.automation.models import Handler, Task, TaskState, WebhookCall
from chalicelib.core.automation.tasks import (
    HandlerRequest,
    RepositoryLookup,
    TaskIndex,
    TaskOutcome,
    evaluate_task,
    matches_event,
    maybe_re_enable,
    normalize_event,
)
from chalicelib.core.model import DomainEvent, FieldModel, Kind, Node, Record, event
from chalicelib.core.ports import BusEvent, bus_event

T0 = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
TEMP_ID = "gw.1.1.V_TEMP"
_SEQUENCE = itertools.count(1)


class Lookup:
    """A ``ResourceLookup`` over a dict of records by quick id."""

    def __init__(self, records: Mapping[str, Record] | None = None) -> None:
        self.records = dict(records or {})

    def get_by_quick_id(self, quick_id: str) -> Record | None:
        return self.records.get(quick_id)

    def find_by_labels(self, kind: str, labels: Mapping[str, str]) -> list[Record]:
        return [r for q, r in self.records.items() if q.startswith(kind + ":")
                and all((r.get("labels") or {}).get(k) == v for k, v in labels.items())]


class Webhooks:
    """A ``WebhookResolver`` that answers from a table and records its calls."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, WebhookCall]] = []

    def fetch(self, name: str, call: WebhookCall, variables: Mapping[str, Any]) -> Any:
        self.calls.append((name, call))
        return self.answers[call.url]


def temperature(value: Any, field_id: str = "V_TEMP", node: str = "1", labels: dict[str, str] | None = None,
                event_type: Literal["created", "updated"] = "updated") -> DomainEvent:
    record = FieldModel.model_validate({
        "gatewayId": "gw", "nodeId": node, "sourceId": "1", "fieldId": field_id, "metricType": "gauge_float",
        "labels": labels or {},
        "current": {"value": value, "timestamp": "2024-01-15T12:00:00.000Z", "sequence": next(_SEQUENCE)}}).record()
    return event(event_type, Kind.FIELD, record)


def threshold_task(**overrides: Any) -> dict[str, Any]:
    task: dict[str, Any] = {
        "id": "too-hot",
        "ignoreDuplicate": True,
        "eventFilter": {"eventTypes": ["updated"], "entityTypes": ["field"], "filters": {"id": TEMP_ID}},
        "evaluationConfig": {"rule": {"matchAll": True, "conditions": [
            {"variable": "entity.current.value", "operator": "gt", "value": 25}]}},
        "handlers": ["hook"],
        "handlerParameters": {"alert": {"type": "webhook",
                                        "body": {"text": "{{ entity.name or entity.fieldId }} is "
                                                         "{{ entity.current.value }} at {{ now().isoformat() }}"}}},
    }
    task.update(overrides)
    return task


class Runner:
    """Feeds events to a task the way the wiring does: state out of one evaluation into the next."""

    def __init__(self, task: dict[str, Any], lookup: Lookup | None = None, **kwargs: Any) -> None:
        self.task = Task.model_validate(task)
        self.lookup = lookup or Lookup()
        self.now = T0
        self.kwargs = kwargs
        self.outcomes: list[TaskOutcome] = []

    def feed(self, trigger: DomainEvent | None, step: timedelta = timedelta(minutes=1)) -> TaskOutcome:
        outcome = evaluate_task(self.task, trigger, self.lookup, self.now, **self.kwargs)
        self.task = self.task.model_copy(update={"state": TaskState.model_validate(outcome.new_state),
                                                 "enabled": outcome.enabled})
        self.outcomes.append(outcome)
        self.now += step
        return outcome

    def fires(self, values: list[Any]) -> list[bool]:
        return [self.feed(temperature(v)).fire for v in values]


# --------------------------------------------------------------------------------------------- the case


def test_temperature_crossing_a_threshold_fires_once_with_a_rendered_webhook_body() -> None:
    runner = Runner(threshold_task())
    assert runner.fires([24.0, 26.5, 27.0, 30.0]) == [False, True, False, False]
    fired = runner.outcomes[1]
    assert [r.handler_id for r in fired.handler_requests] == ["hook"]
    request = fired.handler_requests[0]
    assert request.source == "task:too-hot"
    assert request.parameters == {"alert": {"type": "webhook", "body": {
        "text": "V_TEMP is 26.5 at 2024-01-15T12:01:00+00:00"}}}
    hook = Handler.model_validate({"id": "hook", "type": "webhook", "spec": {"url": "http://127.0.0.1:8080/alert"}})
    [call] = prepare_calls(hook, request.parameters)
    assert call.params["url"] == "http://127.0.0.1:8080/alert"
    assert call.params["method"] == "POST"
    assert call.params["body"] == {"text": "V_TEMP is 26.5 at 2024-01-15T12:01:00+00:00"}
    state = runner.outcomes[-1].new_state
    assert state["lastStatus"] is True
    assert state["executedCount"] == 4
    assert state["lastSuccess"] == "2024-01-15T12:01:00.000Z"
    assert "duplicate ignored" in state["message"]


def test_falling_below_and_crossing_again_fires_again() -> None:
    runner = Runner(threshold_task())
    assert runner.fires([26, 27, 20, 26, 24, 30]) == [True, False, False, True, False, True]


def test_without_ignore_duplicate_every_true_evaluation_notifies() -> None:
    runner = Runner(threshold_task(ignoreDuplicate=False))
    assert runner.fires([26, 27, 20, 28]) == [True, True, False, True]


# --------------------------------------------------------------------------------------------- dampening


def test_dampening_consecutive_needs_the_last_n_true() -> None:
    runner = Runner(threshold_task(ignoreDuplicate=False, dampening={"type": "consecutive", "occurrences": 3}))
    assert runner.fires([26, 26, 20, 26, 26, 26, 26, 20]) == [False, False, False, False, False, True, True, False]
    assert runner.outcomes[4].new_state["message"] == "consecutive 2/3"


def test_dampening_evaluation_needs_m_of_the_last_n() -> None:
    runner = Runner(threshold_task(ignoreDuplicate=False,
                                   dampening={"type": "evaluation", "occurrences": 2, "evaluation": 4}))
    # A true evaluation fires when it is at least the 2nd true among the last 4.
    assert runner.fires([26, 20, 20, 20, 20, 26, 20, 26, 20, 20, 20, 26]) == [
        False, False, False, False, False, False, False, True, False, False, False, False]


def test_dampening_active_duration_fires_once_held_long_enough_and_asks_for_a_recheck() -> None:
    runner = Runner(threshold_task(dampening={"type": "active_duration", "activeDuration": "5m"}))
    first = runner.feed(temperature(26), step=timedelta(minutes=2))
    assert not first.fire
    assert first.recheck_at == T0 + timedelta(minutes=5)
    assert first.new_state["activeSince"] == "2024-01-15T12:00:00.000Z"
    assert not runner.feed(temperature(27), step=timedelta(minutes=3)).fire
    held = runner.feed(temperature(28))
    assert held.fire and held.recheck_at is None
    assert runner.task.state.active_since == "2024-01-15T12:00:00.000Z"
    assert not runner.feed(temperature(20)).fire
    assert runner.task.state.active_since is None


def test_active_duration_recheck_with_the_same_event_uses_its_own_trigger_id() -> None:
    runner = Runner(threshold_task(dampening={"type": "active_duration", "activeDuration": "5m"}))
    hot = temperature(26)
    first = runner.feed(hot, step=timedelta(0))
    assert first.recheck_at is not None
    runner.now = first.recheck_at
    assert not runner.feed(hot).evaluated  # the same trigger id: a redelivery, ignored
    runner.now = first.recheck_at
    recheck = evaluate_task(runner.task, hot, runner.lookup, first.recheck_at, trigger_id="too-hot:recheck:1")
    assert recheck.fire


def test_dampening_none_follows_the_rule() -> None:
    runner = Runner(threshold_task(ignoreDuplicate=False, dampening={"type": "none"}))
    assert runner.fires([20, 26, 26]) == [False, True, True]


def test_history_is_bounded_oldest_first() -> None:
    runner = Runner(threshold_task(dampening={"type": "evaluation", "occurrences": 2, "evaluation": 15}))
    runner.fires([26 if i % 2 else 20 for i in range(30)])
    history = runner.task.state.executions_history
    assert len(history) == 15
    assert history[0].timestamp < history[-1].timestamp
    assert Runner(threshold_task()).task.state.executions_history == []
    short = Runner(threshold_task())
    short.fires([20] * 12)
    assert len(short.task.state.executions_history) == 10


# --------------------------------------------------------------------------------------------- disable / enable


def test_auto_disable_then_re_enable_after_the_duration() -> None:
    runner = Runner(threshold_task(ignoreDuplicate=False, autoDisable=True, reEnable=True, reEnableDuration="10m"))
    fired = runner.feed(temperature(26))
    assert fired.fire and not fired.enabled
    assert fired.re_enable_at == T0 + timedelta(minutes=10)
    assert fired.new_state["reEnableAt"] == "2024-01-15T12:10:00.000Z"
    assert not matches_event(runner.task, temperature(30))
    quiet = runner.feed(temperature(30))
    assert not quiet.evaluated and not quiet.enabled and not quiet.fire
    assert maybe_re_enable(runner.task, T0 + timedelta(minutes=9)) is None
    record = maybe_re_enable(runner.task, T0 + timedelta(minutes=10))
    assert record is not None and record["enabled"] is True
    assert record["state"]["reEnableAt"] is None and record["state"]["executionsHistory"] == []
    runner.now = T0 + timedelta(minutes=10)
    again = runner.feed(temperature(31))
    assert again.fire and again.evaluated and not again.enabled  # re-enabled, fired, auto-disabled again


def test_auto_disable_without_re_enable_stays_disabled() -> None:
    runner = Runner(threshold_task(autoDisable=True))
    assert runner.feed(temperature(26)).enabled is False
    assert runner.task.state.re_enable_at is None
    runner.now += timedelta(days=30)
    assert not runner.feed(temperature(26)).evaluated


# --------------------------------------------------------------------------------------------- idempotence


def test_a_redelivered_event_is_not_evaluated_twice() -> None:
    runner = Runner(threshold_task(ignoreDuplicate=False, dampening={"type": "consecutive", "occurrences": 2}))
    hot = temperature(26)
    assert runner.feed(hot).evaluated
    again = runner.feed(hot)
    assert not again.evaluated and not again.fire
    assert runner.task.state.executed_count == 1
    assert [h.triggered for h in runner.task.state.executions_history] == [True]


def test_trigger_ids_are_stable_for_the_same_event_content() -> None:
    task = Task.model_validate(threshold_task())
    hot = temperature(26)
    first = evaluate_task(task, hot, Lookup(), T0)
    second = evaluate_task(task, bus_event(hot), Lookup(), T0 + timedelta(seconds=5))
    assert first.trigger_id == second.trigger_id
    assert first.handler_requests[0].idempotency_key == f"{first.trigger_id}/hook"
    other = evaluate_task(task, temperature(27), Lookup(), T0)
    assert other.trigger_id != first.trigger_id
    timer = evaluate_task(task, None, Lookup(), T0)
    assert timer.trigger_id == "too-hot@2024-01-15T12:00:00.000Z"
    assert HandlerRequest.from_dict(first.handler_requests[0].to_dict()) == first.handler_requests[0]


# --------------------------------------------------------------------------------------------- rules

OPERATOR_CASES = [
    ("eq", 21.5, 21.5, True), ("eq", "21.5", 21.5, True), ("eq", 21.5, 22, False),
    ("ne", 21.5, 22, True), ("ne", 21.5, 21.5, False),
    ("in", '["a", "b"]', "b", True), ("in", ["a", "b"], "c", False), ("in", "a, b", "a", True),
    ("nin", ["a", "b"], "c", True), ("nin", ["a", "b"], "a", False),
    ("range_in", "[10, 20]", 15, True), ("range_in", [10, 20], 20, False), ("range_in", [10, 20], 25, False),
    ("range_not_in", [10, 20], 25, True), ("range_not_in", [10, 20], 15, False),
    ("gt", 25, 26, True), ("gt", 25, 25, False), ("gte", 25, 25, True), ("gte", 25, 24, False),
    ("lt", 25, 24, True), ("lt", 25, 25, False), ("lte", 25, 25, True), ("lte", 25, 26, False),
    ("exists", True, 1, True), ("exists", False, None, True), ("exists", True, None, False),
    ("regex", "^kit", "Kitchen", True), ("regex", "^bed", "Kitchen", False),
    ("regex", "(a+)+$", "a" * 26 + "!", False),  # linear time (RE2): no backtracking for ever
]


@pytest.mark.parametrize(("operator", "expected", "actual", "result"), OPERATOR_CASES)
def test_rule_operators_follow_the_reference(operator: str, expected: Any, actual: Any, result: bool) -> None:
    task = {"id": "op", "triggerOnEvent": False, "variables": {"probe": {
        "type": "resource_by_quick_id", "quickId": "data_repository:probe", "keyPath": "data.v"}},
        "evaluationConfig": {"rule": {"matchAll": True, "conditions": [
            {"variable": "probe", "operator": operator, "value": expected}]}}}
    lookup = Lookup({"data_repository:probe": {"id": "probe", "data": {"v": actual}}})
    assert evaluate_task(task, None, lookup, T0).triggered is result


def test_match_all_ands_and_otherwise_any_condition_suffices() -> None:
    conditions = [{"variable": "entity.current.value", "operator": "gt", "value": 25},
                  {"variable": "entity.labels.room", "operator": "eq", "value": "kitchen"}]
    for match_all, labels, expected in [(True, {"room": "kitchen"}, True), (True, {"room": "hall"}, False),
                                        (False, {"room": "hall"}, True)]:
        task = threshold_task(evaluationConfig={"rule": {"matchAll": match_all, "conditions": conditions}})
        assert evaluate_task(task, temperature(26, labels=labels), Lookup(), T0).triggered is expected
    no_conditions = threshold_task(evaluationConfig={"rule": {"conditions": []}})
    assert evaluate_task(no_conditions, temperature(1), Lookup(), T0).triggered is True


def test_condition_values_are_templates_against_the_variables() -> None:
    task = threshold_task(variables={"limit": "{{ 20 + 5 }}"}, evaluationConfig={"rule": {"conditions": [
        {"variable": "entity.current.value", "operator": "gt", "value": "{{ limit }}"}]}})
    assert evaluate_task(task, temperature(25.5), Lookup(), T0).triggered
    assert not evaluate_task(task, temperature(24.5), Lookup(), T0).triggered


def test_expression_evaluation_may_add_variables_for_the_handlers() -> None:
    task = threshold_task(evaluationType="expression", evaluationConfig={
        "expression": "{'isTriggered': entity.current.value > 25, 'level': ternary(entity.current.value > 30, "
                      "'alarm', 'warning')}"},
        handlerParameters={"msg": "{{ level }}: {{ entity.current.value }}"})
    outcome = evaluate_task(task, temperature(31), Lookup(), T0)
    assert outcome.fire
    assert outcome.handler_requests[0].parameters == {"msg": "alarm: 31"}
    plain = threshold_task(evaluationType="expression", evaluationConfig={"expression": "entity.current.value > 25"})
    assert not evaluate_task(plain, temperature(20), Lookup(), T0).triggered
    failing = threshold_task(evaluationType="expression", evaluationConfig={"expression": "1 / 0"})
    broken = evaluate_task(failing, temperature(20), Lookup(), T0)
    assert not broken.fire and "ZeroDivisionError" in broken.new_state["message"]


def test_webhook_evaluation_asks_the_resolver() -> None:
    webhooks = Webhooks({"http://rules.local/check": {"isTriggered": "true", "reason": "remote"}})
    task = threshold_task(evaluationType="webhook", evaluationConfig={"webhook": {
        "url": "http://rules.local/check", "method": "POST"}}, handlerParameters={"why": "{{ reason }}"})
    outcome = evaluate_task(task, temperature(1), Lookup(), T0, webhooks=webhooks)
    assert outcome.fire and outcome.handler_requests[0].parameters == {"why": "remote"}
    assert webhooks.calls[0][0] == "evaluation"


# --------------------------------------------------------------------------------------------- variables


def test_variables_by_quick_id_labels_template_and_webhook() -> None:
    lookup = Lookup({
        "field:gw.2.1.V_HUM": {"id": "gw.2.1.V_HUM", "current": {"value": 55}},
        "node:gw.7": {"id": "gw.7", "labels": {"room": "kitchen"}, "others": {"battery_level": 12}},
        "node:gw.3": {"id": "gw.3", "labels": {"room": "kitchen"}, "others": {"battery_level": 90}},
    })
    webhooks = Webhooks({"http://weather.local/now?city=berlin": {"outside": -3}})
    task = threshold_task(
        ignoreDuplicate=False,
        variables={
            "humidity": {"type": "resource_by_quick_id", "quickId": "field:gw.2.1.V_HUM.current.value"},
            "battery": {"type": "resource_by_labels", "resourceType": "node", "labels": {"room": "kitchen"},
                        "keyPath": "others.battery_level"},
            "city": "berlin",
            "weather": {"type": "webhook", "url": "http://weather.local/now?city={{ city }}"},
            "summary": {"type": "string", "value": "{{ humidity }}% {{ battery }}% {{ weather.outside }}C"},
        },
        evaluationConfig={"rule": {"matchAll": True, "conditions": [
            {"variable": "humidity", "operator": "gte", "value": 50},
            {"variable": "weather.outside", "operator": "lt", "value": 0}]}},
        handlerParameters={"msg": "{{ summary }}"})
    outcome = evaluate_task(task, temperature(26), lookup, T0, webhooks=webhooks)
    assert outcome.fire
    assert outcome.handler_requests[0].parameters == {"msg": "55% 90% -3C"}  # gw.3 comes first by id
    assert webhooks.calls[0][1].url == "http://weather.local/now?city=berlin"


def test_a_missing_resource_fails_the_evaluation_naming_the_variable() -> None:
    task = threshold_task(variables={"humidity": {"type": "resource_by_quick_id", "quickId": "field:gw.9.9.V_HUM"}})
    outcome = evaluate_task(task, temperature(26), Lookup(), T0)
    assert not outcome.fire and outcome.evaluated
    assert "'humidity'" in outcome.new_state["message"] and "does not exist" in outcome.new_state["message"]
    assert outcome.new_state["executionsHistory"] == []
    no_webhooks = threshold_task(variables={"w": {"type": "webhook", "url": "http://x.local/"}})
    assert "not available" in (evaluate_task(no_webhooks, temperature(26), Lookup(), T0).error or "")


def test_repository_lookup_reads_through_the_repository_port() -> None:
    repository = MemoryRepository(None, 0)
    try:
        repository.put(Kind.NODE, Node(gateway_id="gw", node_id="5", labels={"room": "attic"}).record())
        repository.put(Kind.NODE, Node(gateway_id="gw", node_id="4", labels={"room": "attic"}).record())
        lookup = RepositoryLookup(repository)
        assert lookup.get_by_quick_id("node:gw.5")["id"] == "gw.5"  # type: ignore[index]
        assert lookup.get_by_quick_id("node:gw.6") is None
        assert [r["id"] for r in lookup.find_by_labels("nd", {"room": "attic"})] == ["gw.4", "gw.5"]
    finally:
        repository.close()


# --------------------------------------------------------------------------------------------- matching


def test_event_filter_by_event_type_entity_type_and_key_paths() -> None:
    task = threshold_task(eventFilter={"eventTypes": ["updated"], "entityTypes": ["field"],
                                       "filters": {"Labels.Room": "kitchen", "current.value": {"operator": "gte",
                                                                                               "value": 10}}})
    assert matches_event(task, temperature(12, labels={"room": "kitchen"}))
    assert not matches_event(task, temperature(9, labels={"room": "kitchen"}))
    assert not matches_event(task, temperature(12, labels={"room": "hall"}))
    assert not matches_event(task, temperature(12, labels={"room": "kitchen"}, event_type="created"))
    node = event("updated", Kind.NODE, Node(gateway_id="gw", node_id="1", labels={"room": "kitchen"}).record())
    assert not matches_event(task, node)
    assert not matches_event({**task, "enabled": False}, temperature(12, labels={"room": "kitchen"}))
    assert not matches_event({**task, "triggerOnEvent": False}, temperature(12, labels={"room": "kitchen"}))
    anything = {"id": "any"}
    assert matches_event(anything, node) and matches_event(anything, temperature(1))


def test_events_arrive_in_every_shape() -> None:
    domain = temperature(26)
    raw = {"id": "eb-1", "detail-type": "field.updated", "source": "mycontroller", "detail": domain.to_dict()}
    for shape in (domain, bus_event(domain), BusEvent("mycontroller", "field.updated", domain.to_dict()), raw,
                  domain.to_dict()):
        normalized = normalize_event(shape)
        assert normalized is not None and normalized["entityId"] == TEMP_ID
        assert matches_event(threshold_task(), shape)


def test_task_index_finds_exactly_what_matching_one_by_one_finds() -> None:
    rng = random.Random(5)
    tasks: list[dict[str, Any]] = []
    for number in range(200):
        roll = rng.random()
        event_filter: dict[str, Any] = {"entityTypes": ["field"]}
        if roll < 0.4:
            event_filter["filters"] = {"id": f"gw.{rng.randint(1, 20)}.1.V_TEMP"}
        elif roll < 0.6:
            event_filter["filters"] = {"nodeId": rng.choice([str(rng.randint(1, 20)), rng.randint(1, 20)])}
        elif roll < 0.8:
            event_filter["filters"] = {"labels.room": rng.choice(["kitchen", "hall"]),
                                       "current.value": {"operator": "gt", "value": rng.randint(0, 40)}}
        elif roll < 0.9:
            event_filter = {"eventTypes": ["created"]}
        tasks.append({"id": f"t{number}", "eventFilter": event_filter, "enabled": rng.random() > 0.1})
    index = TaskIndex(tasks)
    models = [Task.model_validate(t) for t in tasks]
    for _ in range(100):
        trigger = temperature(rng.uniform(0, 40), node=str(rng.randint(1, 20)),
                              labels={"room": rng.choice(["kitchen", "hall"])},
                              event_type=rng.choice(["updated", "created"]))
        expected = [t.id for t in models if matches_event(t, trigger)]
        assert [t.id for t in index.matching(trigger)] == expected
    assert len(index) == sum(1 for t in models if t.enabled)


def test_bool_entity_values_match_text_filters_through_the_index() -> None:
    task = {"id": "on", "eventFilter": {"filters": {"current.value": "true"}}}
    switch = event("updated", Kind.FIELD, {"id": "gw.1.2.V_STATUS", "current": {"value": True}})
    assert matches_event(task, switch)
    assert [t.id for t in TaskIndex([task]).matching(switch)] == ["on"]


# --------------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(("patch", "location", "message"), [
    ({"dampening": {"type": "consecutive"}}, "dampening", "occurrences"),
    ({"dampening": {"type": "evaluation", "occurrences": 3, "evaluation": 2}}, "dampening", "evaluation"),
    ({"dampening": {"type": "active_duration", "activeDuration": "soon"}}, "dampening", "duration"),
    ({"evaluationType": "javascript"}, "", "evaluationConfig.javascript is required"),
    ({"evaluationType": "javascript", "evaluationConfig": {"javascript": "if ("}}, "evaluationConfig.javascript",
     "SyntaxError"),
    ({"evaluationConfig": {"rule": {"conditions": [{"variable": "x", "operator": "like"}]}}},
     "evaluationConfig.rule.conditions.0.operator", "like"),
    ({"evaluationConfig": {"rule": {"conditions": [{"variable": "x", "operator": "regex", "value": "("}]}}},
     "evaluationConfig.rule.conditions.0", "regex"),
    ({"eventFilter": {"entityTypes": ["fields"]}}, "eventFilter.entityTypes", "fields"),
    ({"variables": {"event": "x"}}, "variables", "reserved"),
    ({"variables": {"t": {"type": "resource_by_quick_id", "quickId": "gw.1"}}}, "variables.t", "quickId"),
    ({"handlerParameters": {"p": "{{ broken"}}, "handlerParameters", "p: template syntax"),
    ({"reEnable": True, "autoDisable": True}, "", "reEnableDuration"),
    ({"executionInterval": "often"}, "executionInterval", "invalid duration"),
])
def test_invalid_tasks_are_refused_naming_the_field(patch: dict[str, Any], location: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Task.model_validate(threshold_task(**patch))
    errors = caught.value.errors()
    assert any(".".join(map(str, e["loc"])).startswith(location) and message in str(e["msg"]) for e in errors), errors


def test_trigger_on_event_defaults_from_the_interval() -> None:
    assert Task.model_validate({"id": "a"}).trigger_on_event is True
    assert Task.model_validate({"id": "b", "executionInterval": "5m"}).trigger_on_event is False
    assert Task.model_validate({"id": "b", "handlers": ["handler:x", "x", "y"]}).handlers == ["x", "y"]


def test_task_records_round_trip_in_the_reference_shape() -> None:
    task = Task.model_validate(threshold_task(variables={
        "limit": "{{ 25 }}",
        "hum": {"type": "resource_by_quick_id", "resourceType": "field", "quickId": "gw.2.1.V_HUM",
                "keyPath": "current.value"},
        "kitchen": {"type": "resource_by_labels", "resourceType": "node", "labels": {"room": "kitchen"}},
        "weather": {"type": "webhook", "url": "http://weather.local/", "queryParameters": {"q": "x"}}}))
    record = task.record()
    assert record["variables"]["hum"] == {"type": "resource_by_quick_id", "resourceType": "field",
                                          "quickId": "gw.2.1.V_HUM", "keyPath": "current.value"}
    assert record["eventFilter"] == {"eventTypes": ["updated"], "entityTypes": ["field"], "filters": {"id": TEMP_ID}}
    assert set(record["state"]) >= {"lastEvaluation", "lastSuccess", "message", "executedCount",
                                    "executionsHistory", "activeSince"}
    assert Task.model_validate(record).record() == record
