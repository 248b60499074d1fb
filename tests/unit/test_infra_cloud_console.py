"""The template's console, upload bucket and metric store pieces (infra/console.py, infra/uploads.py,
infra/metrics.py), read from the whole template ``make package`` writes (cfn-lint runs over it in test_infra.py).

The console: one CloudFront distribution routes ``/api/ws`` to the websocket API (its router rewrites the path to
the stage), ``/api/*`` to the REST API under the stage, uncached with every viewer header but Host, and the rest to a
private bucket read through origin access control, the single page's routes answered with ``index.html``. The router
is run with node on the paths it must tell apart. Uploads: a bucket of its own, CORS for form posts, expiring; the
API function's settings lift the 4 MB caps. Metrics: off unless a parameter says otherwise; credentials by secret.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
from typing import Any

import pytest

from infra import console, metrics, uploads
from infra.contributors import CONTRIBUTORS
from infra.package import build_template


@functools.cache
def template() -> dict[str, Any]:
    return build_template()


def resources() -> dict[str, Any]:
    return template()["Resources"]


def variables(function: str) -> dict[str, Any]:
    return dict(resources()[function]["Properties"]["Environment"]["Variables"])


def test_the_pieces_are_contributed() -> None:
    assert {console.console_fragment, uploads.uploads_fragment, metrics.metrics_fragment} <= set(CONTRIBUTORS)
    outputs = template()["Outputs"]
    assert outputs["ConsoleUrl"]["Value"] == {"Fn::Sub": "https://${ConsoleDistribution.DomainName}"}
    assert {"ConsoleBucketName", "ConsoleDistributionId", "UploadBucketName", "MetricsEndpoint"} <= set(outputs)


def test_one_origin_routes_the_console_the_rest_api_and_the_websocket() -> None:
    config = resources()["ConsoleDistribution"]["Properties"]["DistributionConfig"]
    origins = {origin["Id"]: origin for origin in config["Origins"]}
    assert origins["rest-api"]["DomainName"] == {"Fn::Sub": "${RestAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}"}
    assert origins["rest-api"]["OriginPath"] == {"Fn::Sub": "/${StageName}"}  # /api/status → /<stage>/api/status
    assert origins["websocket-api"]["DomainName"] == {
        "Fn::Sub": "${WebsocketAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}"}
    assert "OriginPath" not in origins["websocket-api"]  # the router puts the stage in the path
    for name in ("rest-api", "websocket-api"):
        assert origins[name]["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert origins["console"]["OriginAccessControlId"] == {"Fn::GetAtt": [console.ACCESS_CONTROL, "Id"]}
    assert origins["console"]["S3OriginConfig"] == {"OriginAccessIdentity": ""}

    behaviours = [(b["PathPattern"], b["TargetOriginId"]) for b in config["CacheBehaviors"]]
    assert behaviours == [("/api/ws", "websocket-api"), ("/api/*", "rest-api")]  # the first match wins
    router = [{"EventType": "viewer-request", "FunctionARN": {"Fn::GetAtt": [console.ROUTER, "FunctionARN"]}}]
    for behaviour in config["CacheBehaviors"]:
        assert behaviour["CachePolicyId"] == console.CACHING_DISABLED  # never an answer for someone else
        assert behaviour["OriginRequestPolicyId"] == console.ALL_VIEWER_EXCEPT_HOST  # token, cookie, query
        assert behaviour["ViewerProtocolPolicy"] == "https-only"
    api = config["CacheBehaviors"][1]
    assert set(api["AllowedMethods"]) == {"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"}
    assert "FunctionAssociations" not in api
    assert config["CacheBehaviors"][0]["FunctionAssociations"] == router
    default = config["DefaultCacheBehavior"]
    assert (default["TargetOriginId"], default["FunctionAssociations"]) == ("console", router)
    assert default["ViewerProtocolPolicy"] == "redirect-to-https" and default["AllowedMethods"] == ["GET", "HEAD"]
    assert config["DefaultRootObject"] == "index.html" and "CustomErrorResponses" not in config


def test_the_console_and_the_api_reach_browsers_compressed() -> None:
    """Issue #20 item 5: CloudFront compresses the console's files (gzip or brotli, as the browser accepts: the
    managed CachingOptimized policy keys on both) and the REST API's answers; the websocket is passed through."""
    config = resources()["ConsoleDistribution"]["Properties"]["DistributionConfig"]
    default = config["DefaultCacheBehavior"]
    assert default["Compress"] is True and default["CachePolicyId"] == console.CACHING_OPTIMIZED
    compress = {b["PathPattern"]: b["Compress"] for b in config["CacheBehaviors"]}
    assert compress == {"/api/*": True, "/api/ws": False}


def test_only_this_distribution_reads_the_private_console_bucket() -> None:
    bucket = resources()[console.BUCKET]
    assert bucket["DeletionPolicy"] == "Delete"  # the build only; `python -m infra.console empty` first
    assert all(bucket["Properties"]["PublicAccessBlockConfiguration"].values())
    statements = resources()[f"{console.BUCKET}Policy"]["Properties"]["PolicyDocument"]["Statement"]
    allowed = [s for s in statements if s["Effect"] == "Allow"]
    assert {s["Principal"]["Service"] for s in allowed} == {"cloudfront.amazonaws.com"}
    assert {s["Action"] for s in allowed} == {"s3:GetObject", "s3:ListBucket"}
    for statement in allowed:
        source = statement["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"]
        assert source.endswith(":distribution/${ConsoleDistribution}")
    access = resources()[console.ACCESS_CONTROL]["Properties"]["OriginAccessControlConfig"]
    assert (access["OriginAccessControlOriginType"], access["SigningBehavior"]) == ("s3", "always")


@pytest.mark.skipif(shutil.which("node") is None, reason="node runs the CloudFront function's JavaScript")
def test_the_router_sends_the_websocket_to_its_stage_and_the_pages_to_index_html() -> None:
    code = resources()[console.ROUTER]["Properties"]["FunctionCode"]["Fn::Sub"].replace("${StageName}", "v1")
    paths = ["/api/ws", "/api/ws/", "/", "/fields/sim.1.1.V_TEMP/", "/nodes", "/login", "/assets/index-AbC1.js",
             "/assets/fonts/x.woff2", "/favicon.svg", "/robots.txt", "/dashboards/home.v2"]
    script = code + f"\nconsole.log(JSON.stringify({json.dumps(paths)}.map(" \
                    "(uri) => handler({request: {uri: uri, headers: {}}}).uri)));"
    answer = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=30, check=True)

    assert dict(zip(paths, json.loads(answer.stdout), strict=True)) == {
        "/api/ws": "/v1", "/api/ws/": "/v1", "/": "/index.html", "/fields/sim.1.1.V_TEMP/": "/index.html",
        "/nodes": "/index.html", "/login": "/index.html", "/assets/index-AbC1.js": "/assets/index-AbC1.js",
        "/assets/fonts/x.woff2": "/assets/fonts/x.woff2", "/favicon.svg": "/favicon.svg",
        "/robots.txt": "/robots.txt", "/dashboards/home.v2": "/index.html"}
    assert resources()[console.ROUTER]["Properties"]["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"


def test_uploads_are_staged_in_an_expiring_bucket_the_console_may_post_to() -> None:
    properties = resources()[uploads.UPLOAD_BUCKET]["Properties"]
    [cors] = properties["CorsConfiguration"]["CorsRules"]
    assert cors["AllowedMethods"] == ["POST"] and cors["AllowedOrigins"] == {"Ref": "UploadAllowedOrigins"}
    assert template()["Parameters"]["UploadAllowedOrigins"]["Default"] == "*"
    [rule] = properties["LifecycleConfiguration"]["Rules"]
    assert (rule["Status"], rule["ExpirationInDays"]) == ("Enabled", 1)
    assert "VersioningConfiguration" not in properties and all(properties["PublicAccessBlockConfiguration"].values())
    api = variables("APIHandler")
    assert api["UPLOAD_BUCKET"] == {"Ref": uploads.UPLOAD_BUCKET}
    assert int(api["DIRECT_UPLOAD_MAX_BYTES"]) * 4 / 3 < 6 * 1024 * 1024  # what Lambda's payload still carries
    assert int(api["FIRMWARE_MAX_BYTES"]) > 4_000_000 and int(api["BACKUP_MAX_BYTES"]) > 4_000_000  # the cap is gone
    assert "UPLOAD_BUCKET" not in variables("Handlers")


def test_without_a_metric_store_the_functions_keep_none_and_with_one_read_its_secret() -> None:
    parameters = template()["Parameters"]
    assert parameters["MetricStore"]["Default"] == "none"
    assert parameters["MetricStore"]["AllowedValues"] == ["none", "existing", "create"]
    for function in metrics.METRICS_FUNCTIONS:
        env = variables(function)
        assert env["METRICS"] == {"Fn::If": ["MetricsOn", "influxdb", "none"]}
        assert env["INFLUXDB_TOKEN_SECRET"] == metrics.METRICS_SECRET
        assert "INFLUXDB_TOKEN" not in env  # never the token itself
    assert variables("Handlers")["METRICS"] == "none"
    conditions = template()["Conditions"]
    assert conditions["MetricsOn"] == {"Fn::Or": [{"Condition": "MetricsExisting"}, {"Condition": "MetricsCreate"}]}


def test_a_created_instance_is_conditional_retained_and_credentialed_by_a_generated_secret() -> None:
    instance = resources()[metrics.INSTANCE]
    assert (instance["Condition"], instance["DeletionPolicy"]) == ("MetricsCreate", "Retain")
    properties = instance["Properties"]
    assert properties["Password"] == {
        "Fn::Sub": "{{resolve:secretsmanager:${MetricsInfluxDBCredentials}:SecretString:password}}"}
    assert properties["VpcSecurityGroupIds"] == [{"Ref": metrics.SECURITY_GROUP}]
    assert properties["VpcSubnetIds"] == {"Ref": "InfluxDBSubnetIds"} and properties["PubliclyAccessible"] is True
    generated = resources()[metrics.CREDENTIALS]["Properties"]["GenerateSecretString"]
    assert json.loads(generated["SecretStringTemplate"]) == {"username": properties["Username"]}
    assert generated["GenerateStringKey"] == "password" and generated["ExcludePunctuation"] is True  # alphanumeric
    [ingress] = resources()[metrics.SECURITY_GROUP]["Properties"]["SecurityGroupIngress"]
    assert (ingress["FromPort"], ingress["ToPort"], ingress["CidrIp"]) == (8086, 8086, {"Ref": "InfluxDBAllowedCidr"})
    # the instance's name: mycontroller-<8 hex digits of the stack id>, within 3-40 characters of [a-zA-Z0-9-]
    assert re.match(r"^[a-zA-Z][a-zA-Z0-9]*(-[a-zA-Z0-9]+)*$", "mycontroller-1a2b3c4d")
    assert properties["Name"]["Fn::Join"][1][0] == "mycontroller"
