"""Tasks, after MyController v2: which events trigger them, their variables, rules, dampening and state.

Pure: ``evaluate_task(task, event, lookup, now)`` takes the task (with its state) and returns the new state and
the handler requests to queue; storing, queueing and scheduling are the caller's. Resources are read through
``ResourceLookup`` and webhook variables fetched through ``WebhookResolver``, two small protocols the wiring
implements (``RepositoryLookup`` adapts the repository port).

Semantics (the reference's, with its rough edges fixed):

* **Matching** (``matches_event``, ``TaskIndex``): an enabled task with ``triggerOnEvent`` matches an event when
  its type is among ``eventFilter.eventTypes`` and its entity type among ``entityTypes`` (empty lists match
  all) and the entity passes every key-path filter (the list query's operators, ``eq`` by default). Filters are
  compiled once per task version; ``TaskIndex`` also buckets tasks by one equality filter (``id``, ``fieldId``…)
  so that an event is checked against the few tasks that can match, not all of them.
* **Variables**: a template string, ``resource_by_quick_id`` (quick id + ``keyPath``), ``resource_by_labels``
  (first by id) or ``webhook``; resolved in order, so later ones may use earlier ones. Always available:
  ``event`` (the domain event, ``None`` on a timer), ``entity`` (its entity) and ``task`` (id, description,
  labels). A resource that does not exist fails the evaluation, as in the reference.
* **Rule**: each condition's ``variable`` is a key path into the variables (``temperature``,
  ``entity.current.value``), compared with the list-query operators (``query.compile_filter``: numbers compare
  as numbers, ``range_in`` is strict, ``regex`` case-insensitive); a string value is rendered as a template
  first, and list operators read a JSON list. ``matchAll`` ANDs, otherwise any one condition suffices; no
  conditions means true.
* **Dampening** over the execution history (oldest first, this evaluation included): ``consecutive`` fires when
  the last ``occurrences`` were all true; ``evaluation`` when ``occurrences`` of the last ``evaluation`` were
  true; ``active_duration`` when the rule has held since ``activeSince`` for the duration — the outcome's
  ``recheck_at`` tells the caller when to evaluate again if no event comes first.
* **Notify** when the dampened result is true, unless ``ignoreDuplicate`` and it was already true (then only on
  the rise). ``autoDisable`` disables the task after notifying; with ``reEnable`` it comes back after
  ``reEnableDuration`` (``re_enable_at``; ``maybe_re_enable``) with a fresh history.
* **Idempotence**: each evaluation has a trigger id (from the event's content, or the task and ``now`` on a
  timer). A trigger id already in ``state.recentTriggers`` is not evaluated again, and handler requests carry
  it so the handler queue runs each handler at most once per trigger. Queue the requests before storing the
  state: a crash in between then replays into the same trigger id, which the handlers' idempotency absorbs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, NamedTuple, Protocol, cast

from pydantic import ValidationError

from ..errors import DomainError
from ..model import QUICK_ID_ALIASES, DomainEvent, Kind, QuickIdError, Record, parse_quick_id
from ..ports import BusEvent, Filter, ListQuery, Repository, Sort
from ..query import Predicate, QueryError, compile_filter, get_path, sort_key
from .clock import Location, aware, from_iso, iso, parse_duration
from .handlers import HandlerParameterError, render_parameters
from .javascript import limits_for, run_script
from .models import (
    HISTORY_LIMIT,
    Condition,
    LabelsVariable,
    QuickIdVariable,
    Task,
    TemplateVariable,
    WebhookCall,
    condition_value,
    filter_of,
)
from .templates import ENGINE, TemplateEngine, TemplateError, is_template, truthy

RECENT_TRIGGERS: Final = 16
"""Trigger ids a task remembers, to ignore redeliveries of events it already evaluated."""
_MISSING: Final[Any] = object()


# --------------------------------------------------------------------------------------------- ports


class ResourceLookup(Protocol):
    """Read access to resources for variables and forward payload (the repository, through ``RepositoryLookup``)."""

    def get_by_quick_id(self, quick_id: str) -> Record | None:
        """The record a quick id without key path names (``field:gw.1.1.V_TEMP``), or ``None``."""
        ...

    def find_by_labels(self, kind: str, labels: Mapping[str, str]) -> list[Record]:
        """Records of ``kind`` carrying every label (values compared as the list query's ``eq`` does)."""
        ...


class WebhookResolver(Protocol):
    """Makes the HTTP calls of ``webhook`` variables and evaluations (the wiring's HTTP client)."""

    def fetch(self, name: str, call: WebhookCall, variables: Mapping[str, Any]) -> Any:
        """Call ``call`` (already rendered) and return its decoded JSON body; when ``call.body`` is ``None`` and
        the method takes a body, send ``variables`` as JSON (the reference's default). Raise on a transport
        error or a status other than ``call.expected_status``."""
        ...


def _kind(kind: str) -> Kind:
    key = kind.strip().lower()
    return QUICK_ID_ALIASES.get(key) or Kind(key)


class RepositoryLookup:
    """``ResourceLookup`` over the repository port (pure: it only calls the port)."""

    def __init__(self, repository: Repository) -> None:
        self.repository = repository

    def get_by_quick_id(self, quick_id: str) -> Record | None:
        quick = parse_quick_id(quick_id)
        return self.repository.get(quick.kind, quick.id)

    def find_by_labels(self, kind: str, labels: Mapping[str, str]) -> list[Record]:
        query = ListQuery(filters=[Filter(f"labels.{k}", "eq", v) for k, v in labels.items()],
                          sort_by=[Sort("id")], limit=0)
        return self.repository.query(_kind(kind), query).data


# --------------------------------------------------------------------------------------------- events

EventLike = DomainEvent | BusEvent | Mapping[str, Any]


def normalize_event(event: EventLike | None) -> Record | None:
    """An event as the domain-event dict (``type, entityType, entityId, entityQuickId, entity``), from a
    ``DomainEvent``, a ``BusEvent``, a raw EventBridge event (its ``detail``) or such a dict."""
    if event is None:
        return None
    if isinstance(event, DomainEvent):
        return event.to_dict()
    if isinstance(event, BusEvent):
        return event.detail
    detail = event.get("detail")
    if isinstance(detail, dict) and "entityType" in detail:
        return {**detail, "id": event.get("id")} if event.get("id") else detail
    return dict(event)


def trigger_id_of(task_id: str, event: Record | None, now: datetime) -> str:
    """The id of one trigger of a task: the same event content (a redelivery) gives the same id.

    A field value is identified by its edge timestamp, sequence and value (cheap, and exactly what makes an
    update new); other entities by their whole content.
    """
    if event is None:
        return f"{task_id}@{iso(now)}"
    entity = event.get("entity")
    current = entity.get("current") if isinstance(entity, dict) else None
    if isinstance(current, dict) and current.get("timestamp"):
        material = (f"{event.get('type')}|{event.get('entityQuickId')}|{current.get('timestamp')}|"
                    f"{current.get('sequence')}|{current.get('value')!r}")
    else:
        material = json.dumps([event.get("type"), event.get("entityQuickId"), entity], sort_keys=True,
                              separators=(",", ":"), default=str)
    return f"{task_id}#{hashlib.sha1(material.encode(), usedforsecurity=False).hexdigest()[:20]}"


# --------------------------------------------------------------------------------------------- compiling


def _anchor_keys(value: Any) -> tuple[Any, ...]:
    """Index keys under which an entity value may equal a filter value (see ``TaskIndex``)."""
    if value is _MISSING or value is None:
        return ()
    key = sort_key(value)
    if isinstance(value, bool):
        return key, (2, "true" if value else "false")
    return (key,)


@dataclass(slots=True)
class CompiledTask:
    """A task's filters and static conditions, compiled once per version."""

    task: Task
    version: str
    event_types: frozenset[str] | None
    entity_types: frozenset[str] | None
    predicate: Predicate | None
    filter_predicates: tuple[Predicate, ...]
    anchors: tuple[tuple[str, Any, int], ...]
    """``(path, index key, filter position)`` of every plain equality filter: where ``TaskIndex`` may file it."""
    conditions: list[tuple[Condition, Predicate | None]]
    history_limit: int

    def matches(self, event: Record) -> bool:
        if self.event_types is not None and event.get("type") not in self.event_types:
            return False
        if self.entity_types is not None and event.get("entityType") not in self.entity_types:
            return False
        if self.predicate is None:
            return True
        entity = event.get("entity")
        return isinstance(entity, dict) and self.predicate(entity)

    def matcher_without(self, position: int) -> Callable[[Record], bool]:
        """``matches`` for events already known to pass filter ``position`` (the index looked it up)."""
        rest = [p for i, p in enumerate(self.filter_predicates) if i != position]
        event_types, entity_types = self.event_types, self.entity_types

        def check(event: Record) -> bool:
            if event_types is not None and event.get("type") not in event_types:
                return False
            if entity_types is not None and event.get("entityType") not in entity_types:
                return False
            if not rest:
                return True
            entity = event.get("entity")
            return isinstance(entity, dict) and all(p(entity) for p in rest)

        return check


_COMPILED: dict[tuple[str, str], CompiledTask] = {}
_COMPILED_LIMIT: Final = 20_000


def task_version(task: Task) -> str:
    """What identifies a task's configuration: ``modifiedOn`` (the API sets it), else a digest of it."""
    if task.modified_on:
        return task.modified_on
    text = task.model_dump_json(exclude={"state", "enabled"})
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def _compile(task: Task, version: str) -> CompiledTask:
    filters = [filter_of(key, value) for key, value in task.event_filter.filters.items()]
    predicates = [compile_filter(f) for f in filters]
    predicate: Predicate | None
    if not predicates:
        predicate = None
    elif len(predicates) == 1:
        predicate = predicates[0]
    else:
        predicate = lambda entity: all(p(entity) for p in predicates)  # noqa: E731
    anchors = tuple((f.key, sort_key(f.value), position) for position, f in enumerate(filters)
                    if f.operator == "eq" and f.value is not None and not isinstance(f.value, dict | list))
    conditions: list[tuple[Condition, Predicate | None]] = []
    for condition in task.evaluation_config.rule.conditions:
        static = None if is_template(condition.value) else compile_filter(
            Filter(condition.variable, condition.operator, condition_value(condition.operator, condition.value)))
        conditions.append((condition, static))
    dampening = task.dampening
    return CompiledTask(
        task=task,
        version=version,
        event_types=frozenset(task.event_filter.event_types) or None,
        entity_types=frozenset(task.event_filter.entity_types) or None,
        predicate=predicate,
        filter_predicates=tuple(predicates),
        anchors=anchors,
        conditions=conditions,
        history_limit=max(HISTORY_LIMIT, dampening.occurrences, dampening.evaluation),
    )


def compile_task(task: Task) -> CompiledTask:
    """The compiled form of a task, cached on the instance and by ``(id, version)`` across instances."""
    slot = task._compiled
    if slot is not None and slot[0] is task.event_filter and slot[1] is task.evaluation_config and \
            slot[2] is task.dampening:
        return cast(CompiledTask, slot[3])
    key = (task.id, task_version(task))
    compiled = _COMPILED.get(key)
    if compiled is None or compiled.task.event_filter != task.event_filter or \
            compiled.task.evaluation_config != task.evaluation_config or compiled.task.dampening != task.dampening:
        compiled = _compile(task, key[1])
        if len(_COMPILED) >= _COMPILED_LIMIT:
            _COMPILED.clear()
        _COMPILED[key] = compiled
    # Remember which sub-objects it was compiled from: a model_copy that replaces one of them recompiles.
    task._compiled = (task.event_filter, task.evaluation_config, task.dampening, compiled)
    return compiled


def as_task(task: Task | Record) -> Task:
    """A task model from a model or a record (``ValidationError`` names the bad field)."""
    return task if isinstance(task, Task) else Task.model_validate(task)


def matches_event(task: Task | Record, event: EventLike) -> bool:
    """Whether an event triggers this task (enabled, ``triggerOnEvent``, and its event filter passes)."""
    model = as_task(task)
    if not model.enabled or not model.trigger_on_event:
        return False
    normalized = normalize_event(event)
    return normalized is not None and compile_task(model).matches(normalized)


class _Entry(NamedTuple):
    order: int
    check: Callable[[Record], bool]
    task: Task


class TaskIndex:
    """The enabled event tasks, bucketed for matching many events fast.

    Each task with a plain equality filter is filed under one of them, keyed the way the list query compares
    values; of several, the one fewest other tasks share (a node id rather than ``fieldId: V_TEMP``). An event
    then meets only the tasks whose filed value equals the entity's value at that path, plus the tasks without
    such a filter; every candidate is checked in full. Rebuild the index when tasks change (it is cheap: compiled
    tasks are cached).
    """

    def __init__(self, tasks: Iterable[Task | Record]) -> None:
        self._anchored: dict[str, dict[Any, list[_Entry]]] = {}
        self._loose: list[_Entry] = []
        compiled_tasks: list[tuple[CompiledTask, Task]] = []
        shared: dict[tuple[str, Any], int] = {}
        for model in (as_task(t) for t in tasks):
            if not model.enabled or not model.trigger_on_event:
                continue
            compiled = compile_task(model)
            compiled_tasks.append((compiled, model))
            for path, key, _ in compiled.anchors:
                shared[(path, key)] = shared.get((path, key), 0) + 1
        self._size = len(compiled_tasks)
        for order, (compiled, model) in enumerate(compiled_tasks):
            if not compiled.anchors:
                self._loose.append(_Entry(order, compiled.matches, model))
                continue
            path, key, position = min(compiled.anchors, key=lambda a: (shared[(a[0], a[1])], a[0]))
            entry = _Entry(order, compiled.matcher_without(position), model)
            self._anchored.setdefault(path, {}).setdefault(key, []).append(entry)

    def __len__(self) -> int:
        return self._size

    def matching(self, event: EventLike) -> list[Task]:
        """The tasks an event triggers, in the order they were given."""
        normalized = normalize_event(event)
        if normalized is None:
            return []
        found = [entry for entry in self._loose if entry.check(normalized)]
        entity = normalized.get("entity")
        if isinstance(entity, dict) and self._anchored:
            for path, buckets in self._anchored.items():
                for key in _anchor_keys(get_path(entity, path, _MISSING)):
                    for entry in buckets.get(key, ()):
                        if entry.check(normalized):
                            found.append(entry)
        if len(found) > 1:
            found.sort(key=lambda e: e.order)
        return [entry.task for entry in found]


# --------------------------------------------------------------------------------------------- variables


class VariableError(DomainError, ValueError):
    """A variable that could not be loaded; the message names it."""


def _lookup_path(record: Any, path: str) -> Any:
    if not path or path == ".":
        return record
    return get_path({"v": record}, "v." + path)


def resolve_variables(specs: Mapping[str, Any], base: Mapping[str, Any], lookup: ResourceLookup, *,
                      now: datetime, location: Location | None = None, webhooks: WebhookResolver | None = None,
                      engine: TemplateEngine = ENGINE) -> dict[str, Any]:
    """``base`` plus every variable resolved, in order. Raises ``VariableError`` naming the one that failed."""
    values = dict(base)
    for name, spec in specs.items():
        try:
            values[name] = _resolve(name, spec, values, lookup, now, location, webhooks, engine)
        except VariableError:
            raise
        except (TemplateError, QuickIdError, ValidationError, ValueError) as error:
            raise VariableError(f"variable {name!r}: {error}") from None
    return values


def _resolve(name: str, spec: Any, context: Mapping[str, Any], lookup: ResourceLookup, now: datetime,
             location: Location | None, webhooks: WebhookResolver | None, engine: TemplateEngine) -> Any:
    if isinstance(spec, str):
        return engine.render(spec, context, now=now, location=location)
    if isinstance(spec, TemplateVariable):
        return engine.render(spec.value, context, now=now, location=location)
    if isinstance(spec, QuickIdVariable):
        quick = parse_quick_id(spec.full_quick_id)
        record = lookup.get_by_quick_id(f"{quick.kind.value}:{quick.id}")
        if record is None:
            raise VariableError(f"variable {name!r}: {quick.kind.value}:{quick.id} does not exist")
        path = ".".join(p for p in (quick.key_path, spec.key_path) if p and p != ".")
        return _lookup_path(record, path)
    if isinstance(spec, LabelsVariable):
        records = lookup.find_by_labels(spec.resource_type, spec.labels)
        if not records:
            raise VariableError(f"variable {name!r}: no {spec.resource_type} has labels {dict(spec.labels)}")
        first = min(records, key=lambda r: str(r.get("id", "")))
        return _lookup_path(first, spec.key_path)
    if isinstance(spec, WebhookCall):
        return _call_webhook(name, spec, context, now, location, webhooks, engine)
    raise VariableError(f"variable {name!r}: unsupported specification {spec!r}")


def _call_webhook(name: str, spec: WebhookCall, context: Mapping[str, Any], now: datetime,
                  location: Location | None, webhooks: WebhookResolver | None, engine: TemplateEngine) -> Any:
    if webhooks is None:
        raise VariableError(f"variable {name!r}: webhooks are not available here")
    rendered = WebhookCall.model_validate(
        engine.render_value(spec.model_dump(mode="json"), context, now=now, location=location))
    try:
        return webhooks.fetch(name, rendered, context)
    except Exception as error:  # the resolver's transport errors are many; they fail this evaluation only
        raise VariableError(f"variable {name!r}: webhook {rendered.url} failed: {error}") from None


# --------------------------------------------------------------------------------------------- outcome


@dataclass(frozen=True, slots=True)
class HandlerRequest:
    """Run one handler with rendered parameters; ``trigger_id`` makes it idempotent."""

    handler_id: str
    parameters: dict[str, Any]
    trigger_id: str
    source: str = ""
    """The quick id of what fired (``task:<id>``, ``schedule:<id>``)."""

    @property
    def idempotency_key(self) -> str:
        return f"{self.trigger_id}/{self.handler_id}"

    def to_dict(self) -> Record:
        return {"handlerId": self.handler_id, "parameters": self.parameters, "triggerId": self.trigger_id,
                "source": self.source}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HandlerRequest:
        return cls(str(data["handlerId"]), dict(data.get("parameters") or {}), str(data["triggerId"]),
                   str(data.get("source") or ""))


@dataclass(slots=True)
class TaskOutcome:
    """What one evaluation decided. Store ``enabled`` and ``new_state`` on the task; queue the requests."""

    fire: bool
    new_state: Record
    handler_requests: list[HandlerRequest] = field(default_factory=list)
    enabled: bool = True
    evaluated: bool = True
    """False when nothing was evaluated (disabled task, no match, a trigger already seen)."""
    triggered: bool = False
    """The rule's own result, before dampening."""
    trigger_id: str = ""
    re_enable_at: datetime | None = None
    recheck_at: datetime | None = None
    """``active_duration``: evaluate again at this time (with the same event) if nothing else triggers it."""
    error: str | None = None


def _state_record(task: Task) -> Record:
    return task.state.model_dump(mode="json", by_alias=True)


def _fresh_after_re_enable(state: Record) -> Record:
    return {**state, "reEnableAt": None, "activeSince": None, "lastStatus": False, "executionsHistory": [],
            "message": "re-enabled"}


def maybe_re_enable(task: Task | Record, now: datetime) -> Record | None:
    """The task record re-enabled with a fresh history, if it was auto-disabled and its ``reEnableAt`` passed."""
    model = as_task(task)
    due = from_iso(model.state.re_enable_at)
    if model.enabled or due is None or aware(now, "now") < due:
        return None
    return {**model.record(), "enabled": True, "state": _fresh_after_re_enable(_state_record(model))}


def _evaluate_rule(task: Task, compiled: CompiledTask, variables: Mapping[str, Any], now: datetime,
                   location: Location | None, engine: TemplateEngine) -> bool:
    rule = task.evaluation_config.rule
    if not compiled.conditions:
        return True
    for condition, predicate in compiled.conditions:
        if predicate is None:
            rendered = engine.render(str(condition.value), variables, now=now, location=location)
            try:
                predicate = compile_filter(Filter(condition.variable, condition.operator,
                                                  condition_value(condition.operator, rendered)))
            except QueryError as error:
                raise TemplateError(f"condition on {condition.variable!r}: {error}") from None
        passed = predicate(variables)  # type: ignore[arg-type]
        if rule.match_all and not passed:
            return False
        if not rule.match_all and passed:
            return True
    return rule.match_all


def _evaluate(task: Task, compiled: CompiledTask, variables: dict[str, Any], now: datetime,
              location: Location | None, webhooks: WebhookResolver | None, engine: TemplateEngine) -> bool:
    if task.evaluation_type == "rule":
        return _evaluate_rule(task, compiled, variables, now, location, engine)
    if task.evaluation_type == "expression":
        result = engine.evaluate(task.evaluation_config.expression, variables, now=now, location=location)
    elif task.evaluation_type == "javascript":
        result = run_script(task.evaluation_config.javascript, {**variables, "taskEvent": variables.get("event")},
                            limits_for(task.labels))
    else:
        assert task.evaluation_config.webhook is not None  # the model requires it for webhook evaluation
        result = _call_webhook("evaluation", task.evaluation_config.webhook, variables, now, location, webhooks,
                               engine)
    if isinstance(result, Mapping):
        variables.update({k: v for k, v in result.items() if k != "isTriggered" and isinstance(k, str)})
        return truthy(result.get("isTriggered"))
    return truthy(result)


def _dampen(task: Task, history: Sequence[Record], triggered: bool, active_since: datetime | None,
            now: datetime) -> tuple[bool, datetime | None, str]:
    """The dampened result, when to re-check (active duration), and a state message."""
    dampening = task.dampening
    if dampening.type == "none":
        return triggered, None, "triggered" if triggered else "not triggered"
    if dampening.type == "consecutive":
        window = history[-dampening.occurrences:]
        streak = 0
        for item in reversed(window):
            if not item["triggered"]:
                break
            streak += 1
        passed = triggered and streak >= dampening.occurrences
        return passed, None, f"consecutive {streak}/{dampening.occurrences}"
    if dampening.type == "evaluation":
        window = history[-dampening.evaluation:]
        hits = sum(1 for item in window if item["triggered"])
        passed = triggered and hits >= dampening.occurrences
        return passed, None, f"{hits} of last {len(window)} evaluations true (needs {dampening.occurrences})"
    duration = parse_duration(dampening.active_duration)
    if not triggered or active_since is None:
        return False, None, "not triggered"
    held = now - active_since
    if held >= duration:
        return True, None, f"active for {int(held.total_seconds())}s"
    return False, active_since + duration, f"active for {int(held.total_seconds())}s of {dampening.active_duration}"


def evaluate_task(task: Task | Record, event: EventLike | None, lookup: ResourceLookup, now: datetime, *,
                  webhooks: WebhookResolver | None = None, location: Location | None = None,
                  engine: TemplateEngine = ENGINE, trigger_id: str | None = None,
                  state: Mapping[str, Any] | None = None) -> TaskOutcome:
    """Evaluate a task once, for an event (``None``: a timer or run-now), at ``now``; state in, state out.

    ``trigger_id`` overrides the derived one (e.g. the scheduler's invocation id for an active-duration
    re-check of the same event). ``state`` (a state record) replaces ``task.state``, for callers that keep
    parsed task configurations apart from their fast-changing state.
    """
    aware(now, "now")
    model = as_task(task)
    state = {**state} if state is not None else _state_record(model)
    enabled = model.enabled
    if not enabled:
        due = from_iso(state.get("reEnableAt"))
        if due is None or now < due:
            return TaskOutcome(False, state, enabled=False, evaluated=False)
        state = _fresh_after_re_enable(state)
        enabled = True
    normalized = normalize_event(event)
    compiled = compile_task(model)
    if normalized is not None and not compiled.matches(normalized):
        return TaskOutcome(False, state, enabled=enabled, evaluated=False)
    trigger = trigger_id or trigger_id_of(model.id, normalized, now)
    recent = list(state.get("recentTriggers") or [])
    if trigger in recent:
        return TaskOutcome(False, state, enabled=enabled, evaluated=False, trigger_id=trigger)
    recent.append(trigger)
    stamp = iso(now)
    state["recentTriggers"] = recent[-RECENT_TRIGGERS:]
    state["lastEvaluation"] = stamp
    state["executedCount"] = int(state.get("executedCount") or 0) + 1

    base = {"event": normalized, "entity": normalized.get("entity") if normalized else None,
            "task": {"id": model.id, "description": model.description, "labels": model.labels}}
    try:
        variables = resolve_variables(model.variables, base, lookup, now=now, location=location, webhooks=webhooks,
                                      engine=engine) if model.variables else base
        triggered = _evaluate(model, compiled, variables, now, location, webhooks, engine)
    except (VariableError, TemplateError) as error:
        state["message"] = f"evaluation failed: {error}"
        return TaskOutcome(False, state, enabled=enabled, trigger_id=trigger, error=str(error))

    active_since = from_iso(state.get("activeSince")) if triggered else None
    if triggered and active_since is None:
        active_since = now
    state["activeSince"] = iso(active_since) if active_since else None
    history = [*(state.get("executionsHistory") or []), {"triggered": triggered, "timestamp": stamp}]
    state["executionsHistory"] = history[-compiled.history_limit:]

    dampened, recheck_at, message = _dampen(model, history, triggered, active_since, now)
    was_active = bool(state.get("lastStatus"))
    notify = dampened and (not model.ignore_duplicate or not was_active)
    state["lastStatus"] = dampened
    outcome = TaskOutcome(notify, state, enabled=enabled, triggered=triggered, trigger_id=trigger,
                          recheck_at=recheck_at)
    if dampened and not notify:
        message += "; already active, duplicate ignored"
    if notify:
        state["lastSuccess"] = stamp
        try:
            parameters = render_parameters(model.handler_parameters, variables, now=now, location=location,
                                           engine=engine)
        except HandlerParameterError as error:
            parameters = None
            outcome.error = str(error)
            message += f"; {error}"
        if parameters is not None:
            source = f"task:{model.id}"
            outcome.handler_requests = [HandlerRequest(h, parameters, trigger, source) for h in model.handlers]
        if model.auto_disable:
            outcome.enabled = False
            message += "; auto-disabled"
            if model.re_enable and model.re_enable_duration:
                outcome.re_enable_at = now + parse_duration(model.re_enable_duration)
                state["reEnableAt"] = iso(outcome.re_enable_at)
                message += f", re-enabled at {state['reEnableAt']}"
    state["message"] = message
    return outcome


def interval_of(task: Task | Record) -> timedelta | None:
    """How often a timer should evaluate the task (``executionInterval``), or ``None``."""
    model = as_task(task)
    if not model.execution_interval:
        return None
    return parse_duration(model.execution_interval)
