"""The adapters' base exception: every exception defined in ``chalicelib/adapters`` derives from ``AdapterError``.

An adapter raises its port's own errors (``core.ports``, domain errors) for what the core must handle, and an
``AdapterError`` for a failure of what is behind it (a service, the network, a closed local store) that the port
does not name. Subclasses keep their builtin base too (``class BusClosedError(AdapterError, RuntimeError)``), so
that code catching ``RuntimeError`` keeps working.
"""

from __future__ import annotations


class AdapterError(Exception):
    """A failure of the infrastructure behind a port: an AWS call refused, a request that timed out, a local
    store closed."""
