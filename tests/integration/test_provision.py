"""``python -m infra.provision`` under moto: the thing, its certificate and policy, the device's files, revoke.

The command runs through ``main(argv)`` as an operator would run it; AWS state is read back with boto3. The
private key must reach ``private.pem.key`` (0600) and nowhere else: not stdout, not stderr, not a log record
(even with the root logger at DEBUG, where botocore would log response bodies).
"""

from __future__ import annotations

import json
import logging
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from edge.config import load_config
from infra import provision as prov

REGION = "us-east-1"
POLICY = "mc-edge-policy"
STACK = "mycontroller-test"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def iot(aws_mock: None) -> Iterator[Any]:
    """The IoT client, with the edge policy and a stack whose ``EdgePolicyName`` output names it."""
    client = boto3.client("iot", region_name=REGION)
    client.create_policy(policyName=POLICY, policyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]}))
    boto3.client("cloudformation", region_name=REGION).create_stack(StackName=STACK, TemplateBody=json.dumps({
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"EdgePolicyName": {"Value": POLICY}}}))
    yield client


def _key_lines(out_dir: Path) -> list[str]:
    """The base64 body lines of the written key: none of them may appear anywhere else."""
    return [line for line in (out_dir / prov.KEY_FILE).read_text().splitlines() if line and "-----" not in line]


def _assert_no_key(out_dir: Path, *texts: str) -> None:
    lines = _key_lines(out_dir)
    assert lines
    for text in texts:
        assert "PRIVATE KEY" not in text
        for line in lines:
            assert line not in text


def _principals(iot: Any, thing: str) -> list[str]:
    return list(iot.list_thing_principals(thingName=thing)["principals"])


def test_provision_writes_the_device_directory(iot: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "pi-garage"

    assert prov.main(["--thing", "pi-garage", "--policy", POLICY, "--region", REGION, "--out-dir", str(out)]) == 0

    captured = capsys.readouterr()
    principals = _principals(iot, "pi-garage")
    assert len(principals) == 1
    cert_arn = principals[0]
    cert_id = cert_arn.rsplit("/", 1)[1]
    assert [p["policyName"] for p in iot.list_attached_policies(target=cert_arn)["policies"]] == [POLICY]
    description = iot.describe_certificate(certificateId=cert_id)["certificateDescription"]
    assert description["status"] == "ACTIVE"
    assert (out / prov.CERT_FILE).read_text() == description["certificatePem"]
    key = out / prov.KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert not list(out.glob(".*.tmp"))

    config = load_config(out / prov.CONFIG_FILE)
    endpoint, port = config.uplink.address  # moto makes up a new endpoint on each describe_endpoint
    assert endpoint.endswith("-ats.iot.us-east-1.amazonaws.com") and port == 8883
    assert config.edge.id == "pi-garage" and config.edge.cloud_config is True
    assert config.edge.data_dir == (out / "data").resolve()
    assert config.uplink.type == "aws_iot"
    assert config.client_id == "pi-garage"
    assert config.uplink.tls is not None
    assert config.uplink.tls.cert == (out / prov.CERT_FILE).resolve()
    assert config.uplink.tls.key == key.resolve()
    if prov.SYSTEM_AMAZON_ROOT_CA.is_file():
        assert config.uplink.tls.ca == (out / prov.CA_FILE).resolve()
        assert (out / prov.CA_FILE).read_bytes() == prov.SYSTEM_AMAZON_ROOT_CA.read_bytes()
    else:
        assert config.uplink.tls.ca is None
    assert config.gateways == []

    for text in (cert_id, endpoint, "python -m edge --config", "mycontroller-edge.service", str(key)):
        assert text in captured.out
    _assert_no_key(out, captured.out, captured.err, caplog.text)
    assert "created certificate" in caplog.text  # the log is captured at all, so its absence of the key means it


def test_stack_output_gateways_and_edge_check(iot: Any, tmp_path: Path) -> None:
    gateways = tmp_path / "gateways.yaml"
    gateways.write_text("gateways:\n"
                        "  - id: house\n"
                        "    provider:\n"
                        "      type: mysensors_v2\n"
                        "      protocol: {type: ethernet, server: 'tcp://192.168.1.50:5003'}\n"
                        "  - id: plugs\n"
                        "    provider: {type: tasmota, protocol: {type: mqtt, broker: 'tcp://localhost:1883',\n"
                        "               password: '${TASMOTA_PASSWORD}'}}\n")
    out = tmp_path / "pi-cellar"

    assert prov.main(["--thing", "pi-cellar", "--stack", STACK, "--out-dir", str(out), "--gateway-config",
                      str(gateways), "--no-cloud-config", "--data-dir", "/var/lib/mycontroller-edge"]) == 0

    cert_arn = _principals(iot, "pi-cellar")[0]
    assert [p["policyName"] for p in iot.list_attached_policies(target=cert_arn)["policies"]] == [POLICY]
    written = (out / prov.CONFIG_FILE).read_text()
    assert "${TASMOTA_PASSWORD}" in written  # the reference is kept for the device's environment to fill
    check = subprocess.run([sys.executable, "-m", "edge", "check", "--config", str(out / prov.CONFIG_FILE)],
                           cwd=ROOT, capture_output=True, text=True, timeout=60,
                           env={"PATH": "/usr/bin:/bin", "TASMOTA_PASSWORD": "hunter2"})
    assert check.returncode == 0, check.stderr
    shown = json.loads(check.stdout)
    assert shown["edge"] == {"id": "pi-cellar", "data_dir": "/var/lib/mycontroller-edge", "status_interval_s": 5.0,
                             "log_level": "INFO", "cloud_config": False, "shadow_name": shown["edge"]["shadow_name"]}
    assert [g["id"] for g in shown["gateways"]] == ["house", "plugs"]
    assert shown["gateways"][1]["provider"]["protocol"]["password"] == "***"
    _assert_no_key(out, check.stdout, check.stderr)


def test_refuses_to_overwrite_then_force_reuses_thing_with_new_certificate(
        iot: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pi-attic"
    argv = ["--thing", "pi-attic", "--policy", POLICY, "--out-dir", str(out)]
    assert prov.main(argv) == 0
    first_arn = _principals(iot, "pi-attic")[0]
    first_key = (out / prov.KEY_FILE).read_text()
    certificates = len(iot.list_certificates()["certificates"])
    capsys.readouterr()

    assert prov.main(argv) == prov.EXIT_ERROR
    err = capsys.readouterr().err
    assert "refusing to overwrite" in err and "--force" in err
    assert _principals(iot, "pi-attic") == [first_arn]
    assert len(iot.list_certificates()["certificates"]) == certificates  # nothing made before refusing
    assert (out / prov.KEY_FILE).read_text() == first_key

    assert prov.main([*argv, "--force"]) == 0
    captured = capsys.readouterr()
    assert "existing, reused" in captured.out
    principals = _principals(iot, "pi-attic")
    assert len(principals) == 2 and first_arn in principals
    second_arn = next(p for p in principals if p != first_arn)
    assert second_arn.rsplit("/", 1)[1] in captured.out
    assert (out / prov.KEY_FILE).read_text() != first_key
    assert stat.S_IMODE((out / prov.KEY_FILE).stat().st_mode) == 0o600
    tls = load_config(out / prov.CONFIG_FILE).uplink.tls
    assert tls is not None
    assert (tls.cert, tls.key) == ((out / prov.CERT_FILE).resolve(), (out / prov.KEY_FILE).resolve())
    assert (out / prov.CERT_FILE).read_text() == iot.describe_certificate(
        certificateId=second_arn.rsplit("/", 1)[1])["certificateDescription"]["certificatePem"], "the new certificate"
    _assert_no_key(out, captured.out, captured.err)


def test_revoke_deletes_certificates_and_thing(iot: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pi-shed"
    argv = ["--thing", "pi-shed", "--policy", POLICY, "--out-dir", str(out)]
    assert prov.main(argv) == 0
    assert prov.main([*argv, "--force"]) == 0
    cert_ids = {arn.rsplit("/", 1)[1] for arn in _principals(iot, "pi-shed")}
    assert len(cert_ids) == 2
    capsys.readouterr()

    assert prov.main(["--thing", "pi-shed", "--revoke"]) == 0

    assert "deleted 2 certificate(s)" in capsys.readouterr().out
    assert "pi-shed" not in [t["thingName"] for t in iot.list_things()["things"]]
    remaining = {c["certificateId"] for c in iot.list_certificates()["certificates"]}
    assert not cert_ids & remaining
    assert "pi-shed" not in json.dumps(iot.list_targets_for_policy(policyName=POLICY)["targets"])
    assert prov.main(["--thing", "pi-shed", "--revoke"]) == prov.EXIT_ERROR  # gone: says so, no traceback


def test_bad_gateway_config_stops_before_aws(iot: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gateways = tmp_path / "gateways.yaml"
    gateways.write_text("- id: house\n  provider: {type: mysensors_v2, protocol: {type: serial}}\n")
    things = len(iot.list_things()["things"])

    assert prov.main(["--thing", "pi-bad", "--policy", POLICY, "--out-dir", str(tmp_path / "o"),
                      "--gateway-config", str(gateways)]) == prov.EXIT_ERROR

    err = capsys.readouterr().err
    assert "gateways[0]" in err and "portname" in err
    assert len(iot.list_things()["things"]) == things
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["--policy", "no-such-policy"], "no-such-policy"),
    (["--stack", "no-such-stack"], "no-such-stack"),
    ([], "--policy"),
    (["--policy", POLICY, "--thing", "bad name!"], "thing name"),
])
def test_clear_errors_and_nothing_created(iot: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          argv: list[str], message: str) -> None:
    things = len(iot.list_things()["things"])
    certificates = len(iot.list_certificates()["certificates"])

    code = prov.main(["--thing", "pi-none", "--out-dir", str(tmp_path / "o"), *argv])

    assert code in (prov.EXIT_ERROR, prov.EXIT_USAGE)
    assert message in capsys.readouterr().err
    assert len(iot.list_things()["things"]) == things
    assert len(iot.list_certificates()["certificates"]) == certificates


def test_without_system_ca_the_trust_store_is_used(iot: Any, tmp_path: Path) -> None:
    out = tmp_path / "pi-noca"
    result = prov.provision(boto3.session.Session(region_name=REGION), "pi-noca", policy=POLICY, out_dir=out,
                            gateways=[], ca_source=tmp_path / "missing.pem")

    assert not result.ca_used and not (out / prov.CA_FILE).exists()
    config = load_config(out / prov.CONFIG_FILE)
    assert config.uplink.tls is not None and config.uplink.tls.ca is None and config.uplink.tls.cert is not None
    assert "no CA" not in prov.format_summary(result, POLICY)
    assert "system trust store" in prov.format_summary(result, POLICY)


def test_failure_after_the_certificate_deletes_it_again(iot: Any, tmp_path: Path) -> None:
    in_the_way = tmp_path / "not-a-dir"
    in_the_way.write_text("a file where the directory should go")
    certificates = {c["certificateId"] for c in iot.list_certificates()["certificates"]}

    with pytest.raises(prov.ProvisionError, match="deleted again"):
        prov.provision(boto3.session.Session(region_name=REGION), "pi-fail", policy=POLICY, out_dir=in_the_way,
                       gateways=[])

    assert {c["certificateId"] for c in iot.list_certificates()["certificates"]} == certificates
    assert _principals(iot, "pi-fail") == []


def test_no_region_is_a_clear_error(iot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))

    assert prov.main(["--thing", "pi-x", "--policy", POLICY, "--out-dir", str(tmp_path / "o")]) == prov.EXIT_ERROR

    assert "region" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_the_file_gateways_are_bound_to_the_thing_and_an_id_another_device_owns_stops_provisioning(
        iot: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from chalicelib.adapters.repository_dynamodb import DynamoDBRepository, create_table
    from chalicelib.core.model import Gateway, Kind

    table, stack = "mc-identity-table", "mc-identity"
    create_table(table, REGION)
    boto3.client("cloudformation", region_name=REGION).create_stack(StackName=stack, TemplateBody=json.dumps({
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"EdgePolicyName": {"Value": POLICY}, "TableName": {"Value": table}}}))
    repository = DynamoDBRepository(table, REGION)
    repository.put(Kind.GATEWAY, Gateway(id="old", provider={"type": "mysensors_v2"}, labels={"room": "hall"}).record())

    def gateways(*ids: str) -> str:
        path = tmp_path / f"{'-'.join(ids)}.yaml"
        path.write_text("gateways:\n" + "".join(f"  - id: {gateway_id}\n    provider: {{type: system_monitor}}\n"
                                               for gateway_id in ids))
        return str(path)

    assert prov.main(["--thing", "pi-north", "--stack", stack, "--out-dir", str(tmp_path / "north"),
                      "--gateway-config", gateways("house", "old")]) == 0
    assert "gateways     house, old: this thing's only" in capsys.readouterr().out
    house, old = repository.get(Kind.GATEWAY, "house"), repository.get(Kind.GATEWAY, "old")
    assert house is not None and (house["edgeId"], house["cloudConfig"], house["provider"]) == (
        "pi-north", False, {"type": "unknown"})  # the processor takes the type from the first message
    assert old is not None and (old["edgeId"], old["labels"]) == ("pi-north", {"room": "hall"})  # claimed

    things, certificates = len(iot.list_things()["things"]), len(iot.list_certificates()["certificates"])
    assert prov.main(["--thing", "pi-south", "--stack", stack, "--out-dir", str(tmp_path / "south"),
                      "--gateway-config", gateways("barn", "house")]) == prov.EXIT_ERROR
    err = capsys.readouterr().err
    assert "house (edge pi-north)" in err and "other ids" in err
    assert repository.get(Kind.GATEWAY, "barn") is None, "nothing bound when one id is taken"
    assert (len(iot.list_things()["things"]), len(iot.list_certificates()["certificates"])) == (things, certificates)
    assert not (tmp_path / "south").exists()

    assert prov.main(["--thing", "pi-north", "--stack", stack, "--out-dir", str(tmp_path / "north"), "--force",
                      "--gateway-config", gateways("house", "old")]) == 0  # its own again: nothing to change
    assert (repository.get(Kind.GATEWAY, "house") or {})["edgeId"] == "pi-north"


def test_a_stack_with_an_ingest_rule_gets_its_devices_publishing_through_basic_ingest(
        iot: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """#17: the stack's ``IngestRuleName`` output becomes ``uplink.ingest_rule``: the agent publishes to
    ``$aws/rules/<rule>/mc/<thing>/up`` (no IoT messaging charge); a stack without it keeps the plain topic."""
    boto3.client("cloudformation", region_name=REGION).create_stack(StackName="mc-basic", TemplateBody=json.dumps({
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"EdgePolicyName": {"Value": POLICY}, "IngestRuleName": {"Value": "mc_basic_ingest"}}}))
    out = tmp_path / "pi-basic"
    assert prov.main(["--thing", "pi-basic", "--stack", "mc-basic", "--region", REGION, "--out-dir", str(out)]) == 0
    assert load_config(out / prov.CONFIG_FILE).uplink.ingest_rule == "mc_basic_ingest"
    assert "$aws/rules/mc_basic_ingest/mc/pi-basic/up (IoT Basic Ingest)" in capsys.readouterr().out

    plain = tmp_path / "pi-plain"
    assert prov.main(["--thing", "pi-plain", "--stack", STACK, "--region", REGION, "--out-dir", str(plain)]) == 0
    assert load_config(plain / prov.CONFIG_FILE).uplink.ingest_rule is None
