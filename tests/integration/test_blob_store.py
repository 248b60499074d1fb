"""The blob store port, one contract for both adapters: the local directory and S3 (moto). Put, get, replace,
list by prefix, delete, a missing key, keys that would escape; plus the composition root's ``BLOBS`` setting."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.blob_local import LocalBlobStore
from chalicelib.bootstrap import Container
from chalicelib.core.ports import BlobNotFound, BlobStore
from chalicelib.settings import Settings, SettingsError


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "local":
        yield LocalBlobStore(tmp_path / "blobs")
        return
    request.getfixturevalue("aws_mock")
    import boto3

    from chalicelib.adapters.blob_s3 import S3BlobStore

    client = boto3.client("s3", region_name="us-east-1")
    bucket = f"mc-blobs-{tmp_path.name.lower().replace('_', '-')[:40]}"
    client.create_bucket(Bucket=bucket)
    yield S3BlobStore(bucket, client=client, prefix="dev")


def test_put_get_replace_list_delete(store: BlobStore) -> None:
    big = bytes(range(256)) * 8192  # 2 MiB
    store.put("firmware/a", b"one")
    store.put("firmware/a", b"two")
    store.put("firmware/b", big)
    store.put("backups/x.zip", b"PK", "application/zip")
    assert store.get("firmware/a") == b"two"
    assert store.get("firmware/b") == big
    listed = store.list("firmware/")
    assert [(info.key, info.size) for info in listed] == [("firmware/a", 3), ("firmware/b", len(big))]
    assert all(info.modified_ms > 1_600_000_000_000 for info in listed)
    assert [info.key for info in store.list("")] == ["backups/x.zip", "firmware/a", "firmware/b"]
    store.delete(["firmware/a", "firmware/missing"])
    with pytest.raises(BlobNotFound):
        store.get("firmware/a")
    assert [info.key for info in store.list("firmware/")] == ["firmware/b"]


@pytest.mark.parametrize("key", ["../x", "a/../../x", "/etc/passwd", "", "a//b", "a/./b", "a\\b", "a b"])
def test_keys_that_could_escape_are_refused(store: BlobStore, key: str) -> None:
    with pytest.raises(ValueError):
        store.put(key, b"x")
    with pytest.raises(ValueError):
        store.get(key)


def test_local_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.put("backups/a.zip", b"x" * 1000)
    assert sorted(p.name for p in (tmp_path / "backups").iterdir()) == ["a.zip"]
    assert LocalBlobStore(tmp_path / "nothing").list("") == []


def test_settings_choose_the_adapter(tmp_path: Path) -> None:
    env: dict[str, Any] = {"DATA_DIR": str(tmp_path)}
    settings = Settings.from_env(env)
    assert settings.blobs == "local"
    assert isinstance(Container(settings).blobs, LocalBlobStore)
    with pytest.raises(SettingsError, match="BLOB_BUCKET"):
        Settings.from_env({**env, "BLOBS": "s3"})
    assert Settings.from_env({**env, "BLOBS": "s3", "BLOB_BUCKET": "b"}).blob_bucket == "b"
    with pytest.raises(SettingsError, match="BLOBS"):
        Settings.from_env({**env, "BLOBS": "ftp"})
