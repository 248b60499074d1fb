"""core/seen.py: a batch given as a range (the shortcut for in-order traffic) merges as its seqs listed do; a run's
ids and the consecutive-ids check are what the decimal seqs say."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.core.seen import consecutive_run, merge_seqs, run_ids, split_message_id


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


@settings(max_examples=500)
@given(first=st.one_of(st.integers(0, 3000), st.integers(0, 10**18)), length=st.integers(0, 2500),
       prefix=st.sampled_from(["", "s-", "spool-gw-1-"]))
def test_a_run_s_ids_are_its_seqs_in_decimal(first: int, length: int, prefix: str) -> None:
    assert run_ids(prefix, first, first + length - 1) == [prefix + str(seq) for seq in range(first, first + length)]


@settings(max_examples=500)
@given(first=st.integers(0, 2000), length=st.integers(1, 1200), damage=st.sampled_from(
    ["", "gap", "swap", "zero", "other stream", "plain", "repeat"]), at=st.integers(0, 10**6))
def test_consecutive_run_is_found_exactly_for_one_stream_s_next_seqs(first: int, length: int, damage: str,
                                                                     at: int) -> None:
    ids = [f"s-{seq}" for seq in range(first, first + length)]
    i = at % length
    if damage == "gap":
        ids[i] = f"s-{first + length + 5}"
    elif damage == "swap" and length > 1:
        ids[i], ids[i - 1] = ids[i - 1], ids[i]
    elif damage == "zero":
        ids[i] = f"s-0{first + i}"
    elif damage == "other stream":
        ids[i] = f"t-{first + i}"
    elif damage == "plain":
        ids[i] = f"s{first + i}"
    elif damage == "repeat" and length > 1:
        ids[i] = ids[i - 1]
    parsed = [split_message_id(message_id) for message_id in ids]
    seqs = [seq for _stream, seq in filter(None, parsed)]
    streams = {stream for stream, _seq in filter(None, parsed)}
    expected = None not in parsed and len(streams) == 1 and seqs == list(range(seqs[0], seqs[0] + length))
    assert consecutive_run(ids) == ((streams.pop(), seqs[0], seqs[-1]) if expected else None)
