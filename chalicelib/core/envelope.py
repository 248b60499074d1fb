"""Moved to ``mycontroller_protocol.envelope`` (#21, phase 2). A shim for ``edge/spool.py`` only, whose import could
not be changed with the move (another change held the file): it goes as soon as that import is
``mycontroller_protocol.envelope`` (``tests/unit/test_protocol_package.py`` fails once it is no longer needed)."""

from __future__ import annotations

from mycontroller_protocol.envelope import MAX_RAW_BYTES, PUBLISH_VERSION, Envelope

__all__ = ["MAX_RAW_BYTES", "PUBLISH_VERSION", "Envelope"]
