"""``make deploy`` and ``make destroy``: the stack ``make package`` built, deployed by AWS SAM CLI's ``sam deploy``.

``deploy``: checks the credentials and region, looks up the account's IoT data endpoint, and runs ``sam deploy``
on ``build/template.json``: SAM uploads ``build/deployment.zip`` (and the template, above CloudFormation's 51 KB
inline limit) to the bucket it manages (``--resolve-s3``, one per account and region), then creates or updates
the stack through a change set with ``CAPABILITY_IAM``. The zip and template are reproducible, so a re-run with
nothing changed finds an empty change set and changes nothing (``--no-fail-on-empty-changeset``). Parameters not
given keep their deployed values (SAM passes ``UsePreviousValue``); the values given reach SAM in a private file
(``--parameter-overrides file://…``), never on a command line, and SAM shows the admin password masked.

``destroy``: ``sam delete`` removes the stack and its uploaded artefacts. Tables, the bucket and the KMS key are
kept (``DeletionPolicy: Retain``); ``--purge`` deletes them too, after the stack is gone (the bucket emptied of
every version, the key scheduled for deletion after 7 days, as KMS requires).

Nothing here runs in ``make test``: ``tests/unit/test_deploy.py`` checks the commands it builds and the purge
against moto.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from .errors import InfraError

ROOT: Final = Path(__file__).resolve().parent.parent
BUILD_DIR: Final = ROOT / "build"
STACK_NAME: Final = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,39}$")
"""CloudFormation's stack name pattern, at most 40 characters: function names are ``<stack>-<name>`` (64 at most,
the longest name is ``websocket_disconnect``)."""
RETAINED_TYPES: Final = ("AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::KMS::Key")
PARAMETER_VARIABLES: Final[dict[str, str]] = {
    "AdminPassword": "MC_ADMIN_PASSWORD",
    "AlarmEmail": "ALARM_EMAIL",
    "LogRetentionDays": "LOG_RETENTION_DAYS",
    "LogLevel": "LOG_LEVEL",
    "StageName": "STAGE",
    "IngestMaximumConcurrency": "INGEST_MAX_CONCURRENCY",
    # cost levers (docs/cost.md)
    "IngestBatchWindow": "INGEST_BATCH_WINDOW",
    "TableCapacity": "TABLE_CAPACITY",
    "TableWriteCapacity": "TABLE_WRITE_CAPACITY",
    "TableReadCapacity": "TABLE_READ_CAPACITY",
    "TableMaxCapacity": "TABLE_MAX_CAPACITY",
    "LastSeenInterval": "LAST_SEEN_INTERVAL",
    "FunctionAlarms": "FUNCTION_ALARMS",
    "Tracing": "TRACING",
}
"""Stack parameter → the environment variable ``make deploy`` reads it from (unset: the deployed value, or the
template's default on the first deploy)."""


class DeployError(InfraError, RuntimeError):
    """The stack cannot be deployed or destroyed as asked (the message says what to do)."""


@dataclass(frozen=True)
class Target:
    stack: str
    region: str
    bucket: str | None = None
    """The artefact bucket; ``None``: the one SAM manages (``--resolve-s3``)."""


def check_target(stack: str, region: str | None, bucket: str | None = None) -> Target:
    if not STACK_NAME.match(stack):
        raise DeployError(f"stack name {stack!r}: a letter, then letters, digits or '-', 40 characters at most")
    if not region:
        raise DeployError("no region: give REGION=<region> (or set AWS_REGION, or a region in your AWS profile)")
    return Target(stack, region, bucket or None)


def parameter_overrides(environ: dict[str, str], iot_endpoint: str | None) -> dict[str, str]:
    """The parameters this deploy sets: those whose variable is set, and the IoT endpoint looked up."""
    overrides = {parameter: environ[variable] for parameter, variable in PARAMETER_VARIABLES.items()
                 if environ.get(variable)}
    if iot_endpoint:
        overrides["IotDataEndpoint"] = iot_endpoint
    return overrides


def write_overrides(overrides: dict[str, str], path: Path) -> None:
    """The overrides as a YAML mapping (written as JSON, which YAML reads), readable by this user only."""
    path.touch(mode=0o600)
    path.write_text(json.dumps(overrides, sort_keys=True), encoding="utf-8")


def deploy_command(sam: str, target: Target, template: Path, overrides: Path | None) -> list[str]:
    command = [sam, "deploy", "--template-file", str(template), "--stack-name", target.stack,
               "--region", target.region, "--capabilities", "CAPABILITY_IAM",
               *(["--s3-bucket", target.bucket] if target.bucket else ["--resolve-s3"]),
               "--s3-prefix", target.stack, "--no-confirm-changeset", "--no-fail-on-empty-changeset",
               "--tags", "project=mycontroller", f"stack={target.stack}"]
    if overrides is not None:
        command += ["--parameter-overrides", f"file://{overrides}"]
    return command


def delete_command(sam: str, target: Target) -> list[str]:
    return [sam, "delete", "--stack-name", target.stack, "--region", target.region, "--no-prompts"]


def _session(region: str | None) -> Any:
    import boto3

    return boto3.Session(region_name=region) if region else boto3.Session()


def _check_credentials(session: Any) -> str:
    try:
        return str(session.client("sts").get_caller_identity()["Account"])
    except Exception as error:
        raise DeployError(f"no usable AWS credentials ({type(error).__name__}): configure them "
                          "(aws configure, AWS_PROFILE, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)") from None


def iot_data_endpoint(session: Any) -> str:
    return str(session.client("iot").describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"])


def stack_exists(session: Any, stack: str) -> bool:
    try:
        stacks = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    except Exception as error:
        if "does not exist" in str(error):
            return False
        raise
    return bool(stacks) and stacks[0]["StackStatus"] != "DELETE_COMPLETE"


Runner = Callable[[Sequence[str]], int]


def _run(command: Sequence[str]) -> int:
    return subprocess.run(list(command), check=False, env={**os.environ, "SAM_CLI_TELEMETRY": "0"}).returncode


def deploy(target: Target, sam: str, *, build_dir: Path = BUILD_DIR, environ: dict[str, str] | None = None,
           session: Any = None, run: Runner = _run) -> None:
    environ = dict(os.environ if environ is None else environ)
    template = build_dir / "template.json"
    if not template.exists() or not (build_dir / "deployment.zip").exists():
        raise DeployError(f"{template} or deployment.zip missing: run `make package` first")
    session = session or _session(target.region)
    account = _check_credentials(session)
    overrides = parameter_overrides(environ, iot_data_endpoint(session))
    if "AdminPassword" not in overrides and not stack_exists(session, target.stack):
        print("note: MC_ADMIN_PASSWORD is not set: the stack generates the admin password; read it with\n"
              f"  aws secretsmanager get-secret-value --region {target.region} --query SecretString --output text "
              f"--secret-id $(aws cloudformation describe-stacks --region {target.region} --stack-name "
              f"{target.stack} --query \"Stacks[0].Outputs[?OutputKey=='AdminPasswordSecretArn'].OutputValue\" "
              "--output text)", file=sys.stderr)
    print(f"deploying stack {target.stack} to account {account}, region {target.region}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="mc-deploy-") as directory:
        path = Path(directory) / "parameters.yaml"
        if overrides:
            write_overrides(overrides, path)
        code = run(deploy_command(sam, target, template, path if overrides else None))
    if code != 0:
        raise DeployError(f"sam deploy failed (exit {code}); the stack's events say why: aws cloudformation "
                          f"describe-stack-events --region {target.region} --stack-name {target.stack}")


def retained_resources(session: Any, stack: str) -> list[tuple[str, str]]:
    """``(type, physical id)`` of the stack's resources that outlive it."""
    client = session.client("cloudformation")
    found = []
    for page in client.get_paginator("list_stack_resources").paginate(StackName=stack):
        for summary in page["StackResourceSummaries"]:
            if summary["ResourceType"] in RETAINED_TYPES and summary.get("PhysicalResourceId"):
                found.append((summary["ResourceType"], summary["PhysicalResourceId"]))
    return found


def purge(session: Any, resources: list[tuple[str, str]]) -> list[str]:
    """Delete what the stack kept; what was done, one line each."""
    done = []
    for resource_type, physical in resources:
        if resource_type == "AWS::DynamoDB::Table":
            session.client("dynamodb").delete_table(TableName=physical)
            done.append(f"table {physical} deleted")
        elif resource_type == "AWS::S3::Bucket":
            bucket = session.resource("s3").Bucket(physical)
            bucket.object_versions.delete()
            bucket.objects.delete()
            bucket.delete()
            done.append(f"bucket {physical} emptied and deleted")
        elif resource_type == "AWS::KMS::Key":
            session.client("kms").schedule_key_deletion(KeyId=physical, PendingWindowInDays=7)
            done.append(f"key {physical} scheduled for deletion in 7 days")
    return done


def destroy(target: Target, sam: str, *, purge_data: bool = False, session: Any = None, run: Runner = _run) -> None:
    session = session or _session(target.region)
    _check_credentials(session)
    if not stack_exists(session, target.stack):
        raise DeployError(f"no stack {target.stack!r} in {target.region}")
    kept = retained_resources(session, target.stack)
    code = run(delete_command(sam, target))
    if code != 0:
        raise DeployError(f"sam delete failed (exit {code})")
    if purge_data:
        for line in purge(session, kept):
            print(line, file=sys.stderr)
    elif kept:
        print("kept (make destroy PURGE=1 deletes them): "
              + ", ".join(physical for _, physical in kept), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("deploy", "destroy"))
    parser.add_argument("--stack", default="mycontroller")
    parser.add_argument("--region", default=None, help="default: AWS_REGION, or your AWS profile's region")
    parser.add_argument("--sam", default="sam", help="the SAM CLI to run")
    parser.add_argument("--bucket", default=None, help="artefact bucket (default: the one SAM manages)")
    parser.add_argument("--build-dir", type=Path, default=BUILD_DIR)
    parser.add_argument("--purge", action="store_true", help="destroy: delete the tables, bucket and key too")
    args = parser.parse_args(argv)
    try:
        region = args.region or _session(None).region_name
        target = check_target(args.stack, region, args.bucket)
        if args.action == "deploy":
            deploy(target, args.sam, build_dir=args.build_dir)
        else:
            destroy(target, args.sam, purge_data=args.purge)
    except DeployError as error:
        print(f"{args.action}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
