"""Dead letters on one machine: a JSON-lines file per queue, and a replay inbox beside it.

``<DATA_DIR>/ingest-dead-letters.jsonl`` and ``handler-dead-letters.jsonl`` hold one letter a line:
``{"messageId", "at", "reason", "receiveCount", "body"}``. Two writers append to a file: the local queue
(``queue_local.LocalSqsQueue``) when a message has failed its last delivery, and the ingest function
(``LocalDeadLetters``, the ``DeadLetterSink`` port) when a message fails for good at once. ``python -m
chalicelib.local dead-letters`` reads them and replays them: it moves the letters it replays out of the file into the
queue's replay inbox (``<name>.replay``, one body a line), which the running stack's queue takes in within a second,
or at its next start. Every step holds an exclusive lock on ``<file>.lock`` (``flock``), so a letter is never read
half-written, lost or replayed twice.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..core.model import now_iso
from ..core.ports import DeadLetter
from .errors import AdapterError

log = logging.getLogger(__name__)

INGEST_DEAD_LETTERS = "ingest-dead-letters.jsonl"
HANDLER_DEAD_LETTERS = "handler-dead-letters.jsonl"
_THREAD_LOCK = threading.Lock()
"""One process's writers also take turns among themselves (``flock`` is per open file, not per thread)."""


class DeadLetterWriteError(AdapterError, OSError):
    """A letter could not be written (disk full, no permission): the message is retried instead."""


def replay_inbox(path: Path) -> Path:
    """The replay inbox of a dead-letter file: ``ingest-dead-letters.jsonl`` → ``ingest-dead-letters.replay``."""
    return path.with_suffix(".replay")


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the dead-letter file's lock (threads of this process and other processes alike)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _THREAD_LOCK, open(path.with_suffix(".lock"), "a+b") as lock_file:
        try:
            import fcntl
        except ImportError:  # (Windows: the thread lock alone; the stack and the command are rarely at it at once)
            yield
            return
        fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)


def letter(body: str, reason: str, receive_count: int = 0, message_id: str | None = None) -> dict[str, Any]:
    """One line of a dead-letter file."""
    return {"messageId": message_id or str(uuid.uuid4()), "at": now_iso(), "reason": reason,
            "receiveCount": receive_count, "body": body}


def append(path: Path, letters: Sequence[dict[str, Any]]) -> None:
    """Add letters to the file, durably (written and synced before this returns)."""
    if not letters:
        return
    text = "".join(json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n" for item in letters)
    with locked(path), open(path, "a", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())


def _read_lines(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    letters = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError:  # (a line cut by a crash mid-write): kept as it is, shown, never replayed
            item = {"messageId": f"line-{number}", "reason": "unreadable line in the dead-letter file", "body": None,
                    "raw": line}
        letters.append(item if isinstance(item, dict) else {"messageId": f"line-{number}", "body": None,
                                                             "raw": line})
    return letters


def read(path: Path) -> list[dict[str, Any]]:
    """Every letter in the file, oldest first."""
    if not path.parent.is_dir():  # (no stack ever ran there: nothing to make)
        return []
    with locked(path):
        return _read_lines(path)


def _rewrite(path: Path, letters: list[dict[str, Any]]) -> None:
    if not letters:
        path.unlink(missing_ok=True)
        return
    temporary = path.with_suffix(".tmp")
    with open(temporary, "w", encoding="utf-8") as out:
        for item in letters:
            out.write(item["raw"] + "\n" if "raw" in item else json.dumps(item, ensure_ascii=False,
                                                                           separators=(",", ":")) + "\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def move_to_replay(path: Path, wanted: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """Take the letters ``wanted`` picks out of the file and queue their bodies in the replay inbox, in one step
    under the lock: a letter is either still in the file or waiting in the inbox, never both, never neither."""
    if not path.exists():
        return []
    with locked(path):
        letters = _read_lines(path)
        taken = [item for item in letters if isinstance(item.get("body"), str) and wanted(item)]
        if not taken:
            return []
        inbox = replay_inbox(path)
        with open(inbox, "a", encoding="utf-8") as out:
            for item in taken:
                out.write(json.dumps({"body": item["body"], "from": item.get("messageId")},
                                     separators=(",", ":")) + "\n")
            out.flush()
            os.fsync(out.fileno())
        taken_ids = {id(item) for item in taken}
        _rewrite(path, [item for item in letters if id(item) not in taken_ids])
        return taken


def take_replays(path: Path) -> list[str]:
    """The bodies waiting in the replay inbox of ``path``, removed from it (the queue calls this)."""
    inbox = replay_inbox(path)
    if not inbox.exists():
        return []
    with locked(path):
        try:
            text = inbox.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        bodies = []
        for line in text.splitlines():
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(item, dict) and isinstance(item.get("body"), str):
                bodies.append(item["body"])
        inbox.unlink(missing_ok=True)
        return bodies


def waiting_replays(path: Path) -> int:
    """How many replays wait in the inbox (the stack is stopped, or has not looked yet)."""
    inbox = replay_inbox(path)
    if not inbox.exists():
        return 0
    with locked(path):
        try:
            return sum(1 for line in inbox.read_text(encoding="utf-8").splitlines() if line.strip())
        except FileNotFoundError:
            return 0


class LocalDeadLetters:
    """``DeadLetterSink`` over a dead-letter file: the ingest function's letters for messages that fail for good,
    beside the ones the local queue writes after the last retry."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def put(self, letters: Sequence[DeadLetter]) -> None:
        try:
            append(self.path, [letter(item.body, item.reason) for item in letters])
        except OSError as error:
            raise DeadLetterWriteError(f"could not write {len(letters)} dead letter(s) to {self.path}: {error}") \
                from None


def remove(path: Path, wanted: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """Drop the letters ``wanted`` picks (messages that can never succeed), returning them."""
    if not path.exists():
        return []
    with locked(path):
        letters = _read_lines(path)
        dropped = [item for item in letters if wanted(item)]
        if dropped:
            dropped_ids = {id(item) for item in dropped}
            _rewrite(path, [item for item in letters if id(item) not in dropped_ids])
        return dropped
