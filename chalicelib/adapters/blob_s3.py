"""Blob store in an S3 bucket (``BLOB_BUCKET``): firmware files and backups in AWS.

A ``PutObject`` is atomic by nature (readers see the old object or the new one). The bucket is private and
encrypted (``infra/``); objects are written with ``AES256`` server-side encryption all the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core.ports import BlobInfo, BlobNotFound, check_blob_key

DELETE_BATCH = 1000


class S3BlobStore:
    def __init__(self, bucket: str, *, region: str | None = None, client: Any = None, prefix: str = "") -> None:
        if client is None:
            import boto3

            client = boto3.client("s3", region_name=region)
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + check_blob_key(key), Body=data,
                               ContentType=content_type, ServerSideEncryption="AES256")

    def get(self, key: str) -> bytes:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.prefix + check_blob_key(key))
        except self.client.exceptions.NoSuchKey:
            raise BlobNotFound(key) from None
        body: bytes = answer["Body"].read()
        return body

    def delete(self, keys: Sequence[str]) -> None:
        objects = [{"Key": self.prefix + check_blob_key(key)} for key in keys]
        for start in range(0, len(objects), DELETE_BATCH):
            answer = self.client.delete_objects(Bucket=self.bucket,
                                                Delete={"Objects": objects[start:start + DELETE_BATCH],
                                                        "Quiet": True})
            errors = answer.get("Errors") or []
            if errors:
                raise OSError(f"S3 delete failed for {len(errors)} object(s): {errors[0].get('Code')}")

    def list(self, prefix: str) -> list[BlobInfo]:
        found: list[BlobInfo] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            for item in page.get("Contents", []):
                key = str(item["Key"])[len(self.prefix):]
                modified = item.get("LastModified")
                found.append(BlobInfo(key, int(item.get("Size", 0)),
                                      int(modified.timestamp() * 1000) if modified is not None else 0))
        return sorted(found, key=lambda info: info.key)
