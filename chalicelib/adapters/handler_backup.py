"""Backup handler calls (MyController v2's ``backup`` handler type): a backup into the blob store, as ``POST
/api/backup/run`` makes one, keeping the newest ``retentionCount`` archives of its prefix (0: all of them).

The archive's name starts with the handler's ``prefix`` (default: the handler id), made safe for a backup name. A
backup already running is a retry (``HandlerCallError``, retryable); the rest of the work is the backup service's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from chalicelib.core.ports import HandlerCallError
from chalicelib.services.backup import BackupService
from chalicelib.services.errors import Conflict

_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_\-]+")


class BackupExecutor:
    def __init__(self, backups: Callable[[], BackupService]) -> None:
        self.backups = backups
        """The backup service, asked for at the first backup (a handler function that never backs up never builds
        it)."""

    def execute(self, spec: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        prefix = _UNSAFE.sub("_", str(params.get("prefix") or "handler")).strip("_")[:40] or "handler"
        retention = int(params.get("retentionCount") or 0)
        try:
            job, name = self.backups().run(prefix=prefix, retention=retention, per_prefix=True)
        except Conflict as error:
            raise HandlerCallError(f"backup: {error.message}") from None
        return {"action": "backup", "name": name, "jobId": job.id}
