"""Automation benchmark: 1,000 enabled event tasks against a stream of field events, with the pure evaluator.

100 MySensors nodes x 5 sensors send 10,000 ``field.updated`` events with random values. The 1,000 tasks mix
the filters users write: by field id, by node and field type, by label with a value bound (not indexable), by
field type alone; rules with the reference's operators, ignoreDuplicate, consecutive and evaluation dampening,
expressions, and webhook parameters rendered when they fire. Each event goes through ``TaskIndex.matching`` and
every matching task through ``evaluate_task`` (state carried from one evaluation to the next), as the task
function does in AWS and in the local stack.

Prints, as its last line:
``automation: <N> task evaluations/s, <H> handler invocations/1000 events``
where N counts every (task, event) pair decided — 1,000 tasks x the events, per second of wall time — and H the
handler requests queued per 1,000 events.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chalicelib.core.automation.models import Task
from chalicelib.core.automation.tasks import TaskIndex, evaluate_task
from chalicelib.core.model import DomainEvent, FieldModel, Kind, Record, event

SENSORS: list[tuple[str, str, tuple[float, float] | None, float]] = [  # field id, metric type, range, step
    ("V_TEMP", "gauge_float", (-10, 35), 0.5),
    ("V_HUM", "gauge_float", (20, 90), 2.0),
    ("V_LIGHT_LEVEL", "gauge", (0, 1000), 40.0),
    ("V_STATUS", "binary", None, 0.1),
    ("V_WATT", "gauge_float", (0, 2500), 150.0),
]
"""Values follow a random walk within the range (a switch flips with the step's probability): sensors drift,
so thresholds are crossed now and then, not on every message."""
ROOMS = ("kitchen", "hall", "bedroom", "office", "garage")
WEBHOOK = {"alert": {"type": "webhook", "body": {
    "text": "{{ entity.fieldId }} on node {{ entity.nodeId }} is {{ entity.current.value }}",
    "at": "{{ now().isoformat() }}"}}}


class NoLookup:
    def get_by_quick_id(self, quick_id: str) -> Record | None:
        return None

    def find_by_labels(self, kind: str, labels: Mapping[str, str]) -> list[Record]:
        return []


def make_tasks(count: int, nodes: int, rng: random.Random) -> list[Task]:
    tasks: list[dict[str, Any]] = []
    for number in range(count):
        node = rng.randint(1, nodes)
        child = rng.randint(1, len(SENSORS))
        field_id, _, value_range, _ = SENSORS[child - 1]
        bounds = (value_range[0] + (value_range[1] - value_range[0]) * 0.2,
                  value_range[1] - (value_range[1] - value_range[0]) * 0.2) if value_range else None
        roll = rng.random()
        task: dict[str, Any] = {"id": f"task-{number}", "handlers": ["hook"], "handlerParameters": WEBHOOK,
                                "modifiedOn": "2026-01-01T00:00:00.000Z"}
        low, high = bounds or (0, 1)
        if roll < 0.5:  # one field, a threshold, notify on the rise
            task |= {"ignoreDuplicate": True,
                     "eventFilter": {"eventTypes": ["updated"], "filters": {"id": f"gw.{node}.{child}.{field_id}"}},
                     "evaluationConfig": {"rule": {"conditions": [
                         {"variable": "entity.current.value", "operator": "gt" if bounds else "eq",
                          "value": rng.uniform(low, high) if bounds else True}]}}}
        elif roll < 0.7:  # a node's temperature out of a band, three times in a row
            task |= {"ignoreDuplicate": True, "dampening": {"type": "consecutive", "occurrences": 3},
                     "eventFilter": {"entityTypes": ["field"], "filters": {"nodeId": str(node), "fieldId": "V_TEMP"}},
                     "evaluationConfig": {"rule": {"conditions": [
                         {"variable": "entity.current.value", "operator": "range_not_in", "value": [16, 26]}]}}}
        elif roll < 0.85:  # any sensor of a room above a level: not indexable, checked on every event
            task |= {"eventFilter": {"entityTypes": ["field"], "filters": {
                         "labels.room": rng.choice(ROOMS), "current.value": {"operator": "gt", "value": 2300}}},
                     "evaluationConfig": {"rule": {"matchAll": True, "conditions": [
                         {"variable": "entity.current.value", "operator": "lt", "value": 2450},
                         {"variable": "entity.labels.room", "operator": "regex", "value": "^[a-z]+$"}]}}}
        elif roll < 0.95:  # a node's switch, two of the last five true
            task |= {"ignoreDuplicate": True,
                     "dampening": {"type": "evaluation", "occurrences": 2, "evaluation": 5},
                     "eventFilter": {"filters": {"fieldId": "V_STATUS", "nodeId": str(node)}},
                     "evaluationConfig": {"rule": {"conditions": [
                         {"variable": "entity.current.value", "operator": "eq", "value": True}]}}}
        else:  # an expression on a node's power
            task |= {"ignoreDuplicate": True, "evaluationType": "expression",
                     "eventFilter": {"filters": {"id": f"gw.{node}.5.V_WATT"}},
                     "evaluationConfig": {"expression": "entity.current.value > 1500 and entity.labels.room != ''"}}
        tasks.append(task)
    return [Task.model_validate(t) for t in tasks]


def make_events(count: int, nodes: int, rng: random.Random) -> list[DomainEvent]:
    events: list[DomainEvent] = []
    values: dict[tuple[int, int], Any] = {}
    for sequence in range(count):
        node = rng.randint(1, nodes)
        child = rng.randint(1, len(SENSORS))
        field_id, metric_type, value_range, step = SENSORS[child - 1]
        previous = values.get((node, child))
        if value_range is None:
            value: Any = (rng.random() < 0.5) if previous is None else (not previous if rng.random() < step
                                                                         else previous)
        else:
            low, high = value_range
            start = rng.uniform(low, high) if previous is None else previous + rng.gauss(0, step)
            value = round(min(high, max(low, start)), 1)
            if metric_type == "gauge":
                value = int(value)
        values[(node, child)] = value
        record = FieldModel.model_validate({
            "gatewayId": "gw", "nodeId": str(node), "sourceId": str(child), "fieldId": field_id,
            "metricType": metric_type, "labels": {"room": ROOMS[node % len(ROOMS)]},
            "current": {"value": value, "timestamp": "2026-01-01T00:00:00.000Z", "sequence": sequence}}).record()
        events.append(event("updated", Kind.FIELD, record))
    return events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    tasks = make_tasks(args.tasks, args.nodes, rng)
    stream = make_events(args.events, args.nodes, rng)
    lookup = NoLookup()
    states: dict[str, Record] = {}
    now = datetime(2026, 1, 1, tzinfo=UTC)
    step = timedelta(milliseconds=50)

    started = time.perf_counter()
    index = TaskIndex(tasks)
    evaluated = fired = requests = 0
    for trigger in stream:
        for task in index.matching(trigger):
            outcome = evaluate_task(task, trigger, lookup, now, state=states.get(task.id))
            states[task.id] = outcome.new_state
            evaluated += outcome.evaluated
            fired += outcome.fire
            requests += len(outcome.handler_requests)
        now += step
    elapsed = time.perf_counter() - started

    decided = len(index) * len(stream)
    print(f"tasks {len(index)}, events {len(stream)}, matched evaluations {evaluated} "
          f"({evaluated / len(stream):.2f}/event), fired {fired}, elapsed {elapsed:.2f}s")
    print(f"automation: {decided / elapsed:,.0f} task evaluations/s, "
          f"{requests * 1000 / len(stream):.1f} handler invocations/1000 events")


if __name__ == "__main__":
    main()
