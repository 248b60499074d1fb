"""Powertools idempotency records for the local stack, in SQLite (``<DATA_DIR>/handler-runs.sqlite3``).

A ``BasePersistenceLayer`` with the DynamoDB layer's semantics: a record is claimed (``INPROGRESS``) only when
none exists, the existing one has expired, or it is in progress past its in-progress expiry (a run that died);
otherwise ``IdempotencyItemAlreadyExistsError`` carries the existing record. The claim is one ``INSERT ... ON
CONFLICT DO UPDATE ... WHERE`` statement, so two threads or processes cannot both claim a key. ``":memory:"``
keeps the records in memory (tests).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from pathlib import Path

from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer, DataRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    expiry INTEGER,
    in_progress_expiry INTEGER,
    data TEXT NOT NULL DEFAULT '',
    validation TEXT NOT NULL DEFAULT ''
)"""


class SqlitePersistenceLayer(BasePersistenceLayer):
    def __init__(self, path: Path | str) -> None:
        super().__init__()
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=10)
        if str(path) != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)

    def _row(self, key: str) -> DataRecord | None:
        row = self._db.execute("SELECT key, status, expiry, in_progress_expiry, data, validation FROM idempotency "
                               "WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return DataRecord(idempotency_key=row[0], status=row[1], expiry_timestamp=row[2],
                          in_progress_expiry_timestamp=row[3], response_data=row[4], payload_hash=row[5])

    def _get_record(self, idempotency_key: str) -> DataRecord:
        with self._lock:
            record = self._row(idempotency_key)
        if record is None:
            raise IdempotencyItemNotFoundError
        return record

    def _put_record(self, data_record: DataRecord) -> None:
        now = dt.datetime.now()
        now_s, now_ms = int(now.timestamp()), int(now.timestamp() * 1000)
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO idempotency (key, status, expiry, in_progress_expiry, data, validation) "
                "VALUES (?, ?, ?, ?, '', ?) ON CONFLICT(key) DO UPDATE SET status = excluded.status, "
                "expiry = excluded.expiry, in_progress_expiry = excluded.in_progress_expiry, data = '', "
                "validation = excluded.validation "
                "WHERE idempotency.expiry < ? OR (idempotency.status = 'INPROGRESS' "
                "AND idempotency.in_progress_expiry IS NOT NULL AND idempotency.in_progress_expiry < ?)",
                (data_record.idempotency_key, data_record.status, data_record.expiry_timestamp,
                 data_record.in_progress_expiry_timestamp, data_record.payload_hash, now_s, now_ms))
            if cursor.rowcount == 1:
                return
            existing = self._row(data_record.idempotency_key)
        raise IdempotencyItemAlreadyExistsError(
            f"Failed to put record for already existing idempotency key: {data_record.idempotency_key}",
            old_data_record=existing)

    def _update_record(self, data_record: DataRecord) -> None:
        with self._lock:
            self._db.execute("UPDATE idempotency SET status = ?, expiry = ?, data = ? WHERE key = ?",
                             (data_record.status, data_record.expiry_timestamp, data_record.response_data,
                              data_record.idempotency_key))

    def _delete_record(self, data_record: DataRecord) -> None:
        with self._lock:
            self._db.execute("DELETE FROM idempotency WHERE key = ?", (data_record.idempotency_key,))

    def purge_expired(self) -> int:
        """Drop records past their expiry (DynamoDB's TTL does this in AWS)."""
        with self._lock:
            return self._db.execute("DELETE FROM idempotency WHERE expiry < ?",
                                    (int(dt.datetime.now().timestamp()),)).rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()
