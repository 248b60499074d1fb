"""When the sender publishes what the spool holds: the packing window, and what never waits for it.

AWS IoT Core bills every publish (per started 5 KB) and so does every step behind it (the rule, the ingest queue,
an ingest invocation, its bus entry), so a home site's trickle is cheapest carried several messages a publish. The
agent therefore holds a publish that is not full for up to ``linger_ms`` (by default 1 s for AWS IoT Core, 50 ms
elsewhere: ``edge.config.default_linger_ms``) after its oldest envelope arrived: at 5
messages a second a one-second window makes one publish of five instead of five publishes (``docs/cost.md``).

Some messages must not wait: anything the spool keeps as a command (``command=True``: command echoes and
acknowledgements, node presentations, requests such as I_TIME and I_CONFIG, gateway state) goes out at once,
with whatever telemetry is waiting before it. A full publish goes at once too.

``bench/cost.py`` packs its simulated traffic with this same rule, so the cost model and the agent cannot
disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol


class Packable(Protocol):
    """What the rule needs of a spooled envelope (``edge.spool.SpoolRow``)."""

    @property
    def command(self) -> bool: ...


def is_urgent(rows: Iterable[Packable]) -> bool:
    """Whether a pending publish carries something that must not wait for the window (a command, a request, a
    presentation)."""
    return any(row.command for row in rows)


def publish_wait(oldest_ms: int, now_s: float, linger_s: float, *, full: bool, urgent: bool) -> float:
    """Seconds still to wait before publishing: none when the publish is full or urgent, else what is left of the
    window opened by the oldest envelope (edge timestamp ``oldest_ms``); zero or less means now."""
    if full or urgent:
        return 0.0
    return linger_s - (now_s - oldest_ms / 1000)
