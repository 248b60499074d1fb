"""Server backups (``/api/backup``): run, list, download, delete, restore — with job progress.

A run or a restore is a job ``{id, type, state (running|done|failed), done, total, message, result}``:
``POST /api/backup/run`` and ``POST /api/backup/restore`` answer ``{"jobId", ...}`` and
``GET /api/backup/job/{id}`` reports progress, so the console shows a real progress bar.

Where the work runs: locally (the local stack, tests) in a thread, and the POST answers at once. In Lambda a
thread would be frozen with the invocation, so there the work runs within the request (bounded by
``BACKUP_MAX_BYTES`` and the function's timeout) and the POST answers once it is done; the job is then already
``done`` when polled. Job states are kept in memory and, at most every ``SAVE_INTERVAL_S`` and at the end, in the
blob store (``jobs/<id>.json``), so another Lambda container answers the poll as well.

Archives are ``backups/<name>.zip`` in the blob store; after a run only the newest ``retentionCount`` (default
5) are kept. Restore takes ``{"name": ...}`` (a stored backup) or an uploaded zip (raw ``application/zip`` /
``application/octet-stream`` body, or multipart with a ``file`` part). The archive is checked completely first
(``core.backup.read_archive``): a bad one is 400 and nothing changes. A restore announces one bus event,
``backup.restored``, not one per record; see ``core/backup.py`` for what it means for who is logged in.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from pydantic import Field as PydField

from chalicelib.config import Services, blob_store, get_services
from chalicelib.core import backup as core
from chalicelib.core.model import CamelModel, DomainEvent, now_iso
from chalicelib.core.ports import BlobNotFound

from .errors import ApiError, bad_request, not_found
from .firmware import _media_type, multipart_parts
from .observability import IN_LAMBDA, logger
from .resources import announce
from .status import VERSION
from .web import ApiRequest, Reply, validate

BACKUP_PREFIX: Final = "backups/"
JOB_PREFIX: Final = "jobs/"
DEFAULT_RETENTION: Final = 5
SAVE_INTERVAL_S: Final = 1.0
MAX_JOBS_KEPT: Final = 100
JOB_STATE_TTL_MS: Final = 24 * 3600 * 1000
"""Saved job states older than this are removed when the next job starts."""
RESTORE_TYPES: Final = ("application/json", "application/zip", "application/octet-stream", "multipart/form-data")
NAME_PATTERN: Final = r"^[A-Za-z0-9_\-]{1,100}$"

RUN_IN_THREAD: bool = not IN_LAMBDA
"""Threads locally; within the request in Lambda (tests may switch it)."""


def max_archive_bytes() -> int:
    return get_services().settings.backup_max_bytes


# --------------------------------------------------------------------------------------------- jobs


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


_jobs: dict[str, Job] = {}
_jobs_lock = threading.Lock()
_work_lock = threading.Lock()
"""One run or restore at a time in a process."""


def _save(services: Services, job: Job, *, force: bool = False) -> None:
    now = time.monotonic()
    if not force and now - job.saved_at < SAVE_INTERVAL_S:
        return
    job.saved_at = now
    try:
        blob_store(services).put(JOB_PREFIX + job.id + ".json", json.dumps(job.to_dict()).encode(),
                                 "application/json")
    except Exception:  # progress is a courtesy: the work goes on
        logger.exception("could not save backup job state", extra={"job": job.id})


def _start(services: Services, job_type: str, work: Callable[[Job], dict[str, Any]]) -> Job:
    if not _work_lock.acquire(blocking=False):
        raise ApiError(409, "a backup or restore is already running; wait for it", "job")
    job = Job(id=uuid.uuid4().hex, type=job_type)
    with _jobs_lock:
        _jobs[job.id] = job
        while len(_jobs) > MAX_JOBS_KEPT:
            _jobs.pop(next(iter(_jobs)))

    def run() -> None:
        try:
            job.result = work(job)
            job.state, job.message = "done", "done"
            job.done = job.total = max(job.total, job.done)
        except core.BackupError as error:
            job.state, job.message = "failed", str(error)
        except Exception:
            logger.exception("backup job failed", extra={"job": job.id, "type": job_type})
            job.state, job.message = "failed", "internal error; see the logs"
        finally:
            job.finished_on = now_iso()
            _work_lock.release()
            _save(services, job, force=True)

    _save(services, job, force=True)
    _forget_old_jobs(services)
    if RUN_IN_THREAD:
        threading.Thread(target=run, name=f"backup-{job_type}-{job.id[:8]}", daemon=True).start()
    else:
        run()
    return job


def _forget_old_jobs(services: Services) -> None:
    from chalicelib.core.model import now_ms

    try:
        blobs = blob_store(services)
        cutoff = now_ms() - JOB_STATE_TTL_MS
        old = [info.key for info in blobs.list(JOB_PREFIX) if info.modified_ms < cutoff]
        if old:
            blobs.delete(old)
    except Exception:  # housekeeping only
        logger.exception("could not remove old backup job states")


def _progress(services: Services, job: Job) -> core.Progress:
    def update(done: int, total: int, message: str) -> None:
        job.done, job.total, job.message = done, total, message
        _save(services, job)

    return update


def get_job(request: ApiRequest) -> dict[str, Any]:
    job_id = request.path_params.get("id", "")
    with _jobs_lock:
        job = _jobs.get(job_id)
    if job is not None:
        return job.to_dict()
    if len(job_id) <= 64 and job_id.isalnum():
        try:
            data = json.loads(blob_store(get_services()).get(JOB_PREFIX + job_id + ".json"))
            if isinstance(data, dict):
                return data
        except (BlobNotFound, ValueError):
            pass
    raise not_found(f"job {job_id!r} not found", "id")


# --------------------------------------------------------------------------------------------- backups


def _backup_name(text: str, field_name: str = "name") -> str:
    import re

    name = text.removesuffix(".zip") if isinstance(text, str) else ""
    if not re.match(NAME_PATTERN, name):
        raise bad_request(f"backup name {text!r} must be 1-100 letters, digits, '_' or '-'", field_name)
    return name


def _listing(services: Services) -> list[dict[str, Any]]:
    from chalicelib.core.model import iso_from_ms

    items = []
    for info in blob_store(services).list(BACKUP_PREFIX):
        name = info.key[len(BACKUP_PREFIX):]
        if "/" in name or not name.endswith(".zip"):
            continue
        items.append({"name": name.removesuffix(".zip"), "size": info.size,
                      "createdOn": iso_from_ms(info.modified_ms)})
    return sorted(items, key=lambda item: (item["createdOn"], item["name"]), reverse=True)


def list_backups(_request: ApiRequest) -> dict[str, Any]:
    items = _listing(get_services())
    return {"count": len(items), "limit": 0, "offset": 0, "data": items}


class RunRequest(CamelModel):
    retention_count: int = PydField(default=DEFAULT_RETENTION, ge=1, le=1000)
    prefix: str = PydField(default="mycontroller", pattern=r"^[A-Za-z0-9_\-]{1,40}$")


def run_backup(request: ApiRequest) -> Reply:
    options = validate(RunRequest, request.json()) if request.raw_body.strip() else RunRequest()
    services = get_services()
    name = f"{options.prefix}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:4]}"

    def work(job: Job) -> dict[str, Any]:
        blobs = blob_store(services)
        data, manifest = core.build_archive(services.repository, blobs, app_version=VERSION,
                                            max_bytes=services.settings.backup_max_bytes,
                                            progress=_progress(services, job))
        job.message = "storing the archive"
        blobs.put(BACKUP_PREFIX + name + ".zip", data, "application/zip")
        backups = [item["name"] for item in _listing(services)]
        old = [n for n in backups if n != name][options.retention_count - 1:]
        if old:
            blobs.delete([BACKUP_PREFIX + n + ".zip" for n in old])
        return {"name": name, "size": len(data), "counts": manifest["counts"], "removed": old}

    job = _start(services, "backup", work)
    return Reply(200, {"jobId": job.id, "name": name, "job": job.to_dict()})


def delete_backups(request: ApiRequest) -> dict[str, int]:
    body = request.json()
    if not isinstance(body, list) or not body:
        raise bad_request("body must be a non-empty list of backup names", "body")
    names = [_backup_name(item, f"[{index}]") for index, item in enumerate(body)]
    services = get_services()
    existing = {item["name"] for item in _listing(services)}
    missing = [n for n in names if n not in existing]
    if missing:
        raise not_found(f"backup not found: {', '.join(repr(n) for n in missing[:10])}", "body")
    blob_store(services).delete([BACKUP_PREFIX + n + ".zip" for n in dict.fromkeys(names)])
    return {"deleted": len(set(names)), "cascaded": 0}


def download_backup(request: ApiRequest) -> Reply:
    name = _backup_name(request.path_params.get("name", ""))
    try:
        data = blob_store(get_services()).get(BACKUP_PREFIX + name + ".zip")
    except BlobNotFound:
        raise not_found(f"backup {name!r} not found", "name") from None
    return Reply(200, data, {"Content-Type": "application/zip",
                             "Content-Disposition": f'attachment; filename="{name}.zip"'})


def restore_backup(request: ApiRequest) -> Reply:
    services = get_services()
    media_type, _ = _media_type(request.content_type)
    if media_type == "application/json":
        body = request.json()
        if not isinstance(body, dict) or "name" not in body:
            raise bad_request('body must be {"name": "<backup name>"} or a zip archive', "name")
        name = _backup_name(body["name"])
        try:
            data = blob_store(services).get(BACKUP_PREFIX + name + ".zip")
        except BlobNotFound:
            raise not_found(f"backup {name!r} not found", "name") from None
        source = name
    elif media_type == "multipart/form-data":
        parts = multipart_parts(request.raw_body, request.content_type)
        if "file" not in parts:
            raise bad_request("multipart body needs a 'file' part", "file")
        data, source = parts["file"][1], parts["file"][0].get("filename") or "upload"
    else:
        data, source = request.raw_body, "upload"
    try:  # checked here, before any change, so a bad archive is a plain 400
        archive = core.read_archive(data, max_bytes=services.settings.backup_max_bytes)
    except core.BackupError as error:
        raise bad_request(f"not a usable backup: {error}", "body") from None

    def work(job: Job) -> dict[str, Any]:
        written = core.restore_archive(services.repository, blob_store(services), archive,
                                       progress=_progress(services, job))
        summary: dict[str, Any] = {"source": source, "createdOn": archive.manifest.get("createdOn"),
                                   "written": written}
        if services.schedules is not None:  # the restored schedules and interval tasks get their triggers
            job.message = "re-arming schedules"
            from chalicelib.automation_functions import get_functions, reload_registry

            try:
                functions = get_functions()
                functions.tasks.invalidate()
                summary["scheduler"] = reload_registry(functions.automation)
            except Exception:
                logger.exception("re-arming schedules after a restore failed")
                summary["scheduler"] = {"error": "re-arming schedules failed; POST /api/schedule/reload"}
        announce(services, [DomainEvent("restored", "backup", source, f"backup:{source}", summary)])
        return summary

    job = _start(services, "restore", work)
    return Reply(200, {"jobId": job.id, "job": job.to_dict()})
