"""Server backups: run, list, read, delete, restore — as jobs with progress.

A run or a restore is a job ``{id, type, state (running|done|failed), done, total, message, result}`` that its
caller polls. Where the work runs: in a thread where threads outlive the call (the local stack, tests), within the
call in Lambda (a thread would be frozen with the invocation; bounded by ``max_bytes`` and the function's timeout),
where the job is then already ``done`` when polled. Job states are kept in memory and, at most every
``SAVE_INTERVAL_S`` and at the end, in the blob store (``jobs/<id>.json``), so another Lambda container answers the
poll as well. One run or restore at a time in a process.

Archives are ``backups/<name>.zip`` in the blob store; after a run only the newest ``retention`` are kept. The
archive of a restore is checked completely first (``core.backup.read_archive``): a bad one changes nothing. A
restore announces one bus event, ``backup.restored``, not one per record; see ``core/backup.py`` for what it means
for who is logged in.

Archives larger than a Lambda payload travel through presigned URLs where the blob store has them
(``services/uploads.py``): ``download_link`` instead of ``archive``, ``restore_upload`` for an archive the client
sent to the store itself.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from ..core import backup as core
from ..core.model import DomainEvent, iso_from_ms, now_iso, now_ms
from ..core.ports import BlobNotFound, BlobStore, Repository
from .errors import Conflict, InvalidInput, NotFound
from .records import Records
from .uploads import Uploads

BACKUP_PREFIX: Final = "backups/"
JOB_PREFIX: Final = "jobs/"
DEFAULT_RETENTION: Final = 5
SAVE_INTERVAL_S: Final = 1.0
MAX_JOBS_KEPT: Final = 100
JOB_STATE_TTL_MS: Final = 24 * 3600 * 1000
"""Saved job states older than this are removed when the next job starts."""
NAME_PATTERN: Final = r"^[A-Za-z0-9_\-]{1,100}\Z"
UPLOAD_PURPOSE: Final = "backup"
"""Archives sent through presigned uploads are staged under ``uploads/backup/<uploadId>``."""

log = logging.getLogger(__name__)


@dataclass
class Job:
    id: str
    type: str
    state: str = "running"
    done: int = 0
    total: int = 0
    message: str = "starting"
    result: dict[str, Any] = field(default_factory=dict)
    started_on: str = field(default_factory=now_iso)
    finished_on: str | None = None
    saved_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "state": self.state, "done": self.done, "total": self.total,
                "message": self.message, "result": self.result, "startedOn": self.started_on,
                "finishedOn": self.finished_on}


def backup_name(text: Any, field_name: str = "name") -> str:
    """A backup's name (``.zip`` dropped), or ``InvalidInput`` naming ``field_name``."""
    name = text.removesuffix(".zip") if isinstance(text, str) else ""
    if not re.match(NAME_PATTERN, name):
        raise InvalidInput(f"backup name {text!r} must be 1-100 letters, digits, '_' or '-'", field_name)
    return name


class BackupService:
    def __init__(self, repository: Repository, blobs: BlobStore, records: Records, *, max_bytes: int,
                 app_version: str = "", rearm: Callable[[], dict[str, int] | None] | None = None,
                 in_thread: bool = True, uploads: Uploads | None = None) -> None:
        self.uploads = uploads
        """Presigned transfers (``None``: the API carries every archive itself)."""
        self.repository = repository
        self.blobs = blobs
        self.records = records
        self.max_bytes = max_bytes
        self.app_version = app_version
        self.rearm = rearm
        """Put the restored schedules' and interval tasks' triggers again; ``None`` when there is no registry."""
        self.in_thread = in_thread
        """Run jobs in a thread (the call answers at once), or within the call (Lambda)."""
        self._jobs: dict[str, Job] = {}
        self._jobs_lock = threading.Lock()
        self._work_lock = threading.Lock()

    # ----------------------------------------------------------------------------------------- jobs

    def _save(self, job: Job, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - job.saved_at < SAVE_INTERVAL_S:
            return
        job.saved_at = now
        try:
            self.blobs.put(JOB_PREFIX + job.id + ".json", json.dumps(job.to_dict()).encode(), "application/json")
        except Exception:  # progress is a courtesy: the work goes on
            log.exception("could not save backup job state %s", job.id)

    def _start(self, job_type: str, work: Callable[[Job], dict[str, Any]]) -> Job:
        if not self._work_lock.acquire(blocking=False):
            raise Conflict("a backup or restore is already running; wait for it", "job")
        job = Job(id=uuid.uuid4().hex, type=job_type)
        with self._jobs_lock:
            self._jobs[job.id] = job
            while len(self._jobs) > MAX_JOBS_KEPT:
                self._jobs.pop(next(iter(self._jobs)))

        def run() -> None:
            try:
                job.result = work(job)
                job.state, job.message = "done", "done"
                job.done = job.total = max(job.total, job.done)
            except core.BackupError as error:
                job.state, job.message = "failed", str(error)
            except Exception:
                log.exception("backup job %s (%s) failed", job.id, job_type)
                job.state, job.message = "failed", "internal error; see the logs"
            finally:
                job.finished_on = now_iso()
                self._work_lock.release()
                self._save(job, force=True)

        self._save(job, force=True)
        self._forget_old_jobs()
        if self.in_thread:
            threading.Thread(target=run, name=f"backup-{job_type}-{job.id[:8]}", daemon=True).start()
        else:
            run()
        return job

    def _forget_old_jobs(self) -> None:
        try:
            cutoff = now_ms() - JOB_STATE_TTL_MS
            old = [info.key for info in self.blobs.list(JOB_PREFIX) if info.modified_ms < cutoff]
            if old:
                self.blobs.delete(old)
        except Exception:  # housekeeping only
            log.exception("could not remove old backup job states")

    def _progress(self, job: Job) -> core.Progress:
        def update(done: int, total: int, message: str) -> None:
            job.done, job.total, job.message = done, total, message
            self._save(job)

        return update

    def job(self, job_id: str) -> dict[str, Any]:
        with self._jobs_lock:
            job = self._jobs.get(job_id)
        if job is not None:
            return job.to_dict()
        if len(job_id) <= 64 and job_id.isalnum():
            try:
                data = json.loads(self.blobs.get(JOB_PREFIX + job_id + ".json"))
                if isinstance(data, dict):
                    return data
            except (BlobNotFound, ValueError):
                pass
        raise NotFound(f"job {job_id!r} not found", "id")

    # ----------------------------------------------------------------------------------------- backups

    def listing(self) -> list[dict[str, Any]]:
        """Stored backups, newest first: ``{name, size, createdOn}``."""
        items = []
        for info in self.blobs.list(BACKUP_PREFIX):
            name = info.key[len(BACKUP_PREFIX):]
            if "/" in name or not name.endswith(".zip"):
                continue
            items.append({"name": name.removesuffix(".zip"), "size": info.size,
                          "createdOn": iso_from_ms(info.modified_ms)})
        return sorted(items, key=lambda item: (item["createdOn"], item["name"]), reverse=True)

    def run(self, *, prefix: str = "mycontroller", retention: int = DEFAULT_RETENTION,
            per_prefix: bool = False) -> tuple[Job, str]:
        """Start a backup; the job and the name its archive will have. The newest ``retention`` archives are kept
        (0: all), of every prefix, or with ``per_prefix`` of this prefix only (MyController v2's backup handler)."""
        name = f"{prefix}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:4]}"

        def work(job: Job) -> dict[str, Any]:
            data, manifest = core.build_archive(self.repository, self.blobs, app_version=self.app_version,
                                                max_bytes=self.max_bytes, progress=self._progress(job))
            job.message = "storing the archive"
            self.blobs.put(BACKUP_PREFIX + name + ".zip", data, "application/zip")
            backups = [item["name"] for item in self.listing()
                       if not per_prefix or item["name"].startswith(prefix + "-")]
            old = [n for n in backups if n != name][retention - 1:] if retention > 0 else []
            if old:
                self.blobs.delete([BACKUP_PREFIX + n + ".zip" for n in old])
            return {"name": name, "size": len(data), "counts": manifest["counts"], "removed": old}

        return self._start("backup", work), name

    def delete(self, names: list[str]) -> dict[str, int]:
        existing = {item["name"] for item in self.listing()}
        missing = [n for n in names if n not in existing]
        if missing:
            raise NotFound(f"backup not found: {', '.join(repr(n) for n in missing[:10])}", "body")
        self.blobs.delete([BACKUP_PREFIX + n + ".zip" for n in dict.fromkeys(names)])
        return {"deleted": len(set(names)), "cascaded": 0}

    def archive(self, name: str, field_name: str = "name") -> bytes:
        try:
            return self.blobs.get(BACKUP_PREFIX + name + ".zip")
        except BlobNotFound:
            raise NotFound(f"backup {name!r} not found", field_name) from None

    def download_link(self, name: str, field_name: str = "name") -> dict[str, Any] | None:
        """``{url, expiresIn, filename}`` to fetch a stored backup from the blob store directly, or ``None`` when
        the store has no URLs (``archive`` then gives the bytes); ``NotFound`` for a backup that is not there."""
        if self.uploads is None:
            return None
        try:
            return self.uploads.download(BACKUP_PREFIX + name + ".zip", filename=f"{name}.zip",
                                         content_type="application/zip")
        except NotFound:
            raise NotFound(f"backup {name!r} not found", field_name) from None

    def restore_upload(self, upload_id: str) -> Job:
        """Start restoring the archive a client sent to the blob store through a presigned upload. The staged copy
        is discarded once the restore started or the archive proved unusable (``InvalidInput``, nothing changed);
        while another job runs (``Conflict``) it stays, so the same call can be made again."""
        if self.uploads is None:
            raise InvalidInput("this server takes archives in the request body, not as uploads", "uploadId")
        data = self.uploads.take(UPLOAD_PURPOSE, upload_id, max_bytes=self.max_bytes)
        try:
            job = self.restore(data, "upload")
        except InvalidInput:
            self.uploads.discard(UPLOAD_PURPOSE, upload_id)
            raise
        self.uploads.discard(UPLOAD_PURPOSE, upload_id)
        return job

    def restore(self, data: bytes, source: str) -> Job:
        """Start restoring an archive (checked whole first: a bad one is ``InvalidInput`` and changes nothing)."""
        try:
            archive = core.read_archive(data, max_bytes=self.max_bytes)
        except core.BackupError as error:
            raise InvalidInput(f"not a usable backup: {error}", "body") from None

        def work(job: Job) -> dict[str, Any]:
            with self.repository.transaction():  # whole or not at all (SQLite): a crash never leaves half of it
                written = core.restore_archive(self.repository, self.blobs, archive, progress=self._progress(job))
            summary: dict[str, Any] = {"source": source, "createdOn": archive.manifest.get("createdOn"),
                                       "written": written}
            if self.rearm is not None:  # the restored schedules and interval tasks get their triggers
                job.message = "re-arming schedules"
                try:
                    rearmed = self.rearm()
                    if rearmed is not None:
                        summary["scheduler"] = rearmed
                except Exception:
                    log.exception("re-arming schedules after a restore failed")
                    summary["scheduler"] = {"error": "re-arming schedules failed; POST /api/schedule/reload"}
            self.records.announce([DomainEvent("restored", "backup", source, f"backup:{source}", summary)])
            return summary

        return self._start("restore", work)
