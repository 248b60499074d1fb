"""The protocol's base exception: every exception defined in ``mycontroller_protocol`` derives from ``ProtocolError``.

Each subclass keeps its builtin base too (``class EnvelopeError(ProtocolError, ValueError)``), so code that catches
``ValueError`` keeps working. ``tests/unit/test_errors.py`` holds every area to its base.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """A message, topic, document or value that does not follow the protocol; the message says why."""
