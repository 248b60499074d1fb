"""Requests side by side for the AWS adapters: DynamoDB's conditional writes, EventBridge's ``PutEvents``.

Each request waits on the network, not the CPU, so a few threads cut a batch's wall time by about their number.
The pool is made on first need (most calls send one request and need none) and kept for the process (a warm
Lambda reuses it); ``close`` stops it and a later call makes a new one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

_T = TypeVar("_T")
_R = TypeVar("_R")


class RequestThreads:
    """``map`` on up to ``size`` threads (in the calling thread for one item or a size of 1)."""

    def __init__(self, size: int, name: str) -> None:
        self.size = max(1, size)
        self.name = name
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def map(self, fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        """``[fn(item) for item in items]``, in the items' order; the first exception ``fn`` raises is raised."""
        if len(items) <= 1 or self.size == 1:
            return [fn(item) for item in items]
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.size, thread_name_prefix=self.name)
            pool = self._pool
        return list(pool.map(fn, items))

    def close(self) -> None:
        """Stop the threads once their requests are done. Idempotent."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
