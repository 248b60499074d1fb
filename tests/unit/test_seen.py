"""core/seen.py: a batch given as a range (the shortcut for in-order traffic) merges as its seqs listed do."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.core.seen import merge_seqs


@settings(max_examples=500)
@given(earlier=st.lists(st.lists(st.integers(0, 60), max_size=8), max_size=6), start=st.integers(0, 80),
       length=st.integers(0, 20), max_chars=st.sampled_from([6, 20, 10_000]))
def test_a_range_merges_as_its_seqs_listed(earlier: list[list[int]], start: int, length: int,
                                           max_chars: int) -> None:
    hw: int = -1
    runs: tuple[tuple[int, int], ...] = ()
    for batch in earlier:
        hw, runs = merge_seqs(hw, runs, batch, max_chars=max_chars)
    seqs = range(start, start + length)
    assert merge_seqs(hw, runs, seqs, max_chars=max_chars) == merge_seqs(hw, runs, list(seqs), max_chars=max_chars)
