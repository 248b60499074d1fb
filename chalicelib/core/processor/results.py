"""What a batch gives back: events and downlinks to send, per-message failures and counters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from mycontroller_protocol.envelope import Downlink

from ..errors import DomainError
from ..model import DomainEvent

PERMANENT_ERRORS: Final = (ValueError, TypeError, KeyError, IndexError, AttributeError, ArithmeticError)
"""What bad data raises (unreadable text, a value or stored record of the wrong shape): trying the same message
again gives the same error. Anything else (a store or network error, a lost conditional write) may pass."""


class UnreadableRecord(DomainError, ValueError):
    """A stored record the processor cannot read (a date that is none, a state that is no object): the messages
    that touch it fail with this reason, permanently, until the record is fixed; the rest of the batch goes on."""


def permanent(error: BaseException) -> bool:
    """Whether a message that raised ``error`` would fail again however often it is retried."""
    return isinstance(error, PERMANENT_ERRORS)


@dataclass(slots=True)
class MessageFailure:
    message_id: str
    gateway_id: str
    reason: str
    permanent: bool = True
    """True: the message itself (or a stored record it needs) is unusable, and a retry cannot help: record it, do
    not retry it. False: something it needed failed for now (a store error): retry it."""


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
