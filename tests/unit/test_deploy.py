"""``make package``, ``make deploy``, ``make destroy`` without AWS: the code package is reproducible and carries no
build tools, ``sam deploy`` is run as the deploy needs (change sets, capabilities, an unchanged re-run a no-op, no
value on its command line), and ``make destroy`` keeps the data unless asked (moto stands in for AWS)."""

from __future__ import annotations

import json
import stat
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra import bundle
from infra.deploy import DeployError, check_target, deploy, destroy, purge, retained_resources


def test_the_package_carries_the_app_and_runtime_requirements_only(tmp_path: Path) -> None:
    requirements = bundle.lambda_requirements()
    assert requirements and not any(line.lower().startswith("chalice") for line in requirements)
    names = {name for _, name in bundle.app_files()}
    assert "app.py" in names and "chalicelib/bootstrap.py" in names
    assert {"mycontroller_protocol/__init__.py", "mycontroller_protocol/envelope.py",
            "mycontroller_protocol/mysensors/codec.py"} <= names  # the protocol code, shared with the edge (#21)
    assert not any(name.startswith(("chalicelib/local/", "edge/")) or name.endswith("_version.py") for name in names)
    stamp, name = bundle.version_stamp(tmp_path)
    assert name == "mycontroller_protocol/_version.py" and "version = " in stamp.read_text()
    assert {name for _, name in bundle.chalice_runtime()} == {"chalice/app.py", "chalice/__init__.py"}


def test_the_zip_is_reproducible(tmp_path: Path) -> None:
    (tmp_path / "b.py").write_text("b = 1\n")
    (tmp_path / "a.py").write_text("a = 1\n")
    files = [(tmp_path / "b.py", "pkg/b.py"), (tmp_path / "a.py", "pkg/a.py")]
    bundle.write_zip(tmp_path / "one.zip", files)
    (tmp_path / "a.py").touch()  # a newer time changes nothing
    bundle.write_zip(tmp_path / "two.zip", list(reversed(files)))
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "one.zip") as archive:
        assert archive.namelist() == ["pkg/a.py", "pkg/b.py"]


def test_a_stack_name_must_leave_room_for_function_names() -> None:
    assert check_target("mc-prod", "eu-west-1").stack == "mc-prod"
    for bad in ("x" * 41, "1stack", "my_stack"):
        with pytest.raises(DeployError):
            check_target(bad, "eu-west-1")
    with pytest.raises(DeployError, match="no region"):
        check_target("mc", None)


class Sam:
    """Stands in for the SAM CLI: keeps each command and the parameters file it was given."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []
        self.parameters: list[tuple[dict[str, str], int]] = []

    def __call__(self, command: Sequence[str]) -> int:
        self.commands.append(list(command))
        if "--parameter-overrides" in command:
            path = Path(command[command.index("--parameter-overrides") + 1].removeprefix("file://"))
            self.parameters.append((json.loads(path.read_text()), stat.S_IMODE(path.stat().st_mode)))
        return 0


@pytest.fixture
def build_dir(tmp_path: Path) -> Path:
    (tmp_path / "template.json").write_text("{}")
    (tmp_path / "deployment.zip").write_bytes(b"PK")
    return tmp_path


@pytest.mark.usefixtures("aws_mock")
def test_deploy_runs_sam_deploy_with_change_sets_and_the_values_in_a_private_file(build_dir: Path) -> None:
    sam, session = Sam(), boto3.Session(region_name="us-east-1")
    password = 'a "pass phrase" with spaces'
    deploy(check_target("mc-a", "us-east-1"), "sam", build_dir=build_dir, session=session, run=sam,
           environ={"MC_ADMIN_PASSWORD": password, "ALARM_EMAIL": "ops@example.com"})
    [command] = sam.commands
    assert command[:2] == ["sam", "deploy"]
    assert command[command.index("--template-file") + 1] == str(build_dir / "template.json")
    for flag in ("--no-fail-on-empty-changeset", "--no-confirm-changeset", "--resolve-s3"):
        assert flag in command
    assert command[command.index("--capabilities") + 1] == "CAPABILITY_IAM"
    assert command[command.index("--stack-name") + 1] == "mc-a"
    assert not any(password in part for part in command)
    [(parameters, mode)] = sam.parameters
    assert mode == 0o600
    endpoint = parameters.pop("IotDataEndpoint")  # the account's, looked up
    assert endpoint.endswith("-ats.iot.us-east-1.amazonaws.com")
    assert parameters == {"AdminPassword": password, "AlarmEmail": "ops@example.com"}


@pytest.mark.usefixtures("aws_mock")
def test_a_second_deploy_keeps_the_deployed_values(build_dir: Path) -> None:
    """Unset values are not sent: SAM passes UsePreviousValue for them (the password is not needed again)."""
    sam = Sam()
    deploy(check_target("mc-b", "us-east-1", bucket="my-artefacts"), "sam", build_dir=build_dir,
           session=boto3.Session(region_name="us-east-1"), run=sam, environ={})
    [command] = sam.commands
    assert command[command.index("--s3-bucket") + 1] == "my-artefacts" and "--resolve-s3" not in command
    [(parameters, _)] = sam.parameters
    assert set(parameters) == {"IotDataEndpoint"}


def test_deploy_needs_the_package(tmp_path: Path) -> None:
    with pytest.raises(DeployError, match="make package"):
        deploy(check_target("mc", "us-east-1"), "sam", build_dir=tmp_path, session=object(), run=Sam())


KEPT = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Resources": {
        "ResourceTable": {"Type": "AWS::DynamoDB::Table", "DeletionPolicy": "Retain", "Properties": {
            "BillingMode": "PAY_PER_REQUEST", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}]}},
        "BlobBucket": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain"},
        "SecretsKey": {"Type": "AWS::KMS::Key", "DeletionPolicy": "Retain", "Properties": {  # text: moto reads it so
            "KeyPolicy": json.dumps({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}]})}},
        "Topic": {"Type": "AWS::SNS::Topic"},
    },
}


def _stack(session: Any, name: str) -> dict[str, str]:
    cloudformation = session.client("cloudformation")
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(KEPT))
    resources = cloudformation.describe_stack_resources(StackName=name)["StackResources"]
    return {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}


@pytest.mark.usefixtures("aws_mock")
def test_destroy_keeps_the_data_unless_purged() -> None:
    session = boto3.Session(region_name="us-east-1")
    physical = _stack(session, "mc-kept")
    session.client("s3").put_object(Bucket=physical["BlobBucket"], Key="backups/a.zip", Body=b"zip")
    assert sorted(retained_resources(session, "mc-kept")) == sorted([
        ("AWS::DynamoDB::Table", physical["ResourceTable"]), ("AWS::S3::Bucket", physical["BlobBucket"]),
        ("AWS::KMS::Key", physical["SecretsKey"])])
    sam = Sam()
    destroy(check_target("mc-kept", "us-east-1"), "sam", session=session, run=sam)
    assert sam.commands == [["sam", "delete", "--stack-name", "mc-kept", "--region", "us-east-1", "--no-prompts"]]
    assert physical["ResourceTable"] in session.client("dynamodb").list_tables()["TableNames"]

    done = purge(session, retained_resources(session, "mc-kept"))
    assert len(done) == 3
    assert physical["ResourceTable"] not in session.client("dynamodb").list_tables()["TableNames"]
    assert physical["BlobBucket"] not in {b["Name"] for b in session.client("s3").list_buckets()["Buckets"]}
    key = session.client("kms").describe_key(KeyId=physical["SecretsKey"])["KeyMetadata"]
    assert key["KeyState"] == "PendingDeletion"
