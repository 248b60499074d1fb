"""The infrastructure tools' base exception: every exception defined in ``infra/`` derives from ``InfraError``,
so that the deploy and provisioning commands report what they know as a message, not a traceback."""

from __future__ import annotations


class InfraError(Exception):
    """A deploy or provisioning step that cannot be done as asked."""
