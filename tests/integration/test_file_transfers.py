"""Files past Lambda's payload limit: firmware uploads, backup downloads and restores through presigned S3 URLs
(moto), and the local stack's direct routes, through the API.

With the local blob store the API offers ``mode: direct`` and carries the bytes itself, as before. With S3 it offers
a presigned form; the test posts the file to it over HTTP as a browser would (moto answers), then makes the
``then`` call the offer names, and the API takes the staged file: checksum and size computed from what was stored,
limits checked again, the staged copy removed. Downloads answer the archive's URL (JSON to a client that accepts
JSON, a 302 to anyone else). Files larger than a Lambda payload (5 MB here) go through, while a direct body over
``DIRECT_UPLOAD_MAX_BYTES`` is a 413.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from typing import Any

import pytest

from tests.integration.api_helpers import Api

FIRMWARE = bytes(range(256)) * 64
EITHER = {"Accept": "application/json, application/zip"}
"""What the console accepts: the archive's URL where there is one, else the archive."""
_buckets = itertools.count(1)


@pytest.fixture(autouse=True)
def synchronous_jobs(api: Api) -> None:
    """Jobs run within the request, as in Lambda."""
    api.container.backups.in_thread = False


@pytest.fixture
def s3_api(aws_mock: None, api: Api) -> Api:
    """The API over an S3 blob store (moto) with the deployment's direct limit: presigned transfers."""
    import boto3

    from chalicelib.adapters.blob_s3 import S3BlobStore

    client = boto3.client("s3", region_name="us-east-1")
    bucket = f"mc-transfers-{next(_buckets)}"
    client.create_bucket(Bucket=bucket)
    settings = dataclasses.replace(api.container.settings, direct_upload_max_bytes=4_000_000)
    api.use(settings, rebuilt=("upload_blobs",), blobs=S3BlobStore(bucket, client=client))
    api.container.backups.in_thread = False
    return api


def post_form(offer: dict[str, Any], data: bytes, filename: str = "file.bin") -> None:
    """What a browser does with a presigned offer: POST the fields, then the file."""
    import requests

    upload = offer["upload"]
    assert upload["method"] == "POST"
    answer = requests.post(upload["url"], data=upload["fields"], files={upload["fileField"]: (filename, data)},
                           timeout=10)
    assert answer.status_code in (200, 201, 204), answer.text


def then(api: Api, offer: dict[str, Any], **extra: Any) -> tuple[int, Any]:
    """The follow-up call an offer names, with ``extra`` merged into its body."""
    step = offer["then"]
    status, body, _ = api.call(step["method"], step["path"], {**step["body"], **extra})
    return status, body


def staged(api: Api) -> list[str]:
    return [info.key for info in api.container.blobs.list("uploads/")]


def run_backup(api: Api) -> str:
    started = api.ok("POST", "/api/backup/run", {})
    assert api.ok("GET", f"/api/backup/job/{started['jobId']}")["state"] == "done"
    return str(started["name"])


# --------------------------------------------------------------------------------------------- local: direct


def test_the_local_store_offers_direct_uploads(api: Api) -> None:
    offer = api.ok("POST", "/api/firmware/upload/fw1", {"name": "node.hex", "size": len(FIRMWARE)})

    assert offer == {"mode": "direct", "maxBytes": api.container.settings.firmware_max_bytes,
                     "then": {"method": "POST", "path": "/api/firmware/upload/fw1",
                              "contentTypes": ["application/octet-stream", "multipart/form-data"]}}
    status, body, _ = api.call("POST", offer["then"]["path"], raw=FIRMWARE,
                               headers={"Content-Type": "application/octet-stream"}, name="node.hex")
    assert status == 200 and body["file"]["checksum"] == "sha256:" + hashlib.sha256(FIRMWARE).hexdigest()
    backup_offer = api.ok("POST", "/api/backup/upload", {"name": "b.zip", "size": 10})
    assert backup_offer["mode"] == "direct" and backup_offer["then"]["path"] == "/api/backup/restore"
    assert "application/zip" in backup_offer["then"]["contentTypes"]


def test_offers_refuse_what_cannot_be_stored(api: Api) -> None:
    too_big = api.container.settings.firmware_max_bytes + 1
    status, body, _ = api.call("POST", "/api/firmware/upload/fw1", {"name": "x", "size": too_big})
    assert (status, body["field"]) == (413, "size")
    status, body, _ = api.call("POST", "/api/firmware/upload/fw1", {"name": "x", "size": 0})
    assert (status, body["field"]) == (400, "size")
    status, body, _ = api.call("POST", "/api/firmware/upload/bad%20id", {"name": "x", "size": 10})
    assert (status, body["field"]) == (400, "id")
    status, body, _ = api.call("POST", "/api/backup/upload",
                               {"size": api.container.settings.backup_max_bytes + 1})
    assert (status, body["field"]) == (413, "size")
    status, body, _ = api.call("POST", "/api/firmware/upload/fw1", ["not", "an", "object"])
    assert status == 400


def test_the_local_store_serves_downloads_itself_whatever_the_client_accepts(api: Api) -> None:
    name = run_backup(api)
    response = api.http.request("GET", f"/api/backup/download/{name}",
                                headers={"Authorization": f"Bearer {api.token}", **EITHER})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/zip"
    assert bytes(response.body) == api.container.blobs.get(f"backups/{name}.zip")


def test_an_upload_id_nobody_sent_is_not_found(api: Api) -> None:
    status, body, _ = api.call("POST", "/api/backup/restore", {"uploadId": "0" * 32})
    assert (status, body["field"]) == (404, "uploadId")
    status, body, _ = api.call("POST", "/api/backup/restore", {"uploadId": "../../backups/x"})
    assert (status, body["field"]) == (400, "uploadId")
    status, body, _ = api.call("POST", "/api/firmware/upload/fw1", {"uploaded": True, "uploadId": "f" * 32})
    assert (status, body["field"]) == (404, "uploadId")


# --------------------------------------------------------------------------------------------- S3: presigned


def test_firmware_goes_through_a_presigned_upload_and_the_api_computes_the_checksum(s3_api: Api) -> None:
    api = s3_api
    big = FIRMWARE * 330  # 5.4 MB: more than a Lambda payload
    offer = api.ok("POST", "/api/firmware/upload/fw:big", {"name": "big.hex", "size": len(big)})

    assert offer["mode"] == "presigned" and offer["maxBytes"] == api.container.settings.firmware_max_bytes
    assert offer["expiresIn"] == api.container.settings.presign_expires_s
    assert offer["then"] == {"method": "POST", "path": "/api/firmware/upload/fw%3Abig",
                             "body": {"uploaded": True, "name": "big.hex", "uploadId": offer["uploadId"]}}
    post_form(offer, big, "big.hex")
    assert staged(api) == [f"uploads/firmware/fw:big/{offer['uploadId']}"]

    status, record = then(api, offer, description="Big one", labels={"ms_type_id": "7"})

    assert status == 200, record
    assert record["file"] == {"name": "big.hex", "checksum": "sha256:" + hashlib.sha256(big).hexdigest(),
                              "size": len(big)}
    assert (record["description"], record["labels"]) == ("Big one", {"ms_type_id": "7"})
    assert api.container.blobs.get("firmware/fw:big") == big
    assert staged(api) == []
    assert [e.detail_type for e in api.events if e.detail_type.startswith("firmware.")] == ["firmware.created"]
    status, body = then(api, offer)  # the staged file was used up
    assert (status, body["field"]) == (404, "uploadId")


def test_a_staged_firmware_over_the_limit_or_with_bad_labels_is_refused(s3_api: Api) -> None:
    api = s3_api
    api.use(dataclasses.replace(api.container.settings, firmware_max_bytes=1000))
    offer = api.ok("POST", "/api/firmware/upload/fw1", {"name": "a.hex", "size": 900})
    post_form(offer, b"x" * 1001)  # S3 itself refuses this (the form's content-length-range); moto does not
    status, body = then(api, offer)
    assert (status, body["field"]) == (413, "uploadId")
    assert staged(api) == [] and api.call("GET", "/api/firmware/fw1")[0] == 404

    offer = api.ok("POST", "/api/firmware/upload/fw1", {"name": "a.hex", "size": 900})
    post_form(offer, b"y" * 900)
    status, body = then(api, offer, labels={"ms_type_id": "70000"})
    assert (status, body["field"]) == (400, "labels") and "ms_type_id" in body["message"]
    assert len(staged(api)) == 1  # kept: the same upload can be finalised with good labels
    status, record = then(api, offer, labels={"ms_type_id": "7"})
    assert status == 200 and record["file"]["size"] == 900 and staged(api) == []


def test_a_direct_body_over_the_direct_limit_is_413_and_an_offer_takes_it(s3_api: Api) -> None:
    api = s3_api
    api.use(dataclasses.replace(api.container.settings, direct_upload_max_bytes=1000))
    status, body, _ = api.call("POST", "/api/firmware/upload/fw1", raw=b"z" * 1001,
                               headers={"Content-Type": "application/octet-stream"})
    assert (status, body["field"]) == (413, "body")
    offer = api.ok("POST", "/api/firmware/upload/fw1", {"name": "z.bin", "size": 1001})
    post_form(offer, b"z" * 1001)
    assert then(api, offer)[0] == 200
    status, body, _ = api.call("POST", "/api/backup/restore", raw=b"PK" + b"0" * 1000,
                               headers={"Content-Type": "application/zip"})
    assert (status, body["field"]) == (413, "body")


def test_a_backup_downloads_through_its_url(s3_api: Api) -> None:
    import requests

    api = s3_api
    name = run_backup(api)
    status, link, _ = api.call("GET", f"/api/backup/download/{name}", headers=EITHER)
    assert status == 200

    assert set(link) == {"url", "expiresIn", "filename"} and link["filename"] == f"{name}.zip"
    fetched = requests.get(link["url"], timeout=10)
    assert fetched.status_code == 200
    assert fetched.content == api.container.blobs.get(f"backups/{name}.zip")
    assert fetched.headers["Content-Disposition"] == f'attachment; filename="{name}.zip"'
    response = api.http.request("GET", f"/api/backup/download/{name}",
                                headers={"Authorization": f"Bearer {api.token}", "Accept": "*/*"})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("https://")
    status, body, _ = api.call("GET", "/api/backup/download/absent", headers=EITHER)
    assert (status, body["field"]) == (404, "name")


def test_a_backup_restores_from_a_presigned_upload(s3_api: Api) -> None:
    api = s3_api
    api.ok("POST", "/api/dashboard", {"id": "home", "title": "Home"})
    name = run_backup(api)
    archive = api.container.blobs.get(f"backups/{name}.zip")
    api.ok("DELETE", "/api/dashboard", ["home"])

    offer = api.ok("POST", "/api/backup/upload", {"name": f"{name}.zip", "size": len(archive)})
    assert offer["mode"] == "presigned"
    assert offer["then"] == {"method": "POST", "path": "/api/backup/restore",
                             "body": {"uploadId": offer["uploadId"]}}
    post_form(offer, archive, f"{name}.zip")
    status, started = then(api, offer)

    assert status == 200 and started["job"]["state"] == "done", started
    assert api.ok("GET", "/api/dashboard/home")["title"] == "Home"
    assert staged(api) == []


def test_a_bad_archive_sent_through_an_upload_changes_nothing(s3_api: Api) -> None:
    api = s3_api
    api.ok("POST", "/api/dashboard", {"id": "home", "title": "Home"})
    offer = api.ok("POST", "/api/backup/upload", {"name": "junk.zip", "size": 12})
    post_form(offer, b"not a zip at all")

    status, body = then(api, offer)

    assert status == 400, body
    assert api.ok("GET", "/api/dashboard/home")["title"] == "Home"
    assert staged(api) == []


def test_uploads_are_staged_in_a_bucket_of_their_own(aws_mock: None, api: Api) -> None:
    """The deployment's shape: clients post to ``UPLOAD_BUCKET`` (CORS for the console, expiring), the API keeps
    files in ``BLOB_BUCKET`` (versioned, retained)."""
    import boto3

    from chalicelib.adapters.blob_s3 import S3BlobStore

    client = boto3.client("s3", region_name="us-east-1")
    kept, staged_in = f"mc-kept-{next(_buckets)}", f"mc-staged-{next(_buckets)}"
    for bucket in (kept, staged_in):
        client.create_bucket(Bucket=bucket)
    settings = dataclasses.replace(api.container.settings, blobs="s3", blob_bucket=kept, upload_bucket=staged_in)
    api.use(settings, rebuilt=("upload_blobs",), blobs=S3BlobStore(kept, client=client))

    offer = api.ok("POST", "/api/firmware/upload/fw1", {"name": "a.hex", "size": 3})
    assert staged_in in offer["upload"]["url"]
    post_form(offer, b"abc")
    assert then(api, offer)[0] == 200

    assert client.get_object(Bucket=kept, Key="firmware/fw1")["Body"].read() == b"abc"
    assert client.list_objects_v2(Bucket=staged_in).get("KeyCount") == 0
