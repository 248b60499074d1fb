"""RequestThreads: the AWS adapters' requests side by side, results in order."""

from __future__ import annotations

import threading
import time

import pytest

from chalicelib.adapters.request_threads import RequestThreads


def test_results_keep_the_items_order_while_the_calls_overlap() -> None:
    threads = RequestThreads(4, "test-put")
    lock = threading.Lock()
    active = {"now": 0, "most": 0}

    def call(item: int) -> int:
        with lock:
            active["now"] += 1
            active["most"] = max(active["most"], active["now"])
        time.sleep(0.01 * (8 - item))  # the first items finish last
        with lock:
            active["now"] -= 1
        return item * 10

    try:
        assert threads.map(call, list(range(8))) == [item * 10 for item in range(8)]
    finally:
        threads.close()
    assert 2 <= active["most"] <= 4


def test_one_item_or_one_thread_runs_in_the_caller() -> None:
    caller = threading.current_thread().name
    assert RequestThreads(4, "test-put").map(lambda _: threading.current_thread().name, [1]) == [caller]
    assert RequestThreads(1, "test-put").map(lambda _: threading.current_thread().name, [1, 2]) == [caller, caller]


def test_an_exception_reaches_the_caller_and_close_can_be_repeated() -> None:
    threads = RequestThreads(2, "test-put")

    def call(item: int) -> int:
        if item == 3:
            raise ValueError("bad item")
        return item

    with pytest.raises(ValueError, match="bad item"):
        threads.map(call, [1, 2, 3, 4])
    threads.close()
    threads.close()
    assert threads.map(call, [1, 2]) == [1, 2]  # a new pool after close
    threads.close()
