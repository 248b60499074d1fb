"""The functions' base exception: what a Lambda body raises to fail one record of its batch (``FunctionError``).

Powertools' batch processing reports a record whose handler raised in ``batchItemFailures``, so the queue delivers
it again and finally dead-letters it; these say why (poison, or worth a retry).
"""

from __future__ import annotations


class FunctionError(Exception):
    """One record of a batch failed: the queue retries it alone and, after its receive count, dead-letters it."""
