"""Which edge messages were applied already, tracked per edge stream instead of per id (pure; the repository
adapters keep the state).

The edge names messages ``<stream>-<seq>``: a stream (spool uuid and gateway id) and a decimal sequence that
increases per stream. So "seen" is, per stream, ``hw`` (every seq <= hw was applied) and the applied seqs above
it as runs ``(first, last)``: in-order traffic keeps one number, a message that failed leaves one gap and
everything after it one run. Storage is bounded per stream (``max_chars`` of encoded runs): beyond it ``hw``
advances over the oldest gaps, and a message whose seq is in such a gap then counts as seen.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from typing import Final

SEQ_MAX_DIGITS: Final = 18
Run = tuple[int, int]
"""Inclusive range ``(first, last)`` of applied sequence numbers."""


def split_message_id(message_id: str) -> tuple[str, int] | None:
    """``(stream, seq)`` of an edge id ``<stream>-<seq>``; ``None`` for a plain id.

    The seq is the part after the last ``-``: ASCII digits, canonical (no leading zero) so that each seq has
    exactly one id, at most 18 digits. The stream must not be empty.
    """
    stream, dash, tail = message_id.rpartition("-")
    if (not dash or not stream or not tail or len(tail) > SEQ_MAX_DIGITS or not tail.isascii()
            or not tail.isdigit() or (tail[0] == "0" and len(tail) > 1)):
        return None
    return stream, int(tail)


def consecutive_run(message_ids: Sequence[str]) -> tuple[str, int, int] | None:
    """(stream, first seq, last seq) when the ids are one stream's consecutive seqs in order, as an edge's batch
    usually is; None otherwise. Comparing with the ids made from the numbers checks every id in one go."""
    if not message_ids or type(message_ids) is not list:
        return None
    head = split_message_id(message_ids[0])
    if head is None:
        return None
    stream, first = head
    last = first + len(message_ids) - 1
    prefix = stream + "-"
    if message_ids[-1] != prefix + str(last):
        return None
    if message_ids != run_ids(prefix, first, last):
        return None
    return stream, first, last


_DIGITS: Final = tuple(map(str, range(1000)))
_THREE_DIGITS: Final = tuple(f"{low:03d}" for low in range(1000))


def run_ids(prefix: str, first: int, last: int) -> list[str]:
    """``prefix`` + each seq of ``first``..``last`` in decimal, made a thousand at a time: each thousand's leading
    digits once, its last three digits from a table (formatting every number costs four times as much)."""
    ids: list[str] = []
    for thousand in range(first // 1000, last // 1000 + 1):
        base = thousand * 1000
        low, high = max(first, base) - base, min(last, base + 999) - base + 1
        if thousand:
            ids += map((prefix + str(thousand)).__add__, _THREE_DIGITS[low:high])
        else:
            ids += map(prefix.__add__, _DIGITS[low:high])
    return ids


def group_by_stream(message_ids: Iterable[str]) -> tuple[list[str], dict[str, list[int]]]:
    """The plain ids, in order, and each stream's seqs, in order."""
    plain: list[str] = []
    streams: dict[str, list[int]] = {}
    for message_id in message_ids:
        parsed = split_message_id(message_id)
        if parsed is None:
            plain.append(message_id)
        else:
            streams.setdefault(parsed[0], []).append(parsed[1])
    return plain, streams


def runs_contain(hw: int, runs: Sequence[Run], seq: int) -> bool:
    """Whether ``seq`` counts as applied: at or below ``hw``, or inside one of the runs above it."""
    if seq <= hw:
        return True
    at = bisect.bisect_right(runs, seq, key=_first) - 1
    return at >= 0 and runs[at][0] <= seq <= runs[at][1]


def _first(run: Run) -> int:
    return run[0]


def encode_runs(hw: int, runs: Sequence[Run]) -> str:
    """``above`` as text: ``<gap>[:<length>]`` per run, gaps counted from the previous run's end (or ``hw``)."""
    return ",".join(_run_tokens(hw, runs))


def _run_tokens(hw: int, runs: Sequence[Run]) -> list[str]:
    tokens: list[str] = []
    previous = hw
    for first, last in runs:
        gap, length = first - previous - 1, last - first + 1
        tokens.append(str(gap) if length == 1 else f"{gap}:{length}")
        previous = last
    return tokens


def decode_runs(hw: int, text: str) -> tuple[Run, ...]:
    """The inverse of ``encode_runs``. Text this module did not write reads as no runs (nothing above ``hw``
    seen: at worst a message is applied again, which the processor tolerates)."""
    runs: list[Run] = []
    previous = hw
    try:
        for token in filter(None, text.split(",")):
            gap, _, length = token.partition(":")
            first = previous + 1 + int(gap)
            last = first + (int(length) if length else 1) - 1
            if first <= previous + 1 or last < first:
                return ()
            runs.append((first, last))
            previous = last
    except ValueError:
        return ()
    return tuple(runs)


def merge_seqs(hw: int, runs: Sequence[Run], seqs: Iterable[int], *, max_chars: int) -> tuple[int, tuple[Run, ...]]:
    """Add applied seqs: new runs merged in, ``hw`` advanced over a run that now starts right after it, then
    the oldest runs given up (``hw`` moved to their end) while the encoded runs exceed ``max_chars``. A ``range``
    past everything known (an edge's batch in order) goes on the end without sorting its seqs."""
    merged: list[list[int]]
    if (type(seqs) is range and seqs.step == 1 and seqs and seqs[0] > hw
            and (not runs or seqs[0] > runs[-1][1])):
        merged = [[first, last] for first, last in runs]
        if merged and seqs[0] == merged[-1][1] + 1:
            merged[-1][1] = seqs[-1]
        else:
            merged.append([seqs[0], seqs[-1]])
    else:
        fresh = sorted({s for s in seqs if s > hw})
        if not fresh:
            return hw, tuple(runs)
        merged = []
        for first, last in sorted([*runs, *((s, s) for s in fresh)]):
            if merged and first <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], last)
            else:
                merged.append([first, last])
    if merged and merged[0][0] <= hw + 1:
        hw = max(hw, merged.pop(0)[1])
    out: list[Run] = [(first, last) for first, last in merged]
    # A run's token depends only on the run before it, so dropping runs from the front changes no other token.
    tokens = _run_tokens(hw, out)
    size = sum(map(len, tokens)) + max(0, len(tokens) - 1)
    drop = 0
    while size > max_chars and drop < len(out):
        size -= len(tokens[drop]) + (1 if drop < len(out) - 1 else 0)
        hw = out[drop][1]
        drop += 1
    return hw, tuple(out[drop:])
