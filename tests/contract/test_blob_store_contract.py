"""The blob store contract: bytes by key (firmware images, backup archives), a local directory or S3.

Values round-trip byte for byte; a missing key is ``BlobNotFound`` (also a ``KeyError``), never an empty value;
listing is by plain key prefix, in key order, with sizes and modification times, and ``info`` gives the same for
one key without reading it; keys that could escape the store's root are refused the same way by every adapter.

Presigned URLs: a store either has none (``None`` from both presign operations: the API carries the bytes) or its
URLs work without the API: a client posting the upload form stores the file under the key, and the download URL
answers the bytes as a named attachment. The URLs are exercised over HTTP (``requests``; moto answers S3's).
"""

from __future__ import annotations

import time

import pytest

from chalicelib.core.ports import BlobInfo, BlobNotFound, BlobStore

ALL_BYTES = bytes(range(256))


@pytest.mark.parametrize("data", [b"", b"\x00", ALL_BYTES, ALL_BYTES * 4096 + b"tail"],
                         ids=["empty", "nul", "all-bytes", "1-MiB"])
def test_put_then_get_returns_the_same_bytes(blobs: BlobStore, data: bytes) -> None:
    blobs.put("firmware/image.bin", data)

    assert blobs.get("firmware/image.bin") == data


def test_put_replaces_the_value(blobs: BlobStore) -> None:
    blobs.put("backups/a.zip", b"first version", "application/zip")
    blobs.put("backups/a.zip", b"second")

    assert blobs.get("backups/a.zip") == b"second"
    assert [(info.key, info.size) for info in blobs.list("backups/")] == [("backups/a.zip", 6)]


def test_a_missing_key_is_blob_not_found(blobs: BlobStore) -> None:
    blobs.put("firmware/present", b"x")

    with pytest.raises(BlobNotFound) as missing:
        blobs.get("firmware/absent")
    assert isinstance(missing.value, KeyError)
    with pytest.raises(BlobNotFound):
        blobs.get("firmware")  # a "directory" of other keys is not a blob
    with pytest.raises(BlobNotFound):
        blobs.get("firmware/present/below")


def test_delete_removes_the_keys_and_ignores_missing_ones(blobs: BlobStore) -> None:
    for key in ("firmware/a", "firmware/b", "firmware/c"):
        blobs.put(key, key.encode())

    blobs.delete(["firmware/a", "firmware/c", "firmware/never-was"])
    blobs.delete([])
    blobs.delete(["firmware/a"])

    assert blobs.get("firmware/b") == b"firmware/b"
    for gone in ("firmware/a", "firmware/c"):
        with pytest.raises(BlobNotFound):
            blobs.get(gone)
    assert [info.key for info in blobs.list("")] == ["firmware/b"]


def test_list_is_by_key_prefix_in_key_order(blobs: BlobStore) -> None:
    before_ms = int(time.time() * 1000) - 2_000
    sizes = {"firmware/b": 2, "firmware/a1": 11, "firmware/a/nested": 7, "firmwares/x": 1, "backups/z.zip": 3}
    for key, size in sizes.items():
        blobs.put(key, b"." * size)
    after_ms = int(time.time() * 1000) + 2_000

    assert [(info.key, info.size) for info in blobs.list("firmware/")] == [
        ("firmware/a/nested", 7), ("firmware/a1", 11), ("firmware/b", 2)]
    assert [info.key for info in blobs.list("firmware/a")] == ["firmware/a/nested", "firmware/a1"]
    assert [info.key for info in blobs.list("firmware")] == ["firmware/a/nested", "firmware/a1", "firmware/b",
                                                             "firmwares/x"]
    everything = blobs.list("")
    assert [info.key for info in everything] == sorted(sizes)
    assert all(before_ms <= info.modified_ms <= after_ms for info in everything)
    assert blobs.list("nothing/") == []


def test_an_empty_store_lists_nothing(blobs: BlobStore) -> None:
    assert blobs.list("") == []
    assert blobs.list("firmware/") == []


@pytest.mark.parametrize("key", ["", "/etc/passwd", "../x", "a/../../x", "a//b", "a/./b", "./a", "a/", "a\\b",
                                 "a b", "a\x00b", "é", "x" * 513])
def test_keys_that_could_leave_the_store_are_refused(blobs: BlobStore, key: str) -> None:
    with pytest.raises(ValueError):
        blobs.put(key, b"x")
    with pytest.raises(ValueError):
        blobs.get(key)
    with pytest.raises(ValueError):
        blobs.delete([key])
    with pytest.raises(ValueError):
        blobs.info(key)
    with pytest.raises(ValueError):
        blobs.presign_upload(key, max_bytes=10, expires_s=60)
    with pytest.raises(ValueError):
        blobs.presign_download(key, expires_s=60, filename="x")
    assert blobs.list("") == []


def test_keys_with_every_allowed_character_round_trip(blobs: BlobStore) -> None:
    key = "backups/2024-01-01T00:00:00Z_v1.2~rc@home.zip"

    blobs.put(key, b"zip")

    assert blobs.get(key) == b"zip"
    assert [info.key for info in blobs.list("backups/")] == [key]


def test_info_gives_size_and_time_of_one_blob(blobs: BlobStore) -> None:
    before_ms = int(time.time() * 1000) - 2_000
    blobs.put("uploads/backup/one", b"12345")
    blobs.put("uploads/backup/one-more", b"x")

    info = blobs.info("uploads/backup/one")

    assert isinstance(info, BlobInfo)
    assert (info.key, info.size) == ("uploads/backup/one", 5)
    assert before_ms <= info.modified_ms <= int(time.time() * 1000) + 2_000
    assert info == next(item for item in blobs.list("uploads/") if item.key == "uploads/backup/one")


def test_info_of_a_missing_key_is_blob_not_found(blobs: BlobStore) -> None:
    blobs.put("firmware/present/below", b"x")

    for missing in ("firmware/absent", "firmware/present", "firmware"):
        with pytest.raises(BlobNotFound):
            blobs.info(missing)


def test_presigned_urls_carry_files_past_the_api_or_are_not_offered(blobs: BlobStore) -> None:
    import requests

    form = blobs.presign_upload("uploads/firmware/fw1/abc", max_bytes=1_000_000, expires_s=120)
    url = blobs.presign_download("uploads/firmware/fw1/abc", expires_s=120, filename="node.hex",
                                 content_type="text/plain")
    assert (form is None) == (url is None), "a store has presigned URLs for both ways or for neither"
    if form is None:
        return
    assert (form.max_bytes, form.expires_s, form.file_field) == (1_000_000, 120, "file")
    assert form.url.startswith("https://") and form.fields
    data = ALL_BYTES * 40

    sent = requests.post(form.url, data=form.fields, files={form.file_field: ("node.hex", data)}, timeout=10)

    assert sent.status_code in (200, 201, 204), sent.text
    assert blobs.get("uploads/firmware/fw1/abc") == data
    assert blobs.info("uploads/firmware/fw1/abc").size == len(data)
    assert url is not None and url.startswith("https://")
    fetched = requests.get(url, timeout=10)
    assert fetched.status_code == 200
    assert fetched.content == data
    assert fetched.headers["Content-Disposition"] == 'attachment; filename="node.hex"'
    assert fetched.headers["Content-Type"] == "text/plain"


def test_a_presigned_upload_replaces_what_the_key_held(blobs: BlobStore) -> None:
    import requests

    blobs.put("uploads/backup/abc", b"old value")
    form = blobs.presign_upload("uploads/backup/abc", max_bytes=100, expires_s=60)
    if form is None:
        assert blobs.presign_download("uploads/backup/abc", expires_s=60, filename="a.zip") is None
        return

    requests.post(form.url, data=form.fields, files={form.file_field: ("a.zip", b"new")}, timeout=10)

    assert blobs.get("uploads/backup/abc") == b"new"
    assert [info.key for info in blobs.list("uploads/")] == ["uploads/backup/abc"]
