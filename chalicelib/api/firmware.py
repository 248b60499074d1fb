"""Firmware: ``{id, description, file{name, checksum, size}, labels}`` records (``/api/firmware``) and their bytes
in the blob store under ``firmware/<id>``.

``POST /api/firmware/upload/{id}`` takes the file as a raw ``application/octet-stream`` body (name from
``?name=``) or as ``multipart/form-data`` with a ``file`` part (the reference's form; ``description`` and
``labels`` parts, JSON, are taken too). The checksum (``sha256:<hex>``) and size are computed here, never
taken from the client; the limit is ``FIRMWARE_MAX_BYTES`` (not ``MAX_BODY_BYTES``). Upload creates the record
when it does not exist. Upserts keep the stored ``file``; deleting a firmware deletes its file.
MySensors needs labels ``ms_type_id`` and ``ms_version_id``: integers 0-65535 when present.
"""

from __future__ import annotations

import hashlib
import json
import re
from email.message import Message
from typing import Any, Final

from chalicelib.bootstrap import Container
from chalicelib.core.model import EventType, Firmware, Kind, Record, event, now_iso

from .errors import bad_request
from .resources import id_list
from .web import ApiRequest, validate

PREFIX: Final = "firmware/"
UPLOAD_TYPES: Final = ("application/octet-stream", "multipart/form-data")
MAX_NAME_CHARS: Final = 255


def max_upload_bytes(container: Container) -> int:
    return container.settings.firmware_max_bytes


# --------------------------------------------------------------------------------------------- multipart


def _media_type(content_type: str) -> tuple[str, dict[str, str]]:
    message = Message()
    message["content-type"] = content_type or "application/octet-stream"
    params = {str(k).lower(): str(v) for k, v in message.get_params(failobj=[])[1:]}
    return message.get_content_type(), params


def multipart_parts(body: bytes, content_type: str) -> dict[str, tuple[dict[str, str], bytes]]:
    """``name → ({"filename": …}, bytes)`` of a ``multipart/form-data`` body; 400 when it is not one."""
    _, params = _media_type(content_type)
    boundary = params.get("boundary", "")
    if not boundary or len(boundary) > 200:
        raise bad_request("multipart/form-data needs a boundary", "Content-Type")
    delimiter = b"--" + boundary.encode("latin-1")
    chunks = body.split(delimiter)
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        raise bad_request("multipart body is not complete (no closing boundary)", "body")
    parts: dict[str, tuple[dict[str, str], bytes]] = {}
    for chunk in chunks[1:-1]:
        if chunk.startswith(b"\r\n"):
            chunk = chunk[2:]
        head, separator, content = chunk.partition(b"\r\n\r\n")
        if not separator:
            raise bad_request("multipart part without headers", "body")
        if content.endswith(b"\r\n"):
            content = content[:-2]
        headers = Message()
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, colon, value = line.partition(":")
            if colon:
                headers[key.strip()] = value.strip()
        disposition = headers.get("content-disposition", "")
        if not disposition:
            continue
        holder = Message()
        holder["content-disposition"] = disposition
        name = holder.get_param("name", header="content-disposition")
        filename = holder.get_filename() or ""
        if isinstance(name, str) and name:
            parts[name] = ({"filename": filename}, content)
    return parts


def _clean_name(name: str, fallback: str) -> str:
    """A display name only (never a path): the last segment, printable, bounded."""
    name = re.split(r"[\\/]", name or "")[-1].strip()
    name = "".join(ch for ch in name if ch.isprintable())[:MAX_NAME_CHARS]
    return name or fallback


# --------------------------------------------------------------------------------------------- handlers


def _validated(body: Any) -> Record:
    if not isinstance(body, dict):
        raise bad_request("body must be a firmware object", "body")
    return validate(Firmware, body).record()


def upsert_firmware(request: ApiRequest) -> Record:
    record = _validated(request.json())
    container = request.container
    stored = container.repository.get(Kind.FIRMWARE, record["id"])
    record = {**record, "file": (stored or {}).get("file") or {"name": "", "checksum": "", "size": 0},
              "modifiedOn": now_iso()}
    container.repository.put(Kind.FIRMWARE, record)
    container.records.announce([event(EventType.UPDATED if stored else EventType.CREATED, Kind.FIRMWARE, record)])
    return record


def delete_firmware(request: ApiRequest) -> dict[str, int]:
    container = request.container
    found = container.records.find_all(Kind.FIRMWARE, id_list(request, Kind.FIRMWARE))
    deleted = container.repository.delete(Kind.FIRMWARE, list(found))
    container.blobs.delete([PREFIX + str(record["id"]) for _, record in deleted])
    container.records.announce([event(EventType.DELETED, kind, record) for kind, record in deleted])
    return {"deleted": len(deleted), "cascaded": 0}


def upload_firmware(request: ApiRequest) -> Record:
    firmware_id = request.path_params.get("id", "")
    media_type, _ = _media_type(request.content_type)
    extra: dict[str, Any] = {}
    if media_type == "multipart/form-data":
        parts = multipart_parts(request.raw_body, request.content_type)
        if "file" not in parts:
            raise bad_request("multipart body needs a 'file' part", "file")
        meta, data = parts["file"]
        name = meta.get("filename") or ""
        for key in ("description", "labels"):
            if key in parts:
                text = parts[key][1].decode("utf-8", "replace")
                if key == "labels":
                    try:
                        extra[key] = json.loads(text) if text.strip() else {}
                    except json.JSONDecodeError:
                        raise bad_request("labels part must be a JSON object", "labels") from None
                else:
                    extra[key] = text
    else:
        data = request.raw_body
        name = request.param("name") or ""
    if not data:
        raise bad_request("the firmware file is empty", "file")
    container = request.container
    stored = container.repository.get(Kind.FIRMWARE, firmware_id) or {}
    merged = {**stored, "id": firmware_id, **extra}
    merged.pop("file", None)
    record = _validated(merged)
    record["file"] = {"name": _clean_name(name, firmware_id),
                      "checksum": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data)}
    record["modifiedOn"] = now_iso()
    container.blobs.put(PREFIX + firmware_id, data)
    container.repository.put(Kind.FIRMWARE, record)
    container.records.announce([event(EventType.UPDATED if stored else EventType.CREATED, Kind.FIRMWARE, record)])
    return record

