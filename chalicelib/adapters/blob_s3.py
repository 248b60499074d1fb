"""Blob store in an S3 bucket (``BLOB_BUCKET``): firmware files and backups in AWS.

A ``PutObject`` is atomic by nature (readers see the old object or the new one). The bucket is private and
encrypted (``infra/``); objects are written with ``AES256`` server-side encryption all the same.

Files larger than a Lambda payload go between the client and the bucket through presigned URLs, signed with the
function's own credentials (so its role needs ``s3:PutObject``/``s3:GetObject`` on those keys; the URL can do no
more than the role): uploads are a presigned ``POST`` form whose policy pins the key, the encryption and a
``content-length-range`` (S3 itself refuses a larger file, which a presigned ``PUT`` could not), downloads a
presigned ``GET`` that names the file (``Content-Disposition: attachment``). Signatures are SigV4, URLs the
bucket's regional endpoint (a browser cannot follow S3's cross-region redirects).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core.ports import BlobInfo, BlobNotFound, PresignedUpload, check_blob_key

DELETE_BATCH = 1000
ENCRYPTION = "AES256"


class S3BlobStore:
    def __init__(self, bucket: str, *, region: str | None = None, client: Any = None, prefix: str = "") -> None:
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client("s3", region_name=region, config=Config(signature_version="s3v4"))
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + check_blob_key(key), Body=data,
                               ContentType=content_type, ServerSideEncryption=ENCRYPTION)

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

    def info(self, key: str) -> BlobInfo:
        from botocore.exceptions import ClientError

        try:
            answer = self.client.head_object(Bucket=self.bucket, Key=self.prefix + check_blob_key(key))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise BlobNotFound(key) from None
            raise
        modified = answer.get("LastModified")
        return BlobInfo(key, int(answer.get("ContentLength", 0)),
                        int(modified.timestamp() * 1000) if modified is not None else 0)

    def presign_upload(self, key: str, *, max_bytes: int, expires_s: int) -> PresignedUpload | None:
        form = self.client.generate_presigned_post(
            Bucket=self.bucket, Key=self.prefix + check_blob_key(key),
            Fields={"x-amz-server-side-encryption": ENCRYPTION},
            Conditions=[{"x-amz-server-side-encryption": ENCRYPTION}, ["content-length-range", 1, int(max_bytes)]],
            ExpiresIn=int(expires_s))
        return PresignedUpload(url=str(form["url"]), fields={str(k): str(v) for k, v in form["fields"].items()},
                               max_bytes=int(max_bytes), expires_s=int(expires_s))

    def presign_download(self, key: str, *, expires_s: int, filename: str,
                         content_type: str = "application/octet-stream") -> str | None:
        safe_name = "".join(ch for ch in filename if ch.isprintable() and ch not in '"\\') or "download"
        url: str = self.client.generate_presigned_url(
            "get_object", ExpiresIn=int(expires_s),
            Params={"Bucket": self.bucket, "Key": self.prefix + check_blob_key(key),
                    "ResponseContentDisposition": f'attachment; filename="{safe_name}"',
                    "ResponseContentType": content_type})
        return url
