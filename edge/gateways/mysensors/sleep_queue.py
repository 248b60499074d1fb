"""Commands waiting for MySensors smart-sleep nodes, kept on disk.

A sleeping node listens only in the short window after its I_PRE_SLEEP_NOTIFICATION; a command sent
outside it is lost. The reference holds such commands in memory (lost on restart); we keep them in a small
SQLite file so that an agent restart or a power cut does not drop a command a user already saw accepted.
Rules, after the reference: at most ``limit`` (20) per node, the oldest goes first when full; a newer command
with the same key replaces the older; an entry past its expiry is never sent. What we know about which nodes
sleep is kept in the same file, so a restarted agent still queues for them: the nodes seen sleeping since they last
presented themselves, and the modes pinned from the nodes' labels.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mycontroller_protocol.envelope import Downlink

DEFAULT_LIMIT = 20
DEFAULT_VALIDITY_MS = 24 * 3600 * 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    node TEXT NOT NULL,
    key TEXT NOT NULL,
    expires_ms INTEGER NOT NULL,
    downlink TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_node ON queue (node, id);
CREATE TABLE IF NOT EXISTS sleep_nodes (
    node TEXT PRIMARY KEY,
    since_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sleep_pins (
    node TEXT PRIMARY KEY,
    sleeps INTEGER NOT NULL
);
"""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True, frozen=True)
class QueuedDownlink:
    entry_id: int
    downlink: Downlink
    expires_ms: int


class SleepQueue:
    """A durable, bounded, per-node queue of downlinks. Thread-safe; each call is one short transaction."""

    def __init__(self, path: str | Path | None, *, limit: int = DEFAULT_LIMIT,
                 validity_ms: int = DEFAULT_VALIDITY_MS, clock: Callable[[], int] = _now_ms,
                 logger: logging.Logger | None = None) -> None:
        self.path = str(path) if path is not None else ":memory:"
        self.limit = max(1, limit)
        self.validity_ms = validity_ms
        self.clock = clock
        self.logger = logger or logging.getLogger(__name__)
        self.dropped_full = 0
        self.dropped_expired = 0
        self.replaced = 0
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ queue

    def put(self, downlink: Downlink) -> int:
        """Queue a command for ``downlink.node_id``; returns how many older entries it pushed out."""
        now = self.clock()
        expires = downlink.expires_ms if downlink.expires_ms is not None else now + self.validity_ms
        if expires <= now:
            self.dropped_expired += 1
            self.logger.info("not queueing an expired command for node %s: %s", downlink.node_id, downlink.raw)
            return 0
        node = downlink.node_id
        pushed = 0
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._purge_expired(now, node)
            if downlink.key:
                cursor = self._db.execute("DELETE FROM queue WHERE node = ? AND key = ?", (node, downlink.key))
                self.replaced += cursor.rowcount
            self._db.execute("INSERT INTO queue (node, key, expires_ms, downlink) VALUES (?, ?, ?, ?)",
                             (node, downlink.key, expires, json.dumps(downlink.to_wire(), separators=(",", ":"))))
            (count,) = self._db.execute("SELECT COUNT(*) FROM queue WHERE node = ?", (node,)).fetchone()
            if count > self.limit:
                pushed = count - self.limit
                self._db.execute("DELETE FROM queue WHERE id IN (SELECT id FROM queue WHERE node = ? "
                                 "ORDER BY id LIMIT ?)", (node, pushed))
        if pushed:
            self.dropped_full += pushed
            self.logger.warning("sleep queue of node %s is full (%d): dropped the %d oldest", node, self.limit, pushed)
        return pushed

    def pending(self, node_id: str) -> list[QueuedDownlink]:
        """The live entries of one node, oldest first; expired ones are removed on the way."""
        now = self.clock()
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._purge_expired(now, node_id)
            rows = self._db.execute("SELECT id, expires_ms, downlink FROM queue WHERE node = ? ORDER BY id",
                                    (node_id,)).fetchall()
        return [QueuedDownlink(row[0], Downlink.from_wire(json.loads(row[2])), row[1]) for row in rows]

    def remove(self, entry_id: int) -> None:
        """Forget one entry: call after it reached the device, so a crash mid-flush re-sends, never loses."""
        with self._lock:
            self._db.execute("DELETE FROM queue WHERE id = ?", (entry_id,))

    def clear(self, node_id: str) -> int:
        with self._lock:
            return self._db.execute("DELETE FROM queue WHERE node = ?", (node_id,)).rowcount

    def depth(self) -> dict[str, int]:
        """Queued entries per node (expired ones included until the next touch of that node)."""
        with self._lock:
            rows = self._db.execute("SELECT node, COUNT(*) FROM queue GROUP BY node").fetchall()
        return {node: count for node, count in rows}

    def _purge_expired(self, now: int, node_id: str) -> None:
        cursor = self._db.execute("DELETE FROM queue WHERE node = ? AND expires_ms <= ?", (node_id, now))
        if cursor.rowcount:
            self.dropped_expired += cursor.rowcount
            self.logger.info("dropped %d expired command(s) for sleeping node %s", cursor.rowcount, node_id)

    # ------------------------------------------------------------------ which nodes sleep

    def mark_sleeping_node(self, node_id: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO sleep_nodes (node, since_ms) VALUES (?, ?)",
                             (node_id, self.clock()))

    def forget_sleeping_node(self, node_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM sleep_nodes WHERE node = ?", (node_id,))

    def sleeping_nodes(self) -> set[str]:
        with self._lock:
            return {row[0] for row in self._db.execute("SELECT node FROM sleep_nodes")}

    def pin_sleep_mode(self, node_id: str, sleeps: bool | None) -> None:
        """Pin a node's sleep mode (``None``: follow what the node shows again)."""
        with self._lock:
            if sleeps is None:
                self._db.execute("DELETE FROM sleep_pins WHERE node = ?", (node_id,))
            else:
                self._db.execute("INSERT OR REPLACE INTO sleep_pins (node, sleeps) VALUES (?, ?)",
                                 (node_id, int(sleeps)))

    def pinned_modes(self) -> dict[str, bool]:
        with self._lock:
            return {row[0]: bool(row[1]) for row in self._db.execute("SELECT node, sleeps FROM sleep_pins")}
