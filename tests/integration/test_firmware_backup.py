"""Firmware and server backups through the API (memory and DynamoDB repositories, local blob store):
uploads raw and multipart with the checksum computed by the server, limits and label checks; backup run, list,
download, delete, retention, job progress; restore from a stored backup or an uploaded archive gives back the
same records; malicious archives are refused with 400 and change nothing."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import time
import zipfile
from typing import Any

import pytest

from chalicelib.core.backup import BACKUP_KINDS, all_records
from chalicelib.core.model import FieldModel, Gateway, Kind, Node, Source
from chalicelib.services import backup as backup_service
from tests.integration.api_helpers import Api

pytestmark = pytest.mark.integration

FIRMWARE = bytes(range(256)) * 40 + b":1000000000\n"
BOUNDARY = "----mcTestBoundary7MA4YWxk"


@pytest.fixture(autouse=True)
def synchronous_jobs(api: Api) -> None:
    """Jobs run within the request (as in Lambda) unless a test wants the thread."""
    api.container.backups.in_thread = False


def multipart(fields: dict[str, tuple[str | None, bytes]]) -> tuple[bytes, str]:
    body = b""
    for name, (filename, data) in fields.items():
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += (f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
                 + ("Content-Type: application/octet-stream\r\n" if filename else "") + "\r\n").encode()
        body += data + b"\r\n"
    body += f"--{BOUNDARY}--\r\n".encode()
    return body, f"multipart/form-data; boundary={BOUNDARY}"


def upload_raw(api: Api, firmware_id: str, data: bytes, name: str = "node.hex") -> tuple[int, Any]:
    status, body, _ = api.call("POST", f"/api/firmware/upload/{firmware_id}", raw=data,
                               headers={"Content-Type": "application/octet-stream"}, name=name)
    return status, body


def seed(api: Api) -> None:
    repo = api.container.repository
    repo.put(Kind.GATEWAY, Gateway(id="gw", provider={"type": "mysensors_v2"}).record())
    repo.put(Kind.NODE, Node(gateway_id="gw", node_id="1", labels={"room": "hall"}).record())
    repo.put(Kind.SOURCE, Source(gateway_id="gw", node_id="1", source_id="1").record())
    for index in range(120):  # more than two files of 50
        repo.put(Kind.FIELD, FieldModel.model_validate({
            "gatewayId": "gw", "nodeId": "1", "sourceId": "1", "fieldId": f"F{index}", "metricType": "gauge",
            "current": {"value": index, "timestamp": "2026-01-01T00:00:00.000Z", "sequence": index}}).record())
    api.ok("POST", "/api/dashboard", {"id": "home", "title": "Home"})
    assert upload_raw(api, "fw1", FIRMWARE)[0] == 200
    api.ok("POST", "/api/servicetoken", {"name": "ci", "neverExpire": True})


def snapshot(api: Api) -> dict[Kind, list[dict[str, Any]]]:
    return {kind: all_records(api.container.repository, kind) for kind in BACKUP_KINDS}


def run_backup(api: Api, **body: Any) -> dict[str, Any]:
    started = api.ok("POST", "/api/backup/run", body or None)
    job = api.ok("GET", f"/api/backup/job/{started['jobId']}")
    assert job["state"] == "done", job
    assert job["done"] == job["total"] > 0
    return started


def download(api: Api, name: str) -> bytes:
    response = api.http.request("GET", f"/api/backup/download/{name}",
                                headers={"Authorization": f"Bearer {api.token}", "Accept": "application/zip"})
    assert response.status_code == 200, response.body[:300]
    assert response.headers["Content-Type"] == "application/zip"
    return bytes(response.body)


def zip_of(entries: dict[str, bytes | str], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


MANIFEST = {"format": "mycontroller-backup", "version": 1, "createdOn": "2026-01-01T00:00:00.000Z",
            "counts": {"dashboard": 1}}
GOOD_ENTRIES: dict[str, bytes | str] = {"manifest.json": json.dumps(MANIFEST),
                                        "storage/dashboard/0001.json": json.dumps([{"id": "evil", "title": "x"}])}


# --------------------------------------------------------------------------------------------- firmware


def test_upload_raw_computes_checksum_and_size(api: Api) -> None:
    status, body = upload_raw(api, "fw1", FIRMWARE, name="../../etc/passwd")
    assert status == 200, body
    assert body["file"] == {"name": "passwd", "checksum": "sha256:" + hashlib.sha256(FIRMWARE).hexdigest(),
                            "size": len(FIRMWARE)}
    assert api.ok("GET", "/api/firmware/firmware:fw1")["file"]["size"] == len(FIRMWARE)
    assert api.container.blobs.get("firmware/fw1") == FIRMWARE
    assert [e.detail_type for e in api.events if e.detail_type.startswith("firmware.")] == ["firmware.created"]
    page = api.ok("GET", "/api/firmware")
    assert page["count"] == 1 and page["data"][0]["id"] == "fw1"


def test_upload_multipart_with_labels_and_upsert_keeps_file(api: Api) -> None:
    body, content_type = multipart({"description": (None, b"Door sensor"),
                                    "labels": (None, b'{"ms_type_id": 10, "ms_version_id": "2"}'),
                                    "file": ("door.hex", FIRMWARE)})
    status, data, _ = api.call("POST", "/api/firmware/upload/door", raw=body, headers={"Content-Type": content_type})
    assert status == 200, data
    assert data["description"] == "Door sensor"
    assert data["labels"] == {"ms_type_id": "10", "ms_version_id": "2"}
    assert data["file"]["name"] == "door.hex"
    assert data["file"]["checksum"] == "sha256:" + hashlib.sha256(FIRMWARE).hexdigest()
    # an upsert changes description and labels, never the file (nor can it forge a checksum)
    stored = api.ok("POST", "/api/firmware", {"id": "door", "description": "v2", "labels": {"ms_type_id": "11"},
                                              "file": {"name": "x", "checksum": "sha256:00", "size": 1}})
    assert stored["file"] == data["file"] and stored["description"] == "v2"


def test_upload_limits_and_bad_input(api: Api) -> None:
    api.use(dataclasses.replace(api.container.settings, firmware_max_bytes=1000))
    status, body = upload_raw(api, "big", b"x" * 1001)
    assert status == 413, body
    assert upload_raw(api, "small", b"x" * 1000)[0] == 200
    status, body = upload_raw(api, "empty", b"")
    assert status == 400 and body["field"] == "file"
    status, body = upload_raw(api, "bad.id", b"abc")
    assert status == 400, body
    status, body, _ = api.call("POST", "/api/firmware", {"id": "fw", "labels": {"ms_type_id": "65536"}})
    assert status == 400 and "ms_type_id" in body["message"], body
    status, body, _ = api.call("POST", "/api/firmware", {"id": "fw", "labels": {"ms_version_id": "-1"}})
    assert status == 400 and "ms_version_id" in body["message"], body
    form, content_type = multipart({"labels": (None, b'{"ms_type_id": "abc"}'), "file": ("f.hex", b"data")})
    status, body, _ = api.call("POST", "/api/firmware/upload/fw", raw=form, headers={"Content-Type": content_type})
    assert status == 400 and "ms_type_id" in body["message"], body
    form, content_type = multipart({"other": ("f.hex", b"data")})
    status, body, _ = api.call("POST", "/api/firmware/upload/fw", raw=form, headers={"Content-Type": content_type})
    assert status == 400 and body["field"] == "file"
    status, body, _ = api.call("POST", "/api/firmware/upload/fw", raw=b"--x\r\nbroken",
                               headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert status == 400, body
    status, body, _ = api.call("POST", "/api/firmware/upload/fw", raw=b"data", headers={"Content-Type": "text/plain"})
    assert status == 415, body
    assert api.container.repository.get(Kind.FIRMWARE, "fw") is None


def test_delete_firmware_deletes_file(api: Api) -> None:
    upload_raw(api, "fw1", FIRMWARE)
    assert api.ok("DELETE", "/api/firmware", ["fw1"]) == {"deleted": 1, "cascaded": 0}
    assert api.container.blobs.list("firmware/") == []
    assert api.call("GET", "/api/firmware/fw1")[0] == 404
    assert api.call("POST", "/api/firmware/upload/fw1", raw=b"x", auth=False,
                    headers={"Content-Type": "application/octet-stream"})[0] == 401


# --------------------------------------------------------------------------------------------- backup


def test_backup_run_list_download_and_restore_into_emptied_repository(api: Api) -> None:
    seed(api)
    before = snapshot(api)
    started = run_backup(api)
    name = started["name"]
    listed = api.ok("GET", "/api/backup")
    assert [item["name"] for item in listed["data"]] == [name]
    assert listed["data"][0]["size"] > 0 and listed["data"][0]["createdOn"].endswith("Z")

    archive = zipfile.ZipFile(io.BytesIO(download(api, name)))
    names = set(archive.namelist())
    assert {"manifest.json", "storage/field/0001.json", "storage/field/0002.json", "storage/field/0003.json",
            "firmware/fw1"} <= names
    assert len(json.loads(archive.read("storage/field/0001.json"))) == 50
    assert archive.read("firmware/fw1") == FIRMWARE
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["counts"]["field"] == 120 and manifest["counts"]["user"] == 1
    assert manifest["counts"]["service_token"] == 1 and manifest["version"] == 1
    assert b"jwt" not in archive.read("manifest.json").lower()

    # empty everything but the users (the caller must stay logged in to restore), and add what must go away
    repo = api.container.repository
    for kind in BACKUP_KINDS:
        if kind != Kind.USER:
            repo.delete(kind, [r["id"] for r in all_records(repo, kind)])
    api.ok("POST", "/api/dashboard", {"id": "new", "title": "made after the backup"})
    api.container.blobs.delete(["firmware/fw1"])
    api.events.clear()

    started = api.ok("POST", "/api/backup/restore", {"name": name})
    job = api.ok("GET", f"/api/backup/job/{started['jobId']}")
    assert job["state"] == "done" and job["done"] == job["total"], job
    assert job["result"]["written"]["field"] == 120
    assert snapshot(api) == before
    assert api.container.blobs.get("firmware/fw1") == FIRMWARE
    assert [e.detail_type for e in api.events] == ["backup.restored"]
    assert api.ok("GET", "/api/dashboard/home")["title"] == "Home"  # the caller's token still works


def test_restore_from_uploaded_archive_raw_and_multipart(api: Api) -> None:
    seed(api)
    before = snapshot(api)
    data = download(api, run_backup(api)["name"])
    api.ok("DELETE", "/api/gateway", ["gw"])
    api.ok("DELETE", "/api/backup", [api.ok("GET", "/api/backup")["data"][0]["name"]])
    assert api.ok("GET", "/api/backup")["count"] == 0
    status, body, _ = api.call("POST", "/api/backup/restore", raw=data, headers={"Content-Type": "application/zip"})
    assert status == 200 and body["job"]["state"] == "done", body
    assert snapshot(api) == before
    api.ok("DELETE", "/api/dashboard", ["home"])
    form, content_type = multipart({"file": ("backup.zip", data)})
    status, body, _ = api.call("POST", "/api/backup/restore", raw=form, headers={"Content-Type": content_type})
    assert status == 200 and body["job"]["state"] == "done", body
    assert snapshot(api) == before


def test_retention_keeps_the_newest(api: Api) -> None:
    names = [run_backup(api, retentionCount=2)["name"] for _ in range(3)]
    listed = [item["name"] for item in api.ok("GET", "/api/backup")["data"]]
    assert sorted(listed) == sorted(names[1:])
    assert api.call("POST", "/api/backup/run", {"retentionCount": 0})[0] == 400
    assert api.call("DELETE", "/api/backup", ["nope"])[0] == 404
    assert api.call("DELETE", "/api/backup", ["../x"])[0] == 400
    assert api.call("POST", "/api/backup/restore", {"name": "nope"})[0] == 404


def test_job_runs_in_a_thread_with_progress(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    api.container.backups.in_thread = True
    seed(api)
    started = api.ok("POST", "/api/backup/run")
    deadline = time.monotonic() + 30
    job = started["job"]
    while job["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
        job = api.ok("GET", f"/api/backup/job/{started['jobId']}")
    assert job["state"] == "done", job
    counts = job["result"]["counts"]
    assert counts["field"] == 120 and counts["firmware"] == 1
    assert job["done"] == job["total"] == sum(counts.values()) + 1  # every record and the firmware file
    assert api.call("GET", "/api/backup/job/unknown")[0] == 404


@pytest.mark.parametrize("entries, message", [
    ({**GOOD_ENTRIES, "../evil.json": "[]"}, "not allowed"),
    ({**GOOD_ENTRIES, "/etc/passwd": "x"}, "not allowed"),
    ({**GOOD_ENTRIES, "storage/dashboard/../../x.json": "[]"}, "not allowed"),
    ({**GOOD_ENTRIES, "manifest.json": "{not json"}, "manifest"),
    ({**GOOD_ENTRIES, "manifest.json": json.dumps({**MANIFEST, "format": "other"})}, "manifest"),
    ({**GOOD_ENTRIES, "manifest.json": json.dumps({**MANIFEST, "version": 99})}, "version"),
    ({**GOOD_ENTRIES, "manifest.json": json.dumps({**MANIFEST, "counts": {"dashboard": 2}})}, "holds"),
    ({**GOOD_ENTRIES, "storage/secret_key/0001.json": "[]"}, "unknown kind"),
    ({**GOOD_ENTRIES, "manifest.json": json.dumps({**MANIFEST, "counts": {"rootkit": 0, "dashboard": 1}})},
     "unknown kind"),
    ({"storage/dashboard/0001.json": "[]"}, "manifest.json is missing"),
    ({**GOOD_ENTRIES, "storage/node/0001.json": json.dumps([{"id": "no-dots"}]),
      "manifest.json": json.dumps({**MANIFEST, "counts": {"dashboard": 1, "node": 1}})}, "segment"),
    ({**GOOD_ENTRIES, "storage/dashboard/0001.json": json.dumps([{"id": "a"}, {"id": "a"}]),
      "manifest.json": json.dumps({**MANIFEST, "counts": {"dashboard": 2}})}, "twice"),
])
def test_malicious_or_broken_archives_are_refused_and_change_nothing(api: Api, entries: dict[str, Any],
                                                                     message: str) -> None:
    seed(api)
    before = snapshot(api)
    status, body, _ = api.call("POST", "/api/backup/restore", raw=zip_of(entries),
                               headers={"Content-Type": "application/zip"})
    assert status == 400, body
    assert message in body["message"], body
    assert snapshot(api) == before


def test_zip_bomb_and_garbage_are_refused(api: Api) -> None:
    seed(api)
    before = snapshot(api)
    api.use(dataclasses.replace(api.container.settings, backup_max_bytes=2_000_000))
    api.container.backups.in_thread = False
    bomb = zip_of({**GOOD_ENTRIES, "firmware/bomb": b"\0" * 3_000_000})
    assert len(bomb) < 100_000
    status, body, _ = api.call("POST", "/api/backup/restore", raw=bomb, headers={"Content-Type": "application/zip"})
    assert status == 400 and "inflate" in body["message"], body
    # an entry that declares a small size but inflates beyond it: the declared size is patched down
    honest = zip_of({**GOOD_ENTRIES, "firmware/liar": b"\0" * 500_000}, compression=zipfile.ZIP_STORED)
    liar = _patch_declared_size(honest, "firmware/liar", 10)
    status, body, _ = api.call("POST", "/api/backup/restore", raw=liar, headers={"Content-Type": "application/zip"})
    assert status == 400, body
    status, body, _ = api.call("POST", "/api/backup/restore", raw=b"PK\x03\x04 not really",
                               headers={"Content-Type": "application/zip"})
    assert status == 400 and "zip" in body["message"], body
    assert snapshot(api) == before


def _patch_declared_size(data: bytes, name: str, size: int) -> bytes:
    """Rewrite an entry's uncompressed size in its local header and its central directory record."""
    import struct

    out = bytearray(data)
    encoded = name.encode()
    # (signature, offset of the name length, of the name, of the uncompressed size): local header, central record
    for signature, name_len_at, name_at, size_at in ((b"PK\x03\x04", 26, 30, 22), (b"PK\x01\x02", 28, 46, 24)):
        position = 0
        while (position := out.find(signature, position)) >= 0:
            name_len = struct.unpack_from("<H", out, position + name_len_at)[0]
            if bytes(out[position + name_at:position + name_at + name_len]) == encoded:
                struct.pack_into("<I", out, position + size_at, size)
            position += 4
    return bytes(out)


def test_secrets_stay_encrypted_and_restored_schedules_are_rearmed(api: Api) -> None:
    from chalicelib.adapters.schedules_local import LocalScheduleRegistry

    api.use(schedules=LocalScheduleRegistry())
    api.container.backups.in_thread = False
    api.ok("POST", "/api/handler", {"id": "h1", "type": "telegram",
                                    "spec": {"token": "tg-secret-token", "chatIds": ["42"]}})
    api.ok("POST", "/api/schedule", {"id": "s1", "type": "cron", "spec": {"cronExpression": "0 30 7 * * *"},
                                     "timezone": "Europe/Paris"})
    assert any("s1" in name for name in api.container.schedules.names())
    archive = zipfile.ZipFile(io.BytesIO(download(api, run_backup(api)["name"])))
    text = b"".join(archive.read(name) for name in archive.namelist())
    assert b"tg-secret-token" not in text  # encrypted as stored
    assert b'"token"' in archive.read("storage/handler/0001.json")
    api.ok("DELETE", "/api/schedule", ["s1"])
    api.ok("DELETE", "/api/handler", ["h1"])
    assert not any("s1" in name for name in api.container.schedules.names())
    name = api.ok("GET", "/api/backup")["data"][0]["name"]
    job = api.ok("POST", "/api/backup/restore", {"name": name})["job"]
    assert job["state"] == "done", job
    assert job["result"]["scheduler"]["schedules"] == 1
    assert any("s1" in n for n in api.container.schedules.names())
    handler = api.container.repository.get(Kind.HANDLER, "h1")
    assert handler is not None and "tg-secret-token" not in json.dumps(handler)


def test_job_state_outlives_the_process_memory_and_old_states_go(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another Lambda container answers the poll from the blob store; states older than a day are removed."""
    blobs = api.container.blobs
    blobs.put("jobs/0123abcd.json", b'{"id": "0123abcd", "state": "done"}')
    monkeypatch.setattr(backup_service, "JOB_STATE_TTL_MS", -60_000)  # everything saved so far counts as old
    started = run_backup(api)
    assert all(info.key != "jobs/0123abcd.json" for info in blobs.list("jobs/"))
    monkeypatch.setattr(api.container.backups, "_jobs", {})  # as another process
    job = api.ok("GET", f"/api/backup/job/{started['jobId']}")
    assert job["state"] == "done" and job["done"] == job["total"] > 0
    assert api.call("GET", "/api/backup/job/..%2F..%2Fx")[0] == 404


def test_a_restore_never_revives_revoked_sessions(api: Api) -> None:
    """A session ended since the backup (a password changed) stays ended after restoring it; a password the restore
    puts back ends the sessions opened under the other one; the admin restoring keeps theirs."""
    api.ok("POST", "/api/user", {"username": "bob", "password": "Copper-Kettle-Ridge-31", "role": "viewer"})
    before_backup = api.login("bob", "Copper-Kettle-Ridge-31")
    name = run_backup(api)["name"]
    api.ok("POST", "/api/user", {"id": "bob", "username": "bob", "password": "Silver-Maple-Harbor-62"})
    assert api.call("GET", "/api/user/profile", auth=before_backup)[0] == 401  # revoked by the change
    after_change = api.login("bob", "Silver-Maple-Harbor-62")
    assert api.ok("GET", "/api/user/profile", auth=after_change)["username"] == "bob"

    job = api.ok("POST", "/api/backup/restore", {"name": name})
    assert api.ok("GET", f"/api/backup/job/{job['jobId']}")["state"] == "done"
    assert api.call("GET", "/api/user/profile", auth=before_backup)[0] == 401  # still revoked
    assert api.call("GET", "/api/user/profile", auth=after_change)[0] == 401  # its password is not bob's any more
    assert api.ok("GET", "/api/user/profile", auth=api.login("bob", "Copper-Kettle-Ridge-31"))["role"] == "viewer"
    assert api.ok("GET", "/api/user/profile")["username"] == "admin"  # the caller's own session goes on
