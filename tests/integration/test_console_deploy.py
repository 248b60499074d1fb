"""The deploy step's console upload (``python -m infra.console upload --stack X``) against moto: the stack's outputs
name the bucket and the distribution; the build lands with its content types and cache headers, ``index.html``
last; a second run with nothing changed puts nothing and invalidates nothing; files the build dropped go; ``empty``
clears the console and upload buckets so that the stack can delete them."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra import console

REGION = "us-east-1"
_stacks = itertools.count(1)


@pytest.fixture
def stack(aws_mock: None) -> dict[str, Any]:
    """A stack in moto's CloudFormation whose outputs are the console's (buckets made by the stack, a distribution
    made beside it, as moto's CloudFormation does not make distributions)."""
    cloudfront = boto3.client("cloudfront", region_name=REGION)
    distribution = cloudfront.create_distribution(DistributionConfig={
        "CallerReference": f"console-test-{next(_stacks)}", "Comment": "console", "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [{"Id": "console", "DomainName": "console.s3.amazonaws.com",
                                              "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "console", "ViewerProtocolPolicy": "redirect-to-https",
                                 "CachePolicyId": console.CACHING_OPTIMIZED}})["Distribution"]["Id"]
    name = f"mc-console-{next(_stacks)}"
    buckets = {"ConsoleBucket": {"Type": "AWS::S3::Bucket"}, "UploadBucket": {"Type": "AWS::S3::Bucket"}}
    template = {"Resources": buckets,
                "Outputs": {console.OUTPUT_BUCKET: {"Value": {"Ref": "ConsoleBucket"}},
                            console.OUTPUT_UPLOAD_BUCKET: {"Value": {"Ref": "UploadBucket"}},
                            console.OUTPUT_DISTRIBUTION: {"Value": distribution},
                            console.OUTPUT_URL: {"Value": "https://d111111abcdef8.cloudfront.net"}}}
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))
    outputs = console.stack_outputs(cloudformation, name)
    return {"name": name, "bucket": outputs[console.OUTPUT_BUCKET], "uploads": outputs[console.OUTPUT_UPLOAD_BUCKET],
            "distribution": distribution, "s3": boto3.client("s3", region_name=REGION), "cloudfront": cloudfront}


def build(root: Path, files: dict[str, str]) -> Path:
    for key, text in files.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def held(s3: Any, bucket: str) -> dict[str, dict[str, str]]:
    found = {}
    for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        head = s3.head_object(Bucket=bucket, Key=item["Key"])
        found[item["Key"]] = {"type": head["ContentType"], "cache": head.get("CacheControl", ""),
                              "body": s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()}
    return found


def invalidations(stack: dict[str, Any]) -> int:
    answer = stack["cloudfront"].list_invalidations(DistributionId=stack["distribution"])["InvalidationList"]
    return int(answer.get("Quantity", 0))


def upload(stack: dict[str, Any], dist: Path, *extra: str) -> int:
    return console.main(["upload", "--stack", stack["name"], "--region", REGION, "--dist", str(dist), *extra])


def test_the_build_lands_with_its_types_and_cache_headers(stack: dict[str, Any], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    dist = build(tmp_path / "dist", {"index.html": "<html>v1</html>", "assets/index-AbC123.js": "console.log(1)",
                                     "assets/index-XyZ789.css": "body{}", "favicon.svg": "<svg/>"})

    assert upload(stack, dist) == 0

    assert held(stack["s3"], stack["bucket"]) == {
        "index.html": {"type": "text/html; charset=utf-8", "cache": "no-cache", "body": "<html>v1</html>"},
        "assets/index-AbC123.js": {"type": "text/javascript", "cache": console.ASSET_CACHE,
                                   "body": "console.log(1)"},
        "assets/index-XyZ789.css": {"type": "text/css", "cache": console.ASSET_CACHE, "body": "body{}"},
        "favicon.svg": {"type": "image/svg+xml", "cache": "no-cache", "body": "<svg/>"},
    }
    assert invalidations(stack) == 1
    printed = capsys.readouterr().out
    assert "4 put, 0 unchanged, 0 removed" in printed
    assert "console URL: https://d111111abcdef8.cloudfront.net" in printed


def test_index_html_goes_last(stack: dict[str, Any], tmp_path: Path) -> None:
    dist = build(tmp_path / "dist", {"index.html": "x", "assets/a-1.js": "a", "zeta.txt": "z"})

    sync = console.upload(stack["s3"], stack["cloudfront"], bucket=stack["bucket"], distribution_id=None, dist=dist)

    assert sync.put[-1] == "index.html" and sorted(sync.put) == ["assets/a-1.js", "index.html", "zeta.txt"]
    assert sync.invalidation is None  # no distribution named: nothing to invalidate


def test_a_second_upload_of_the_same_build_changes_nothing(stack: dict[str, Any], tmp_path: Path) -> None:
    dist = build(tmp_path / "dist", {"index.html": "<html>v1</html>", "assets/app-1.js": "one"})
    assert upload(stack, dist) == 0

    sync = console.upload(stack["s3"], stack["cloudfront"], bucket=stack["bucket"],
                          distribution_id=stack["distribution"], dist=dist)

    assert (sync.put, sync.removed, sync.invalidation) == ([], [], None)
    assert sorted(sync.unchanged) == ["assets/app-1.js", "index.html"]
    assert invalidations(stack) == 1


def test_a_new_build_replaces_what_changed_and_drops_what_is_gone(stack: dict[str, Any], tmp_path: Path) -> None:
    first = build(tmp_path / "v1", {"index.html": "v1", "assets/app-1.js": "one", "robots.txt": "r"})
    assert upload(stack, first) == 0

    sync = console.upload(stack["s3"], stack["cloudfront"], bucket=stack["bucket"],
                          distribution_id=stack["distribution"],
                          dist=build(tmp_path / "v2", {"index.html": "v2", "assets/app-2.js": "two",
                                                       "robots.txt": "r"}))

    assert sync.put == ["assets/app-2.js", "index.html"] and sync.removed == ["assets/app-1.js"]
    assert sync.unchanged == ["robots.txt"] and sync.invalidation
    assert sorted(held(stack["s3"], stack["bucket"])) == ["assets/app-2.js", "index.html", "robots.txt"]
    assert invalidations(stack) == 2
    assert upload(stack, build(tmp_path / "v3", {"index.html": "v3"}), "--keep-stale") == 0
    assert sorted(held(stack["s3"], stack["bucket"])) == ["assets/app-2.js", "index.html", "robots.txt"]


def test_empty_clears_both_buckets_for_the_stacks_deletion(stack: dict[str, Any], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert upload(stack, build(tmp_path / "dist", {"index.html": "x", "assets/a-1.js": "a"})) == 0
    stack["s3"].put_object(Bucket=stack["uploads"], Key="uploads/backup/0123", Body=b"staged")

    assert console.main(["empty", "--stack", stack["name"], "--region", REGION]) == 0

    for bucket in (stack["bucket"], stack["uploads"]):
        assert stack["s3"].list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    printed = capsys.readouterr().out
    assert f"{stack['bucket']}: 2 object(s) removed" in printed and f"{stack['uploads']}: 1 object(s)" in printed


def test_without_a_build_or_a_console_stack_it_says_what_is_missing(stack: dict[str, Any], tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert upload(stack, tmp_path / "not-built") == 2
    assert "npm run build" in capsys.readouterr().err

    cloudformation = boto3.client("cloudformation", region_name=REGION)
    cloudformation.create_stack(StackName="mc-no-console", TemplateBody=json.dumps(
        {"Resources": {"Other": {"Type": "AWS::S3::Bucket"}}}))
    dist = build(tmp_path / "dist", {"index.html": "x"})
    assert console.main(["upload", "--stack", "mc-no-console", "--region", REGION, "--dist", str(dist)]) == 2
    assert "ConsoleBucketName" in capsys.readouterr().err
    assert console.main(["upload", "--stack", "mc-absent", "--region", REGION, "--dist", str(dist)]) == 2
    assert "mc-absent" in capsys.readouterr().err
