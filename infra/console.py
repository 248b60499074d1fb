"""The console in the cloud (#14 item 7): ``frontend/dist`` served by the stack, with the REST API and the
websocket on the same origin.

One CloudFront distribution is the console's address (the ``ConsoleUrl`` output) and routes by path:

=============  ================================  ===================================================================
path           origin                            how
=============  ================================  ===================================================================
``/api/ws``    the websocket API                 a viewer-request function rewrites the path to the stage
                                                 (``/<StageName>``), the only path API Gateway's websocket answers
``/api/*``     the REST API, origin path         ``/api/status`` → ``/<StageName>/api/status``
               ``/<StageName>``
``/*``         ``ConsoleBucket`` (private, read  the same function answers the single page's routes
               through origin access control)    (``/fields/sim.1.1.V_TEMP``) with ``/index.html``; files are
                                                 ``/assets/*`` and root-level names with a dot
=============  ================================  ===================================================================

Why one origin rather than a console built with the API's URLs baked in (``VITE_API_BASE``/``VITE_WS_URL``): the
console needs no build per stack (the same ``frontend/dist`` everywhere, and it is built before the stack exists),
no CORS preflight on every call, and the login cookie (``mc_access_token``, ``SameSite=Strict``) belongs to the
console's own site. The API behaviours never cache (``CachingDisabled``) and forward every viewer header, cookie and
query string but ``Host`` (``AllViewerExceptHostHeader``: API Gateway must see its own host; with caching off the
``Authorization`` header goes through too). An SPA fallback through custom error responses would turn the API's own
403 and 404 answers into ``index.html``, hence the function.

``ConsoleBucket`` holds nothing but the build: deleted with the stack, after ``python -m infra.console empty``. The
deploy step uploads the build once the stack exists::

    python -m infra.console upload --stack <stack> [--region <region>] [--dist frontend/dist]

It puts what changed (hashed ``assets/*`` cached for a year, everything else revalidated), ``index.html`` last,
removes what the build no longer has, and invalidates the distribution's cache when anything changed; run again
with nothing changed it changes nothing. The caller's credentials need ``cloudformation:DescribeStacks``,
``s3:ListBucket``/``GetObject``/``PutObject``/``DeleteObject`` on the console bucket and
``cloudfront:CreateInvalidation`` on the distribution; ``empty`` needs ``s3:ListBucketVersions`` and
``s3:DeleteObject``/``s3:DeleteObjectVersion`` on both buckets.
"""

from __future__ import annotations

import argparse
import hashlib
import mimetypes
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from .buckets import bucket_policy, private_bucket
from .errors import InfraError
from .fragments import Fragment

ROOT: Final = Path(__file__).resolve().parent.parent
DIST: Final = ROOT / "frontend" / "dist"
BUCKET: Final = "ConsoleBucket"
DISTRIBUTION: Final = "ConsoleDistribution"
ACCESS_CONTROL: Final = "ConsoleOriginAccessControl"
ROUTER: Final = "ConsoleRouter"
REST_API: Final = "RestAPI"
WEBSOCKET_API: Final = "WebsocketAPI"
STAGE_PARAMETER: Final = "StageName"
OUTPUT_URL: Final = "ConsoleUrl"
OUTPUT_BUCKET: Final = "ConsoleBucketName"
OUTPUT_DISTRIBUTION: Final = "ConsoleDistributionId"
OUTPUT_UPLOAD_BUCKET: Final = "UploadBucketName"
"""``infra/uploads.py``'s bucket, emptied with this one before a stack is deleted."""

CACHING_OPTIMIZED: Final = "658327ea-f89d-4fab-a63d-7e88639e58f6"
CACHING_DISABLED: Final = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_EXCEPT_HOST: Final = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
SECURITY_HEADERS: Final = "67f7725c-6f97-4210-82d7-5512b31e9d03"
"""CloudFront's managed cache, origin request and response headers policies (fixed ids, the same in every
account)."""
ALL_METHODS: Final = ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"]

ASSET_CACHE: Final = "public, max-age=31536000, immutable"
"""Vite names every file under ``assets/`` by its content's hash: a changed file is a new name."""
PAGE_CACHE: Final = "no-cache"
"""``index.html`` and the other unhashed files: revalidated, so a deploy shows at the next load."""
CONTENT_TYPES: Final = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css",
                        ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml", ".json": "application/json",
                        ".webmanifest": "application/manifest+json", ".wasm": "application/wasm",
                        ".map": "application/json", ".txt": "text/plain; charset=utf-8", ".ico": "image/x-icon",
                        ".png": "image/png", ".woff2": "font/woff2"}

ROUTER_CODE: Final = """// MyController: one origin for the console, the REST API and the websocket (infra/console.py)
function handler(event) {
  var request = event.request;
  var uri = request.uri;
  if (uri === '/api/ws' || uri === '/api/ws/') {
    request.uri = '/${StageName}';  // API Gateway's websocket answers on its stage only
    return request;
  }
  if (uri.indexOf('/assets/') === 0) return request;  // the build's hashed files
  if (uri.lastIndexOf('/') === 0 && uri.indexOf('.') > 0) return request;  // /favicon.svg and the like
  request.uri = '/index.html';  // the single page answers its own routes: /fields/sim.1.1.V_TEMP
  return request;
}
"""


def _stack_suffix() -> dict[str, Any]:
    """The first 8 hex digits of the stack's id: names that must be unique in the account, within their limits."""
    return {"Fn::Select": [0, {"Fn::Split": ["-", {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}]}]}


def _execute_api(api: str) -> dict[str, Any]:
    return {"Fn::Sub": f"${{{api}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}"}


def console_bucket() -> dict[str, Any]:
    """Private and encrypted; only this stack's distribution reads it (origin access control)."""
    distribution_arn = {"Fn::Sub": f"arn:${{AWS::Partition}}:cloudfront::${{AWS::AccountId}}:distribution/"
                                   f"${{{DISTRIBUTION}}}"}
    return {
        **private_bucket(BUCKET),
        **bucket_policy(
            BUCKET,
            {"Sid": "DistributionReads", "Effect": "Allow",
             "Principal": {"Service": "cloudfront.amazonaws.com"}, "Action": "s3:GetObject",
             "Resource": {"Fn::Sub": f"${{{BUCKET}.Arn}}/*"},
             "Condition": {"StringEquals": {"AWS:SourceArn": distribution_arn}}},
            {"Sid": "DistributionLists", "Effect": "Allow",  # a missing file is then a 404, not a 403
             "Principal": {"Service": "cloudfront.amazonaws.com"}, "Action": "s3:ListBucket",
             "Resource": {"Fn::GetAtt": [BUCKET, "Arn"]},
             "Condition": {"StringEquals": {"AWS:SourceArn": distribution_arn}}}),
    }


def distribution() -> dict[str, Any]:
    """The distribution, its origin access control and its viewer-request router."""
    router_arn = {"Fn::GetAtt": [ROUTER, "FunctionARN"]}
    routed = [{"EventType": "viewer-request", "FunctionARN": router_arn}]
    https = {"OriginProtocolPolicy": "https-only", "OriginSSLProtocols": ["TLSv1.2"], "HTTPSPort": 443}
    return {
        ACCESS_CONTROL: {
            "Type": "AWS::CloudFront::OriginAccessControl",
            "Properties": {"OriginAccessControlConfig": {
                "Name": {"Fn::Join": ["-", ["mycontroller-console", _stack_suffix()]]},
                "Description": {"Fn::Sub": "MyController ${AWS::StackName}: the console bucket"},
                "OriginAccessControlOriginType": "s3", "SigningBehavior": "always", "SigningProtocol": "sigv4"}},
        },
        ROUTER: {
            "Type": "AWS::CloudFront::Function",
            "Properties": {
                "Name": {"Fn::Join": ["-", ["mycontroller-console", _stack_suffix()]]},
                "AutoPublish": True,
                "FunctionConfig": {"Comment": "websocket to its stage; the single page's routes to index.html",
                                   "Runtime": "cloudfront-js-2.0"},
                "FunctionCode": {"Fn::Sub": ROUTER_CODE},
            },
        },
        DISTRIBUTION: {
            "Type": "AWS::CloudFront::Distribution",
            "Properties": {"DistributionConfig": {
                "Enabled": True,
                "Comment": {"Fn::Sub": "MyController ${AWS::StackName}: console, REST API and websocket"},
                "DefaultRootObject": "index.html",
                "HttpVersion": "http2and3",
                "IPV6Enabled": True,
                "PriceClass": "PriceClass_100",
                "Origins": [
                    {"Id": "console", "DomainName": {"Fn::GetAtt": [BUCKET, "RegionalDomainName"]},
                     "S3OriginConfig": {"OriginAccessIdentity": ""},
                     "OriginAccessControlId": {"Fn::GetAtt": [ACCESS_CONTROL, "Id"]}},
                    {"Id": "rest-api", "DomainName": _execute_api(REST_API),
                     "OriginPath": {"Fn::Sub": f"/${{{STAGE_PARAMETER}}}"}, "CustomOriginConfig": https},
                    {"Id": "websocket-api", "DomainName": _execute_api(WEBSOCKET_API), "CustomOriginConfig": https},
                ],
                "DefaultCacheBehavior": {
                    "TargetOriginId": "console", "ViewerProtocolPolicy": "redirect-to-https",
                    "AllowedMethods": ["GET", "HEAD"], "CachedMethods": ["GET", "HEAD"], "Compress": True,
                    "CachePolicyId": CACHING_OPTIMIZED, "ResponseHeadersPolicyId": SECURITY_HEADERS,
                    "FunctionAssociations": routed,
                },
                "CacheBehaviors": [
                    {"PathPattern": "/api/ws", "TargetOriginId": "websocket-api", "ViewerProtocolPolicy": "https-only",
                     "AllowedMethods": ["GET", "HEAD"], "CachedMethods": ["GET", "HEAD"], "Compress": False,
                     "CachePolicyId": CACHING_DISABLED, "OriginRequestPolicyId": ALL_VIEWER_EXCEPT_HOST,
                     "FunctionAssociations": routed},
                    {"PathPattern": "/api/*", "TargetOriginId": "rest-api", "ViewerProtocolPolicy": "https-only",
                     "AllowedMethods": ALL_METHODS, "CachedMethods": ["GET", "HEAD"], "Compress": True,
                     "CachePolicyId": CACHING_DISABLED, "OriginRequestPolicyId": ALL_VIEWER_EXCEPT_HOST},
                ],
            }},
        },
    }


def console_fragment() -> Fragment:
    """The contributor (``infra/contributors.py``): bucket, distribution, router and the console's address."""
    return {
        "Resources": {**console_bucket(), **distribution()},
        "Outputs": {
            OUTPUT_URL: {"Description": "The console, the REST API (/api/...) and the websocket (/api/ws) on one "
                                        "origin", "Value": {"Fn::Sub": f"https://${{{DISTRIBUTION}.DomainName}}"}},
            OUTPUT_BUCKET: {"Description": "Where `python -m infra.console upload` puts frontend/dist",
                            "Value": {"Ref": BUCKET}},
            OUTPUT_DISTRIBUTION: {"Value": {"Ref": DISTRIBUTION}},
        },
    }


# --------------------------------------------------------------------------------------------- deploy step


class ConsoleError(InfraError):
    """The console cannot be uploaded: no build, or a stack without the console's outputs."""


@dataclass
class Sync:
    """What an upload did: keys put, kept (unchanged) and removed, and the invalidation made (if any)."""

    put: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    invalidation: str | None = None


def content_type(key: str) -> str:
    suffix = Path(key).suffix.lower()
    return CONTENT_TYPES.get(suffix) or mimetypes.guess_type(key)[0] or "application/octet-stream"


def cache_control(key: str) -> str:
    return ASSET_CACHE if key.startswith("assets/") else PAGE_CACHE


def build_files(dist: Path) -> dict[str, Path]:
    """Key → file of the build; ``ConsoleError`` when there is no build (``cd frontend && npm run build``)."""
    if not (dist / "index.html").is_file():
        raise ConsoleError(f"no console build in {dist}: run `cd frontend && npm ci && npm run build` first")
    return {path.relative_to(dist).as_posix(): path for path in sorted(dist.rglob("*")) if path.is_file()}


def stack_outputs(cloudformation: Any, stack: str) -> dict[str, str]:
    try:
        stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except Exception as error:  # botocore's ClientError: the stack does not exist, or no permission
        raise ConsoleError(f"stack {stack!r} cannot be read: {error}") from None
    return {str(o["OutputKey"]): str(o["OutputValue"]) for o in stacks[0].get("Outputs", [])}


def _existing(s3: Any, bucket: str) -> dict[str, str]:
    """Key → ETag (without quotes) of what the bucket holds."""
    found: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            found[str(item["Key"])] = str(item.get("ETag", "")).strip('"')
    return found


def upload(s3: Any, cloudfront: Any, *, bucket: str, distribution_id: str | None, dist: Path = DIST,
           prune: bool = True) -> Sync:
    """Make the bucket hold exactly the build: put what changed (MD5 against the ETag of a plain PUT with SSE-S3),
    ``index.html`` last, so a visitor never loads a page whose files are not there yet; remove what the build no
    longer has; invalidate the distribution's cache once if anything changed."""
    files = build_files(dist)
    existing = _existing(s3, bucket)
    sync = Sync()
    for key in sorted(files, key=lambda k: (k == "index.html", k)):
        data = files[key].read_bytes()
        if existing.get(key) == hashlib.md5(data, usedforsecurity=False).hexdigest():
            sync.unchanged.append(key)
            continue
        s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type(key),
                      CacheControl=cache_control(key), ServerSideEncryption="AES256")
        sync.put.append(key)
    if prune:
        stale = sorted(set(existing) - set(files))
        for start in range(0, len(stale), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in stale[start:start + 1000]],
                                                     "Quiet": True})
        sync.removed = stale
    if distribution_id and (sync.put or sync.removed):
        answer = cloudfront.create_invalidation(DistributionId=distribution_id, InvalidationBatch={
            "Paths": {"Quantity": 1, "Items": ["/*"]}, "CallerReference": hashlib.sha256(
                "\n".join(sync.put + sync.removed).encode()).hexdigest()[:32]})
        sync.invalidation = str(answer["Invalidation"]["Id"])
    return sync


def empty(s3: Any, buckets: Iterable[str]) -> dict[str, int]:
    """Remove every object (and version) of ``buckets``, so that the stack can delete them; bucket → removed."""
    removed: dict[str, int] = {}
    for bucket in buckets:
        count = 0
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            objects = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                       for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]]
            for start in range(0, len(objects), 1000):
                s3.delete_objects(Bucket=bucket, Delete={"Objects": objects[start:start + 1000], "Quiet": True})
            count += len(objects)
        removed[bucket] = count
    return removed


def _clients(region: str | None) -> tuple[Any, Any, Any]:
    import boto3

    session = boto3.session.Session(region_name=region)
    return session.client("cloudformation"), session.client("s3"), session.client("cloudfront")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.console", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("upload", help="put frontend/dist into the stack's console bucket")
    up.add_argument("--dist", type=Path, default=DIST, help="the console build (default frontend/dist)")
    up.add_argument("--keep-stale", action="store_true", help="keep files the build no longer has")
    down = commands.add_parser("empty", help="empty the console and upload buckets before the stack is deleted")
    for command in (up, down):
        command.add_argument("--stack", required=True, help="the stack's name")
        command.add_argument("--region", default=None, help="its region (default: the AWS configuration's)")
    args = parser.parse_args(argv)
    cloudformation, s3, cloudfront = _clients(args.region)
    try:
        outputs = stack_outputs(cloudformation, args.stack)
        if args.command == "empty":
            buckets = [outputs[key] for key in (OUTPUT_BUCKET, OUTPUT_UPLOAD_BUCKET) if outputs.get(key)]
            for bucket, count in empty(s3, buckets).items():
                print(f"{bucket}: {count} object(s) removed")
            return 0
        if OUTPUT_BUCKET not in outputs:
            raise ConsoleError(f"stack {args.stack!r} has no {OUTPUT_BUCKET} output: is it deployed with the console?")
        sync = upload(s3, cloudfront, bucket=outputs[OUTPUT_BUCKET], distribution_id=outputs.get(OUTPUT_DISTRIBUTION),
                      dist=args.dist, prune=not args.keep_stale)
    except ConsoleError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"console: {len(sync.put)} put, {len(sync.unchanged)} unchanged, {len(sync.removed)} removed"
          + (f", invalidation {sync.invalidation}" if sync.invalidation else ""))
    if outputs.get(OUTPUT_URL):
        print(f"console URL: {outputs[OUTPUT_URL]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
