"""Files past Lambda's payload limit (#14 item 8): the upload bucket and what the API function needs for presigned
transfers (``chalicelib/services/uploads.py``).

A Lambda function takes and answers at most 6 MB (base64 included), so the API hands out short-lived presigned URLs
instead of carrying firmware images and backup archives: clients post files to ``UploadBucket`` with a form the
API signed, then the API takes them (checks, checksum) into ``BlobBucket``; downloads are presigned ``GET`` URLs of
``BlobBucket`` that the browser simply follows (a navigation needs no CORS).

Why a bucket of its own beside ``BlobBucket`` (versioned, retained, data): a browser posting a form to S3 from the
console's origin needs CORS on that bucket; a staged file is transient, so no versions are kept, a lifecycle rule
removes what nobody finalised a day later, and the bucket is deleted with the stack (``python -m infra.console
empty`` empties it first).

CORS allows any origin by default (``UploadAllowedOrigins``): the bucket takes nothing but forms the API signed for
a logged-in user (one key, a size range, 15 minutes), public access stays blocked, and CORS only lets a page read
S3's answer. Naming the console's own origin (its CloudFront domain) is not possible in the template, which would be
circular (distribution → REST API → API function → this bucket); a custom domain can be named in the parameter.

The API function gets ``UPLOAD_BUCKET``, ``DIRECT_UPLOAD_MAX_BYTES`` (4 MB: what it still takes in a body itself)
and the file limits back at their defaults (``FIRMWARE_MAX_BYTES`` 16 MiB, ``BACKUP_MAX_BYTES`` 50 MiB, bounded now
by the function's memory and the API's 29 s rather than by the payload), and ``API_FUNCTION_STATEMENTS``.
"""

from __future__ import annotations

from typing import Any, Final

from chalicelib.services.uploads import UPLOAD_PREFIX
from chalicelib.settings import DEFAULT_BACKUP_MAX_BYTES, DEFAULT_FIRMWARE_MAX_BYTES

from .buckets import bucket_policy, private_bucket
from .fragments import Fragment

UPLOAD_BUCKET: Final = "UploadBucket"
API_FUNCTION: Final = "APIHandler"
DIRECT_UPLOAD_MAX_BYTES: Final = 4_000_000
"""Lambda's request payload is 6 MB, base64 included: 4 MB is 5.3 MB encoded."""
STAGED_DAYS: Final = 1
ALLOWED_ORIGINS: Final = "UploadAllowedOrigins"
"""The parameter naming the origins whose pages may post to the bucket (CORS); ``*`` by default."""
UPLOAD_OBJECTS: Final = f"${{{UPLOAD_BUCKET}.Arn}}/{UPLOAD_PREFIX}*"

API_FUNCTION_STATEMENTS: Final[list[dict[str, Any]]] = [
    {"Sid": "StagedUploads", "Effect": "Allow", "Action": ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
     "Resource": [{"Fn::Sub": UPLOAD_OBJECTS}]},
    {"Sid": "StagedUploadsList", "Effect": "Allow", "Action": ["s3:ListBucket"],
     "Resource": [{"Fn::GetAtt": [UPLOAD_BUCKET, "Arn"]}]},
]
"""The API function's calls for presigned transfers, beside its ``BlobBucket`` grant (``infra/iam.py``'s
``blobs``: ``s3:GetObject`` on ``backups/*`` is what a presigned download acts with):

* ``s3:PutObject`` on ``uploads/*``: a presigned form acts with its signer's permissions, so the function that
  signs must be allowed the upload it hands out (the form itself pins the key and the size);
* ``s3:GetObject`` (also ``HeadObject``) and ``s3:DeleteObject`` on ``uploads/*``: taking and discarding a staged
  file;
* ``s3:ListBucket`` on the bucket: without it S3 answers 403 instead of 404 for a staged file that is not there."""


def upload_bucket() -> dict[str, Any]:
    """Private, encrypted, TLS only; CORS for the console's form posts; everything expires after a day."""
    return {
        **private_bucket(
            UPLOAD_BUCKET,
            CorsConfiguration={"CorsRules": [{
                "Id": "console-uploads", "AllowedOrigins": {"Ref": ALLOWED_ORIGINS}, "AllowedMethods": ["POST"],
                "AllowedHeaders": ["*"], "ExposedHeaders": ["ETag"], "MaxAge": 3600}]},
            LifecycleConfiguration={"Rules": [{
                "Id": "expire-staged-uploads", "Status": "Enabled", "ExpirationInDays": STAGED_DAYS,
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": STAGED_DAYS}}]}),
        **bucket_policy(UPLOAD_BUCKET),
    }


def api_environment() -> dict[str, Any]:
    """The API function's settings for presigned transfers (they win over ``blob_environment``'s 4 MB caps)."""
    return {"UPLOAD_BUCKET": {"Ref": UPLOAD_BUCKET},
            "DIRECT_UPLOAD_MAX_BYTES": str(DIRECT_UPLOAD_MAX_BYTES),
            "FIRMWARE_MAX_BYTES": str(DEFAULT_FIRMWARE_MAX_BYTES),
            "BACKUP_MAX_BYTES": str(DEFAULT_BACKUP_MAX_BYTES)}


def uploads_fragment() -> Fragment:
    """The contributor (``infra/contributors.py``): the bucket, the API function's settings and statements."""
    return {
        "Parameters": {ALLOWED_ORIGINS: {
            "Type": "CommaDelimitedList", "Default": "*",
            "Description": "Origins whose pages may post presigned uploads (CORS): * or e.g. https://console.example"}},
        "Resources": upload_bucket(),
        "Outputs": {"UploadBucketName": {"Description": "Where presigned uploads are staged (emptied by "
                                                        "`python -m infra.console empty` before a delete)",
                                         "Value": {"Ref": UPLOAD_BUCKET}}},
        "Environment": {API_FUNCTION: api_environment()},
        "Policies": {API_FUNCTION: [dict(statement) for statement in API_FUNCTION_STATEMENTS]},
    }
