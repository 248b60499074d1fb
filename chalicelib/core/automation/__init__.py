"""Automation, after MyController v2 (forward payload, tasks, schedules, handlers): the pure core.

Everything here is pure Python on records and pydantic models: no AWS, no network, no threads, no clock reads
(callers pass ``now``). The Lambda functions and the local stack wire these functions to the bus, the
scheduler, the handler queue and the repository.

Modules, lowest layer first: ``clock`` (durations, times of day, dates, time zones, location, sun times) ←
``templates`` (the jinja2 sandbox with limits) ← ``models`` (the resources' schemas, one module per resource and
the checks they share) ← ``handlers`` (parameter schemas, rendering, secrets) ← ``tasks`` (event matching,
variables, rules, dampening) ← ``schedules`` (next runs, validity, EventBridge Scheduler expressions, firing);
``forward`` (forward payload) beside them.
"""
