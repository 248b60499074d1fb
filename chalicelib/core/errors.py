"""The domain's base exception: every exception defined in ``chalicelib/core`` derives from ``DomainError``.

So that one ``except DomainError`` tells "the core refused this" from a bug or an outage, while each subclass keeps
its builtin base too (``class QueryError(DomainError, ValueError)``), and code that catches ``ValueError`` or
``KeyError`` keeps working. The errors a port declares (``ports.ConditionFailed``, ``ports.Gone``…) are domain
errors as well: adapters raise them, the core decides what they mean. The protocol the core shares with the edge
(envelopes, codecs, value conversion: ``mycontroller_protocol``) raises errors of its own base, ``ProtocolError``.
``tests/unit/test_errors.py`` holds every area to its base.
"""

from __future__ import annotations


class DomainError(Exception):
    """Something the domain refuses or cannot do: bad input (most subclasses are ``ValueError``s as well), a
    conditional write that lost, a connection gone, a secret that cannot be read."""
