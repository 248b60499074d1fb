"""What a batch gives back: events and downlinks to send, per-message failures and counters."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..envelope import Downlink
from ..model import DomainEvent


@dataclass(slots=True)
class MessageFailure:
    message_id: str
    gateway_id: str
    reason: str


@dataclass(slots=True)
class ProcessResult:
    events: list[DomainEvent] = field(default_factory=list)
    downlinks: list[Downlink] = field(default_factory=list)
    failures: list[MessageFailure] = field(default_factory=list)
    applied_ids: list[str] = field(default_factory=list)
    """Message ids processed without failure: mark them seen once their effects are out (``acknowledge``)."""
    duplicates: int = 0
    stale: int = 0
    repo_writes: int = 0
    metric_points: int = 0
