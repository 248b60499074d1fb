"""Server backups (``/api/backup``): run, list, download, delete, restore — with job progress.

A run or a restore is a job ``{id, type, state (running|done|failed), done, total, message, result}``:
``POST /api/backup/run`` and ``POST /api/backup/restore`` answer ``{"jobId", ...}`` and
``GET /api/backup/job/{id}`` reports progress, so the console shows a real progress bar.

The jobs, archives and restores are ``services.backup.BackupService``'s. After a run only the newest
``retentionCount`` (default 5) are kept. Restore takes ``{"name": ...}`` (a stored backup), ``{"uploadId": ...}``
(an archive sent through a presigned upload) or the zip itself (raw ``application/zip`` /
``application/octet-stream`` body, or multipart with a ``file`` part); a bad archive is 400 and nothing changes.

Archives past Lambda's payload limit travel through presigned URLs where the blob store has them (S3):
``POST /api/backup/upload`` ``{"name", "size"}`` answers where to send an archive (``services/uploads.py``), and a
download answers the archive's URL (JSON ``{url, expiresIn, filename}`` to a client that accepts JSON, else a 302 to
it). Where the store has none (the local directory) the API carries the bytes as before.
"""

from __future__ import annotations

import re
from typing import Any, Final

from pydantic import Field as PydField
from pydantic import field_validator

from chalicelib.bootstrap import Container
from chalicelib.core.model import CamelModel
from chalicelib.services.backup import DEFAULT_RETENTION, UPLOAD_PURPOSE, backup_name

from .errors import bad_request
from .firmware import UploadOffer, _media_type, direct_limit, multipart_parts
from .web import ApiRequest, Reply, validate

ARCHIVE_TYPES: Final = ("application/zip", "application/octet-stream", "multipart/form-data")
"""The bodies that carry the archive itself."""
RESTORE_TYPES: Final = ("application/json", *ARCHIVE_TYPES)


def max_archive_bytes(container: Container) -> int:
    return direct_limit(container, container.settings.backup_max_bytes)


def offer_upload(request: ApiRequest) -> dict[str, Any]:
    """Where to send an archive to restore: to the blob store (presigned), or to ``/api/backup/restore``."""
    offer = validate(UploadOffer, request.json())
    container = request.container
    return container.uploads.offer(UPLOAD_PURPOSE, size=offer.size, max_bytes=container.settings.backup_max_bytes,
                                   direct_max_bytes=max_archive_bytes(container), path="/api/backup/restore",
                                   direct_types=ARCHIVE_TYPES, done={})


def get_job(request: ApiRequest) -> dict[str, Any]:
    return request.container.backups.job(request.path_params.get("id", ""))


REFERENCE_LOCATION: Final = "default"
"""The location name backup rows carry for MyController v2's console (ours live in the blob store, one place)."""


def _row(item: dict[str, Any]) -> dict[str, Any]:
    """A backup as we list it, and as MyController v2's console reads one: ``{id, locationName, providerType,
    directory, fileName, fileSize, fullPath, modifiedOn}`` (``id`` is the name, which deletes and restores it)."""
    return {**item, "id": item["name"], "locationName": REFERENCE_LOCATION, "providerType": "disk",
            "directory": "", "fileName": f"{item['name']}.zip", "fileSize": item["size"], "fullPath": item["name"],
            "modifiedOn": item["createdOn"]}


def list_backups(request: ApiRequest) -> dict[str, Any]:
    items = [_row(item) for item in request.container.backups.listing()]
    return {"count": len(items), "limit": 0, "offset": 0, "data": items}


_UNSAFE_PREFIX: Final = re.compile(r"[^A-Za-z0-9_\-]+")


class RunRequest(CamelModel):
    """Ours (``retentionCount``, ``prefix``), or MyController v2's ``{prefix, storageExportType, targetLocation,
    handler}``: its prefix is made safe for a backup name; the rest has one answer here (the blob store, JSON)."""

    retention_count: int = PydField(default=DEFAULT_RETENTION, ge=1, le=1000)
    prefix: str = PydField(default="mycontroller", max_length=64)
    storage_export_type: str = ""
    target_location: str = ""
    handler: str = ""

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        safe = _UNSAFE_PREFIX.sub("_", value).strip("_")[:40]
        if not safe:
            raise ValueError("prefix needs a letter or digit")
        return safe


def run_backup(request: ApiRequest) -> Reply:
    options = validate(RunRequest, request.json()) if request.raw_body.strip() else RunRequest()
    job, name = request.container.backups.run(prefix=options.prefix, retention=options.retention_count)
    return Reply(200, {"jobId": job.id, "name": name, "job": job.to_dict()})


def restore_by_id(request: ApiRequest) -> Reply:
    """MyController v2's ``GET /api/restore/run?id=<backup>``: restore a stored backup (a job, as ``POST
    /api/backup/restore``); the reference restarted itself instead."""
    name = backup_name(request.param("id") or "", "id")
    backups = request.container.backups
    job = backups.restore(backups.archive(name, "id"), name)
    return Reply(200, {"jobId": job.id, "job": job.to_dict()})


def delete_backups(request: ApiRequest) -> dict[str, int]:
    body = request.json()
    if not isinstance(body, list) or not body:
        raise bad_request("body must be a non-empty list of backup names", "body")
    names = [backup_name(item, f"[{index}]") for index, item in enumerate(body)]
    return request.container.backups.delete(names)


def wants_json(accept: str) -> bool:
    """Whether a client takes the archive's URL as JSON (the console sends ``Accept: application/json,
    application/zip``: the URL where there is one, else the file) rather than only the file (a browser link,
    ``curl -L``: they get a redirect)."""
    return "application/json" in [part.split(";")[0].strip().lower() for part in accept.split(",")]


def download_backup(request: ApiRequest) -> Reply:
    name = backup_name(request.path_params.get("name", ""))
    backups = request.container.backups
    link = backups.download_link(name)
    if link is not None:  # the bytes come from the blob store, not through the function
        if wants_json(request.accept):
            return Reply(200, link)
        return Reply(302, link, {"Location": link["url"], "Cache-Control": "no-store"})
    data = backups.archive(name)
    return Reply(200, data, {"Content-Type": "application/zip",
                             "Content-Disposition": f'attachment; filename="{name}.zip"'})


def restore_backup(request: ApiRequest) -> Reply:
    backups = request.container.backups
    media_type, _ = _media_type(request.content_type)
    if media_type == "application/json":
        body = request.json()
        if isinstance(body, dict) and "uploadId" in body:
            upload_id = body["uploadId"]
            if not isinstance(upload_id, str):
                raise bad_request("uploadId must be the id an upload offer answered", "uploadId")
            job = backups.restore_upload(upload_id)
            return Reply(200, {"jobId": job.id, "job": job.to_dict()})
        if not isinstance(body, dict) or "name" not in body:
            raise bad_request('body must be {"name": "<backup name>"}, {"uploadId": "<id>"} or a zip archive',
                              "name")
        source = backup_name(body["name"])
        data = backups.archive(source)
    elif media_type == "multipart/form-data":
        parts = multipart_parts(request.raw_body, request.content_type)
        if "file" not in parts:
            raise bad_request("multipart body needs a 'file' part", "file")
        data, source = parts["file"][1], parts["file"][0].get("filename") or "upload"
    else:
        data, source = request.raw_body, "upload"
    job = backups.restore(data, source)
    return Reply(200, {"jobId": job.id, "job": job.to_dict()})
