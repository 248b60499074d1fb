"""Firmware: ``{id, description, file{name, checksum, size}, labels}`` records (``/api/firmware``) and their bytes
in the blob store under ``firmware/<id>``.

``POST /api/firmware/upload/{id}`` takes the file one of two ways:

* direct: a raw ``application/octet-stream`` body (name from ``?name=``) or ``multipart/form-data`` with a ``file``
  part (the reference's form; ``description`` and ``labels`` parts, JSON, are taken too), up to
  ``FIRMWARE_MAX_BYTES`` and ``DIRECT_UPLOAD_MAX_BYTES`` (in AWS 4 MB: Lambda's payload limit);
* presigned, for files past Lambda's payload limit: a JSON ``{"name", "size"}`` asks where to send the file and
  answers an upload offer (``services/uploads.py``: ``mode: presigned`` with a form to post the file to S3, or
  ``mode: direct`` where the blob store has no URLs, i.e. send it as above); after the file is sent,
  ``{"uploaded": true, "uploadId", "description"?, "labels"?}`` makes the API take it from the store.

Either way the checksum (``sha256:<hex>``) and size are computed here from the stored bytes, never taken from the
client (``services/firmware.py``). Upload creates the record when it does not exist. Upserts keep the stored
``file``; deleting a firmware deletes its file. MySensors needs labels ``ms_type_id`` and ``ms_version_id``:
integers 0-65535 when present.
"""

from __future__ import annotations

import json
from email.message import Message
from typing import Any, Final, Literal
from urllib.parse import quote

from pydantic import Field as PydField

from chalicelib.bootstrap import Container
from chalicelib.core.model import CamelModel, EventType, Firmware, Kind, Record, event, now_iso
from chalicelib.services.firmware import PREFIX

from .errors import bad_request
from .resources import id_list
from .web import ApiRequest, validate

DIRECT_TYPES: Final = ("application/octet-stream", "multipart/form-data")
"""The bodies that carry the file itself."""
UPLOAD_TYPES: Final = ("application/json", *DIRECT_TYPES)
MAX_UPLOAD_SIZE: Final = 1 << 40
"""Sizes an offer request may state (the limits are far below; this only keeps the number sane)."""


def direct_limit(container: Container, file_limit: int) -> int:
    """The largest file the API takes in a body: the file limit, and the direct upload limit when one is set."""
    direct = container.settings.direct_upload_max_bytes
    return min(file_limit, direct) if direct else file_limit


def max_upload_bytes(container: Container) -> int:
    return direct_limit(container, container.settings.firmware_max_bytes)


class UploadOffer(CamelModel):
    """Asks where to send a file: its name (shown, never a path) and size in bytes."""

    name: str = PydField(default="", max_length=1024)
    size: int = PydField(ge=1, le=MAX_UPLOAD_SIZE)


class FirmwareUploaded(CamelModel):
    """Says the file of an offer was sent: the API takes it from the blob store."""

    uploaded: Literal[True]
    upload_id: str = PydField(min_length=1, max_length=64)
    name: str = PydField(default="", max_length=1024)
    description: str | None = None
    labels: dict[str, Any] | None = None


def offer_schema(done: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI schema of an upload offer whose ``then.body`` is ``done`` plus the upload id."""
    return {
        "type": "object", "required": ["mode", "then"],
        "description": "Where to send the file: straight to the blob store (presigned: POST the form's fields, then "
                       "the file as fileField, to url; then make the `then` call), or to the API (direct)",
        "properties": {
            "mode": {"type": "string", "enum": ["presigned", "direct"]},
            "uploadId": {"type": "string"}, "maxBytes": {"type": "integer"}, "expiresIn": {"type": "integer"},
            "upload": {"type": "object", "properties": {
                "method": {"type": "string", "enum": ["POST"]}, "url": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                "fileField": {"type": "string"}}},
            "then": {"type": "object", "required": ["method", "path"], "properties": {
                "method": {"type": "string"}, "path": {"type": "string"},
                "body": {"type": "object", "properties": {**done, "uploadId": {"type": "string"}}},
                "contentTypes": {"type": "array", "items": {"type": "string"}}}},
        },
    }


UPLOAD_BODY_SCHEMA: Final = {
    "oneOf": [
        {"type": "object", "required": ["size"], "description": "Ask where to send the file",
         "properties": {"name": {"type": "string", "maxLength": 1024},
                        "size": {"type": "integer", "minimum": 1, "maximum": MAX_UPLOAD_SIZE}}},
        {"type": "object", "required": ["uploaded", "uploadId"], "description": "The offered upload was sent",
         "properties": {"uploaded": {"type": "boolean", "enum": [True]}, "uploadId": {"type": "string"},
                        "name": {"type": "string"}, "description": {"type": "string"},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}}}},
    ],
}


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


def _offer(request: ApiRequest, firmware_id: str, body: dict[str, Any]) -> dict[str, Any]:
    offer = validate(UploadOffer, body)
    container = request.container
    validate(Firmware, {"id": firmware_id})  # a bad id is refused before anything is sent
    return container.uploads.offer(
        f"firmware/{firmware_id}", size=offer.size, max_bytes=container.settings.firmware_max_bytes,
        direct_max_bytes=max_upload_bytes(container), path=f"/api/firmware/upload/{quote(firmware_id, safe='')}",
        direct_types=DIRECT_TYPES, done={"uploaded": True, "name": offer.name})


def _take(request: ApiRequest, firmware_id: str, body: dict[str, Any]) -> Record:
    done = validate(FirmwareUploaded, body)
    container = request.container
    purpose = f"firmware/{firmware_id}"
    validate(Firmware, {"id": firmware_id})
    data = container.uploads.take(purpose, done.upload_id, max_bytes=container.settings.firmware_max_bytes)
    extra = {key: value for key, value in (("description", done.description), ("labels", done.labels))
             if value is not None}
    record = container.firmware.store(firmware_id, data, name=done.name, extra=extra)
    container.uploads.discard(purpose, done.upload_id)
    return record


def upload_firmware(request: ApiRequest) -> Record | dict[str, Any]:
    firmware_id = request.path_params.get("id", "")
    media_type, _ = _media_type(request.content_type)
    if media_type == "application/json":
        body = request.json()
        if not isinstance(body, dict):
            raise bad_request('body must be {"name", "size"} or {"uploaded": true, "uploadId"}', "body")
        return _take(request, firmware_id, body) if "uploaded" in body else _offer(request, firmware_id, body)
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
    return request.container.firmware.store(firmware_id, data, name=name, extra=extra)
