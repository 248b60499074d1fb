"""The edge agent's base exception: every exception defined in ``edge/`` derives from ``EdgeError``.

The agent runs unattended on a field device: one ``except EdgeError`` tells a problem it knows how to report (a bad
config, a closed transport, an uplink down) from a bug. Subclasses keep their builtin base too
(``class TransportClosed(EdgeError, ConnectionError)``), so that code catching the builtin keeps working.
"""

from __future__ import annotations


class EdgeError(Exception):
    """A problem the edge agent knows about: its configuration, a gateway's transport, the uplink."""
