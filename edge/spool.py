"""The spool: every device message, wrapped in its envelope, on disk until the uplink acknowledges it.

One SQLite file in WAL mode, one row per envelope, one committed transaction per append (or per batch
of deferred appends). The per-gateway
sequence of a new message is one more than the highest sequence the spool holds or has ever removed (the
``sequences`` table is updated when rows are acked or evicted, not on every append: that halves the cost of
an append), so a sequence never repeats, even across a SIGKILL. Message ids are
``<spool uuid>-<gateway>-<sequence>``, the uuid made once when the spool file is created: unique forever.

Durability, exactly:

* ``synchronous="normal"`` (the default): ``append`` returns after its transaction is committed to the WAL. A
  crash or SIGKILL of the agent loses nothing: the operating system holds the write. ``append(defer=True)``
  (the agent's gateways on its event loop) only numbers the message and queues it; ``commit()`` writes what
  was queued in one transaction, and every other method commits it first. The agent commits within the loop
  turn that took the messages from their device, before it reads anything more from it and before any
  publish: a SIGKILL can cost what the agent took from a device in that last turn (one read), exactly as it
  could before, when such lines waited in a queue on their way to ``append``. A power loss or kernel panic may
  lose appends made since the last sync; the sender calls ``sync()`` (one fsync of the WAL) before every
  publish, so a power loss can only lose envelopes that were never sent (at most those appended during the
  current linger window). A sequence or message id the cloud has seen is therefore never handed out again, and
  the file is never corrupted. An ack lost to a power loss only means those envelopes are sent again
  (at-least-once; the cloud drops the duplicate by message id).
* ``synchronous="full"``: an fsync per append, ``defer`` or not; nothing ``append`` returned is lost even to
  power loss. Milliseconds per append on SD cards.

An envelope's wire JSON is made once, when it is appended, and stored as it goes on the wire: a publish is
those bodies joined (``publish_body``), with nothing decoded or encoded again on the way out.

When full (``max_messages`` or ``max_bytes``), the oldest telemetry goes first; commands (presentations,
acks, requests, anything a device does not repeat) are never dropped. If evicting all the telemetry would not
make room, new telemetry is refused (counted) and new commands are still accepted beyond the bound
(``commands_over_bound`` counts them). All of it is in ``stats()`` and so in ``python -m edge status``.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as _quote
from pathlib import Path
from typing import Any

from mycontroller_protocol.envelope import MAX_RAW_BYTES, PUBLISH_VERSION, Envelope

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sequences (gateway_id TEXT PRIMARY KEY, sequence INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS envelopes (
    id INTEGER PRIMARY KEY,
    gateway_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    command INTEGER NOT NULL,
    size INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    body TEXT NOT NULL
);
"""

_INSERT = "INSERT INTO envelopes (gateway_id, sequence, command, size, created_ms, body) VALUES (?, ?, ?, ?, ?, ?)"
_REMEMBER_SEQUENCES = """
INSERT INTO sequences (gateway_id, sequence)
SELECT gateway_id, max(sequence) FROM envelopes WHERE id IN ({marks}) GROUP BY gateway_id
ON CONFLICT (gateway_id) DO UPDATE SET sequence = max(sequence, excluded.sequence)
"""
_RAISE_SEQUENCE = """
INSERT INTO sequences (gateway_id, sequence) VALUES (?, ?)
ON CONFLICT (gateway_id) DO UPDATE SET sequence = max(sequence, excluded.sequence)
"""
_COUNTERS = ("evicted", "refused", "rejected")
EVICT_SLACK = 0.01
"""Eviction frees this fraction of the bound beyond what is needed, so that a full spool evicts in batches."""
_CHUNK = 500
"""Rows per statement when deleting many (SQLite limits the number of bound parameters)."""


@dataclass(slots=True)
class SpoolRow:
    """One spooled envelope as the sender sees it: its wire JSON ``body`` (``size`` bytes) and what the sender and
    ``ack`` need of it, read from their own columns (nothing is decoded to send it)."""

    rowid: int
    size: int
    command: bool
    body: str
    gateway_id: str
    sequence: int
    timestamp: int
    """Edge time of reception, epoch milliseconds."""
    generation: int = 0
    """The spool's eviction count when the row was read: while it is unchanged, the row is still there."""

    @property
    def envelope(self) -> Envelope:
        """The envelope itself, decoded from its body (tests and tools; the sender does not need it)."""
        return Envelope.from_wire(json.loads(self.body))


_PUBLISH_HEAD = f'{{"v":{PUBLISH_VERSION},"e":['
_PUBLISH_TAIL = "]}"


def publish_body(rows: list[SpoolRow]) -> str:
    """The uplink publish carrying ``rows``: exactly ``encode_publish`` of their envelopes, by joining bodies."""
    return _PUBLISH_HEAD + ",".join([row.body for row in rows]) + _PUBLISH_TAIL


class Spool:
    """A durable FIFO of envelopes with per-gateway sequences; safe to use from several threads."""

    def __init__(self, path: str | Path, max_bytes: int = 256 * 1024 * 1024, max_messages: int = 1_000_000,
                 synchronous: str = "normal") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.max_messages = max_messages
        self._lock = threading.Lock()
        self._synchronous_full = synchronous == "full"
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # One process owns the spool: no shared-memory index and no file locks taken and released per transaction
        # (a quarter of a commit's cost), and a second agent on the same data directory is refused.
        self._db.execute("PRAGMA locking_mode=EXCLUSIVE")
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if self._synchronous_full else 'NORMAL'}")
            # Appends touch the last pages, the sender the first ones: a small page cache holds both (SQLite's
            # default 2 MB would fill with a backlog's pages the operating system caches anyway).
            self._db.execute("PRAGMA cache_size=-256")
            self._db.executescript(_SCHEMA)
        except sqlite3.OperationalError as error:
            self._db.close()
            if "locked" not in str(error):
                raise
            raise OSError(errno.EBUSY, "the spool is in use by another process (an agent with the same data_dir?)",
                          str(self.path)) from None
        self.uuid = self._meta("uuid") or self._init_uuid()
        self._sequences: dict[str, int] = dict(self._db.execute("SELECT gateway_id, sequence FROM sequences"))
        for gateway_id, sequence in self._db.execute(
                "SELECT gateway_id, max(sequence) FROM envelopes GROUP BY gateway_id"):
            self._sequences[gateway_id] = max(self._sequences.get(gateway_id, 0), int(sequence))
        depth, total, commands = self._db.execute(
            "SELECT count(*), coalesce(sum(size), 0), coalesce(sum(command), 0) FROM envelopes").fetchone()
        self._depth, self._bytes, self._commands = int(depth), int(total), int(commands)
        self._counters = {name: int(self._meta(name) or 0) for name in _COUNTERS}
        self.appended = 0
        self.acked = 0
        self.over_bound = 0
        """Commands accepted while the spool was over its bound (only commands were left to keep)."""
        self._pending: list[tuple[str, int, int, int, int, str]] = []
        """Deferred appends, numbered and counted, not yet written (``commit``)."""
        self._heads: dict[tuple[str, str], tuple[str, str]] = {}
        self._generation = 0
        """Evictions so far (in this process): rows read before the last one may be gone or their ids reused."""

    # ------------------------------------------------------------------------------------------- setup

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _init_uuid(self) -> str:
        value = uuid.uuid4().hex[:16]
        self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('uuid', ?)", (value,))
        return self._meta("uuid") or value

    def close(self) -> None:
        """Checkpoint the WAL into the database file and close; the spool can be opened again."""
        with self._lock:
            self._commit_pending()
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            self._db.close()

    # ------------------------------------------------------------------------------------------- write

    def append(self, gateway_id: str, provider: str, raw: str, topic: str | None = None,
               command: bool = False, *, defer: bool = False) -> Envelope | None:
        """Number, wrap and store one device message; durable when it returns (see the module docstring), or, with
        ``defer``, once ``commit`` (or any other method) has run.

        Returns the envelope, or None when it was not stored: telemetry refused because only commands fill the
        spool, or a raw payload longer than the cloud accepts (both counted in ``stats``).
        """
        if len(raw) > MAX_RAW_BYTES:
            with self._lock:
                self._count("rejected")
            return None
        with self._lock:
            sequence = self._sequences.get(gateway_id, 0) + 1
            timestamp = time.time_ns() // 1_000_000
            head, id_head = self._heads.get((gateway_id, provider)) or self._head(gateway_id, provider)
            body = (f'{head}{timestamp},"s":{sequence},"i":{id_head}{sequence}","r":{_quote(raw)}}}' if topic is None
                    else f'{head}{timestamp},"s":{sequence},"i":{id_head}{sequence}","r":{_quote(raw)},'
                         f'"o":{_quote(topic)}}}')
            size = len(body)  # bytes too: the body is ASCII, everything else is escaped
            if self._depth + 1 <= self.max_messages and self._bytes + size <= self.max_bytes:
                self._pending.append((gateway_id, sequence, int(command), size, timestamp, body))
                if not defer or self._synchronous_full:
                    self._commit_pending()
            else:
                self._commit_pending()
                if not self._append_full(gateway_id, sequence, timestamp, body, size, command):
                    return None
            self._sequences[gateway_id] = sequence
            self._depth += 1
            self._bytes += size
            self._commands += int(command)
            self.appended += 1
            return Envelope(gateway_id, provider, timestamp, sequence, f"{self.uuid}-{gateway_id}-{sequence}", raw,
                            topic)

    def _head(self, gateway_id: str, provider: str) -> tuple[str, str]:
        """The constant start of a gateway's bodies and of its message ids, JSON-escaped (as ``to_wire`` + dumps)."""
        heads = (f'{{"g":{_quote(gateway_id)},"p":{_quote(provider)},"t":',
                 _quote(f"{self.uuid}-{gateway_id}-")[:-1])
        self._heads[(gateway_id, provider)] = heads
        return heads

    def commit(self) -> None:
        """Write the deferred appends, in one transaction."""
        with self._lock:
            self._commit_pending()

    def _commit_pending(self) -> None:
        pending = self._pending
        if not pending:
            return
        self._pending = []
        db = self._db
        try:
            if len(pending) == 1:
                db.execute(_INSERT, pending[0])
            else:
                db.execute("BEGIN IMMEDIATE")
                db.executemany(_INSERT, pending)
                db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            self._depth -= len(pending)  # counted when appended: they are lost (sequences are not handed out again)
            self._bytes -= sum(row[3] for row in pending)
            self._commands -= sum(row[2] for row in pending)
            self.appended -= len(pending)
            raise

    def _append_full(self, gateway_id: str, sequence: int, timestamp: int, body: str, size: int,
                     command: bool) -> bool:
        """Append when the spool is at its bound: evict old telemetry, refuse telemetry, or go over for a command."""
        victims, freed = self._victims(size)
        if victims is None and not command:
            self._count("refused")
            return False
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if victims:
                self._delete(victims)
                self._counters["evicted"] += len(victims)
                self._generation += 1
                self._save_counter("evicted")
            db.execute(_INSERT, (gateway_id, sequence, int(command), size, timestamp, body))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            self._counters = {name: int(self._meta(name) or 0) for name in _COUNTERS}
            raise
        if victims:
            self._depth -= len(victims)
            self._bytes -= freed
        if self._depth + 1 > self.max_messages or self._bytes + size > self.max_bytes:
            self.over_bound += 1
        return True

    def _victims(self, size: int) -> tuple[list[tuple[int, int, int]] | None, int]:
        """The oldest telemetry rows to evict so that one more message of ``size`` fits, and the bytes they free.

        Frees a little more than needed so that the next appends do not each pay for an eviction. None when even
        all the telemetry would not make room: then the newest telemetry is refused instead, which loses less.
        """
        need_messages = self._depth + 1 - self.max_messages
        need_bytes = self._bytes + size - self.max_bytes
        free_messages = need_messages + max(1, int(self.max_messages * EVICT_SLACK)) if need_messages > 0 else 0
        free_bytes = need_bytes + int(self.max_bytes * EVICT_SLACK) if need_bytes > 0 else 0
        victims: list[tuple[int, int, int]] = []
        freed = 0
        cursor = self._db.execute("SELECT id, size, command FROM envelopes WHERE command = 0 ORDER BY id")
        for rowid, row_size, row_command in cursor:
            if len(victims) >= free_messages and freed >= free_bytes:
                break
            victims.append((rowid, row_size, row_command))
            freed += row_size
        cursor.close()
        if len(victims) < need_messages or freed < need_bytes:
            return None, 0
        return victims, freed

    def _delete(self, rows: list[tuple[int, int, int]]) -> None:
        """Delete rows inside the caller's transaction, remembering the highest sequence per gateway first."""
        for start in range(0, len(rows), _CHUNK):
            ids = [row[0] for row in rows[start:start + _CHUNK]]
            marks = ",".join("?" * len(ids))
            self._db.execute(_REMEMBER_SEQUENCES.format(marks=marks), ids)
            self._db.execute(f"DELETE FROM envelopes WHERE id IN ({marks})", ids)

    def _count(self, name: str, amount: int = 1) -> None:
        """Bump a loss counter; persisted so that ``status`` still shows losses after a restart."""
        self._counters[name] += amount
        self._save_counter(name)

    def _save_counter(self, name: str) -> None:
        self._db.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                         "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (name, str(self._counters[name])))

    def sync(self) -> None:
        """Make every committed append durable against power loss: an fdatasync of the WAL. (What a checkpoint moved
        into the database file is safe already: SQLite syncs that file when the checkpoint completes, before the
        WAL is used again.)

        The sender calls this before it publishes, so that with ``synchronous="normal"`` a power loss can only
        lose envelopes that were never sent. Safe to call from any thread; it does not take the spool's lock.
        """
        if self._synchronous_full:
            return
        try:
            fd = os.open(f"{self.path}-wal", os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)

    # ------------------------------------------------------------------------------------------- read

    def peek(self, limit: int = 100, max_bytes: int | None = None, after: int = 0) -> list[SpoolRow]:
        """The oldest envelopes (rowid greater than ``after``), at most ``limit`` and ``max_bytes`` of wire JSON.

        The first row is always returned, however large, so that an oversized envelope cannot block the spool.
        """
        return self.peek_batch(limit, max_bytes, after)[0]

    def peek_batch(self, limit: int, max_bytes: int | None = None, after: int = 0, *, bodies: bool = True
                   ) -> tuple[list[SpoolRow], bool]:
        """``peek``, and whether more rows were waiting beyond the batch (the batch is full: send it now).

        ``bodies=False`` leaves the rows' bodies empty (what the sender needs to decide whether to publish yet);
        ``with_bodies`` reads them for the rows it sends.
        """
        with self._lock:
            self._commit_pending()
            generation = self._generation
            rows = self._db.execute(
                "SELECT id, size, command, gateway_id, sequence, created_ms" + (", body" if bodies else "")
                + " FROM envelopes WHERE id > ? ORDER BY id LIMIT ?", (after, limit + 1)).fetchall()
        result: list[SpoolRow] = []
        total = 0
        for row in rows[:limit]:
            size = row[1]
            if max_bytes is not None and result and total + size > max_bytes:
                return result, True
            total += size
            result.append(SpoolRow(row[0], size, bool(row[2]), row[6] if bodies else "", row[3], row[4], row[5],
                                   generation))
        return result, len(rows) > limit

    def with_bodies(self, rows: list[SpoolRow]) -> list[SpoolRow]:
        """``rows`` (read with ``bodies=False``, oldest first) with their bodies; a row gone since is left out."""
        if not rows:
            return rows
        with self._lock:
            bodies = dict(self._db.execute("SELECT id, body FROM envelopes WHERE id BETWEEN ? AND ?",
                                           (rows[0].rowid, rows[-1].rowid)))
        result = []
        for row in rows:
            body = bodies.get(row.rowid)
            if body is not None:
                row.body = body
                result.append(row)
        return result

    def ack(self, rows: Iterable[SpoolRow]) -> int:
        """Remove envelopes the uplink acknowledged; returns how many were still there (evicted ones are not).

        Rows read since the last eviction are still there, as read: they are deleted by id in one statement. After
        an eviction rows are matched by rowid *and* (gateway, sequence): a rowid freed by eviction may be reused by
        a new envelope, which must not be removed by a late ack for the evicted one.
        """
        rows = list(rows)
        if not rows:
            return 0
        with self._lock:
            found = self._ack_known(rows) if all(row.generation == self._generation for row in rows) else None
            if found is None:
                found = self._ack_checked(rows)
            self._depth -= len(found)
            self._bytes -= sum(row[1] for row in found)
            self._commands -= sum(row[2] for row in found)
            self.acked += len(found)
            return len(found)

    def _ack_known(self, rows: list[SpoolRow]) -> list[tuple[int, int, int]] | None:
        """Delete rows known to be there; None (nothing done) if they were not all there after all."""
        db = self._db
        ids = sorted(row.rowid for row in rows)
        highest: dict[str, int] = {}
        for row in rows:
            highest[row.gateway_id] = max(highest.get(row.gateway_id, 0), row.sequence)
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(_RAISE_SEQUENCE, list(highest.items()))
            if ids[-1] - ids[0] + 1 == len(ids):
                deleted = db.execute("DELETE FROM envelopes WHERE id BETWEEN ? AND ?", (ids[0], ids[-1])).rowcount
            else:
                deleted = sum(db.execute(f"DELETE FROM envelopes WHERE id IN ({','.join('?' * len(chunk))})",
                                         chunk).rowcount
                              for chunk in (ids[start:start + _CHUNK] for start in range(0, len(ids), _CHUNK)))
            if deleted != len(ids):
                db.execute("ROLLBACK")
                return None
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return [(row.rowid, row.size, int(row.command)) for row in rows]

    def _ack_checked(self, rows: list[SpoolRow]) -> list[tuple[int, int, int]]:
        keys = [(row.rowid, row.gateway_id, row.sequence) for row in rows]
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            found: list[tuple[int, int, int]] = []
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start:start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                wanted = set(chunk)
                for rowid, gateway_id, sequence, size, command in db.execute(
                        f"SELECT id, gateway_id, sequence, size, command FROM envelopes WHERE id IN ({marks})",
                        [key[0] for key in chunk]):
                    if (rowid, gateway_id, sequence) in wanted:
                        found.append((rowid, size, command))
            self._delete(found)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return found

    # ------------------------------------------------------------------------------------------- stats

    @property
    def depth(self) -> int:
        return self._depth

    def sequence(self, gateway_id: str) -> int:
        """The last sequence handed out for a gateway (0 when none yet)."""
        with self._lock:
            return self._sequences.get(gateway_id, 0)

    def stats(self) -> dict[str, Any]:
        """What ``status`` shows: depth, bytes, losses by cause, age of the oldest unsent envelope."""
        with self._lock:
            self._commit_pending()
            row = self._db.execute("SELECT created_ms FROM envelopes ORDER BY id LIMIT 1").fetchone()
            oldest_age_s = round(max(0.0, (time.time_ns() // 1_000_000 - row[0]) / 1000), 3) if row else None
            return {
                "path": str(self.path),
                "depth": self._depth,
                "bytes": self._bytes,
                "commands": self._commands,
                "max_messages": self.max_messages,
                "max_bytes": self.max_bytes,
                "oldest_age_s": oldest_age_s,
                "appended": self.appended,
                "acked": self.acked,
                "dropped_evicted_telemetry": self._counters["evicted"],
                "dropped_refused_telemetry": self._counters["refused"],
                "rejected_oversize": self._counters["rejected"],
                "commands_over_bound": self.over_bound,
            }
