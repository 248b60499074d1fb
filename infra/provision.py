"""``python -m infra.provision``: make an edge device's AWS IoT identity and write its ``edge.yaml``, in one command.

    python -m infra.provision --thing pi-garage --stack mycontroller [--out-dir ./pi-garage]
    python -m infra.provision --thing pi-garage --policy <EdgePolicyName> --gateway-config gateways.yaml
    python -m infra.provision --thing pi-garage --revoke

Provisioning creates (or reuses) the thing, a new active certificate with its key, attaches the edge policy
(``--policy``, or the ``EdgePolicyName`` output of ``--stack``) to the certificate and the certificate to the
thing, and writes ``certificate.pem.crt``, ``private.pem.key`` (mode 0600), ``AmazonRootCA1.pem`` (when this
machine has it) and ``edge.yaml`` into ``--out-dir``: copy that directory to the device and start the agent.
``edge.id`` and the MQTT client id are the thing name: the policy lets the device use ``mc/<thing>/up``,
``mc/<thing>/down`` and its own shadow only. With ``--stack``, the uplink goes through IoT Basic Ingest to the
stack's ingest rule (its ``IngestRuleName`` output, as ``uplink.ingest_rule``: no messaging charge), and the
gateways of ``--gateway-config`` are bound to the thing in the stack's table before anything else
(``reserve_gateways``), as their first message would bind them (``chalicelib/core/identity.py``): an id another
device already owns stops provisioning there, instead of its messages being refused once the device runs.
``--revoke`` detaches, deactivates and deletes every certificate of the thing and deletes the thing.

An operator tool run on a workstation with AWS credentials, so it talks to boto3 directly. The private key
exists only in the API response and the key file: it is never printed, logged or put in an exception message.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from botocore.exceptions import BotoCoreError, ClientError

from edge.config import EdgeConfig, format_errors
from edge.schema import SectionError
from mycontroller_protocol.envelope import basic_ingest_topic

from .errors import InfraError

log = logging.getLogger("infra.provision")

CERT_FILE = "certificate.pem.crt"
KEY_FILE = "private.pem.key"
CA_FILE = "AmazonRootCA1.pem"
CONFIG_FILE = "edge.yaml"
SYSTEM_AMAZON_ROOT_CA = Path("/etc/ssl/certs/Amazon_Root_CA_1.pem")
"""Debian's ca-certificates ships Amazon Root CA 1 here; without it the agent uses the system trust store."""
STACK_POLICY_OUTPUT = "EdgePolicyName"
STACK_TABLE_OUTPUT = "TableName"
"""The stack output naming the resource table, where gateways are bound to their edge device."""
STACK_INGEST_RULE_OUTPUT = "IngestRuleName"
"""The stack output naming the ingest rule: the device publishes to it through IoT Basic Ingest."""
IOT_PORT = 8883
THING_NAME = re.compile(r"^[a-zA-Z0-9:_-]{1,128}$")
"""AWS IoT's thing-name alphabet, which is also inside the edge id's (``edge.config``)."""
EXIT_ERROR = 1
EXIT_USAGE = 2


class ProvisionError(InfraError):
    """Provisioning cannot go on; the message says what to fix (never contains key material)."""


@dataclass
class Provisioned:
    """What one provisioning run made: printed as the summary, returned to tests."""

    thing: str
    thing_created: bool
    certificate_id: str
    certificate_arn: str
    endpoint: str
    files: list[Path] = field(default_factory=list)
    ca_used: bool = False
    ingest_rule: str | None = None
    """The rule the device publishes to through IoT Basic Ingest (``None``: the plain uplink topic)."""


def _client_error_text(error: Exception) -> str:
    """The AWS error code and message (never the request or response, which may hold a key)."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        detail = response.get("Error", {})
        return f"{detail.get('Code', type(error).__name__)}: {detail.get('Message', '')}"
    return f"{type(error).__name__}: {error}"


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def load_gateways(path: Path | None) -> list[dict[str, Any]]:
    """The ``gateways:`` for edge.yaml from a YAML file: a list, or a mapping with ``gateways``; checked as the
    agent checks them, so a typo stops provisioning instead of the agent on the device."""
    if path is None:
        return []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise ProvisionError(f"cannot read gateway config {path}: {reason}") from None
    except yaml.YAMLError as error:
        raise ProvisionError(f"{path}: not valid YAML: {error}") from None
    if isinstance(data, dict) and "gateways" in data:
        data = data["gateways"]
    if data is None:
        data = []
    if not isinstance(data, list):
        raise ProvisionError(f"{path}: must be a list of gateways, or a mapping with a 'gateways' list")
    whole = {"edge": {"id": "check"}, "gateways": data}
    try:  # not parse_config: ``${NAME}`` references stay unexpanded, the device's environment fills them
        EdgeConfig.model_validate(whole)
    except SectionError as error:
        raise ProvisionError(format_errors(error, whole, str(path))) from None
    return data


def edge_config(thing: str, endpoint: str, *, ca: bool, cloud_config: bool, data_dir: str,
                gateways: list[dict[str, Any]], ingest_rule: str | None = None) -> dict[str, Any]:
    """The agent's config; TLS paths are relative, so the directory can be copied to the device as a whole. With
    the stack's ingest rule, the uplink goes through IoT Basic Ingest (no messaging charge)."""
    tls: dict[str, str] = {"cert": CERT_FILE, "key": KEY_FILE}
    if ca:
        tls = {"ca": CA_FILE, **tls}
    uplink: dict[str, Any] = {"type": "aws_iot", "endpoint": endpoint, "port": IOT_PORT, "client_id": thing,
                              "tls": tls}
    if ingest_rule:
        uplink["ingest_rule"] = ingest_rule
    return {
        "edge": {"id": thing, "cloud_config": cloud_config, "data_dir": data_dir},
        "uplink": uplink,
        "gateways": gateways,
    }


def _write_private(path: Path, text: str) -> None:
    """Written to a 0600 temporary file and renamed over the target: the key is never readable by others."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the mode of O_CREAT does not apply to a leftover temporary file
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            fd = -1
            handle.write(text)
    finally:
        if fd >= 0:
            os.close(fd)
    os.replace(tmp, path)


def _write_public(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def resolve_policy(session: Any, policy: str | None, stack: str | None) -> str:
    """The policy name given, or the ``EdgePolicyName`` output of the stack ``infra/`` deployed."""
    if policy:
        return policy
    if not stack:
        raise ProvisionError("give --policy <EdgePolicyName> or --stack <stack name>")
    cloudformation = session.client("cloudformation")
    try:
        stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except Exception as error:  # botocore ClientError: a missing stack is a ValidationError
        raise ProvisionError(f"cannot read stack {stack!r}: {_client_error_text(error)}") from None
    for output in (stacks[0].get("Outputs") or []) if stacks else []:
        if output.get("OutputKey") == STACK_POLICY_OUTPUT:
            return str(output["OutputValue"])
    raise ProvisionError(f"stack {stack!r} has no {STACK_POLICY_OUTPUT!r} output (is it the stack infra/ deployed?)")


def resolve_table(session: Any, stack: str) -> str | None:
    """The resource table of the stack (its ``TableName`` output), or ``None`` for a stack without one."""
    return _stack_output(session, stack, STACK_TABLE_OUTPUT)


def resolve_ingest_rule(session: Any, stack: str) -> str | None:
    """The stack's ingest rule (its ``IngestRuleName`` output), or ``None`` for a stack from before it had one."""
    return _stack_output(session, stack, STACK_INGEST_RULE_OUTPUT)


def _stack_output(session: Any, stack: str, key: str) -> str | None:
    try:
        stacks = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    except Exception as error:
        raise ProvisionError(f"cannot read stack {stack!r}: {_client_error_text(error)}") from None
    for output in (stacks[0].get("Outputs") or []) if stacks else []:
        if output.get("OutputKey") == key:
            return str(output["OutputValue"])
    return None


@dataclass
class Reservation:
    """Gateway ids of the device's file and their binding to its thing."""

    table: str
    bound: list[str] = field(default_factory=list)
    """Bound to the thing by this run (new, or without an edge before)."""
    kept: list[str] = field(default_factory=list)
    """The thing's already."""


def _stored_gateway(client: Any, table: str, gateway_id: str) -> tuple[dict[str, Any] | None, str]:
    """The stored gateway record and its document as stored (for a write conditional on it)."""
    from chalicelib.adapters.repository_dynamodb import record_key
    from chalicelib.core.model import Kind

    try:
        item = client.get_item(TableName=table, Key=record_key(Kind.GATEWAY, gateway_id), ConsistentRead=True,
                               ProjectionExpression="doc").get("Item")
    except Exception as error:
        raise ProvisionError(f"cannot read gateway {gateway_id!r} in table {table!r}: {_client_error_text(error)}"
                             ) from None
    if not item or "doc" not in item:
        return None, ""
    return json.loads(item["doc"]["S"]), str(item["doc"]["S"])


def reserve_gateways(session: Any, table: str, thing: str, gateway_ids: list[str]) -> Reservation:
    """Bind the gateways of the device's file to its thing, as their first message would: a new id is created
    bound to it (conditionally: a device racing for it wins or loses whole), one without an edge is claimed.

    Ids another thing owns are all named in a ``ProvisionError`` and nothing is written: the cloud would refuse
    their messages from this device, so the operator renames them (or moves them with ``edgeId``) first."""
    from chalicelib.adapters.repository_dynamodb import record_item
    from chalicelib.core.identity import claimed, owner_of
    from chalicelib.core.model import Gateway, Kind

    client = session.client("dynamodb")
    found = {gateway_id: _stored_gateway(client, table, gateway_id) for gateway_id in dict.fromkeys(gateway_ids)}
    stored = {gateway_id: record for gateway_id, (record, _doc) in found.items()}

    def refuse(owners: dict[str, str]) -> ProvisionError:
        taken = ", ".join(f"{gateway_id} (edge {owner})" for gateway_id, owner in sorted(owners.items()))
        return ProvisionError(f"gateway id(s) already belong to another edge device: {taken}; give this device's "
                              "gateways other ids in --gateway-config (ids are unique across all sites), or move "
                              "them to this thing by setting their edgeId through the API")

    foreign = {g: owner for g, record in stored.items() if (owner := owner_of(record)) not in (None, thing)}
    if foreign:
        raise refuse(foreign)
    reservation = Reservation(table)
    for gateway_id, record in stored.items():
        if record is not None and owner_of(record) == thing:
            reservation.kept.append(gateway_id)
            continue
        if record is None:
            new = Gateway(id=gateway_id, provider={"type": "unknown"}, edge_id=thing, cloud_config=False).record()
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            new = claimed(record, thing)
            condition = {"ConditionExpression": "doc = :doc",
                         "ExpressionAttributeValues": {":doc": {"S": found[gateway_id][1]}}}
        try:
            client.put_item(TableName=table, Item=record_item(Kind.GATEWAY, new), **condition)
        except Exception as error:
            if _error_code(error) != "ConditionalCheckFailedException":
                raise ProvisionError(f"cannot bind gateway {gateway_id!r}: {_client_error_text(error)}") from None
            owner = owner_of(_stored_gateway(client, table, gateway_id)[0])  # changed meanwhile: whose now?
            if owner != thing:
                raise refuse({gateway_id: owner or "(changed meanwhile; run again)"}) from None
            reservation.kept.append(gateway_id)
            continue
        reservation.bound.append(gateway_id)
        log.info("gateway %s bound to %s", gateway_id, thing)
    return reservation


def _data_endpoint(iot: Any, policy: str) -> str:
    """The account's IoT data endpoint, once the policy is known to exist."""
    try:
        iot.get_policy(policyName=policy)
    except Exception as error:
        raise ProvisionError(f"IoT policy {policy!r}: {_client_error_text(error)}") from None
    try:
        endpoint: str = iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
    except Exception as error:
        raise ProvisionError(f"cannot read the IoT data endpoint: {_client_error_text(error)}") from None
    return endpoint


def _ensure_thing(iot: Any, thing: str) -> bool:
    """Reuse the thing or create it; whether it was created."""
    try:
        iot.describe_thing(thingName=thing)
    except Exception as error:
        if _error_code(error) != "ResourceNotFoundException":
            raise ProvisionError(f"cannot read thing {thing!r}: {_client_error_text(error)}") from None
    else:
        log.info("reusing thing %s", thing)
        return False
    try:
        iot.create_thing(thingName=thing)
    except Exception as create_error:
        raise ProvisionError(f"cannot create thing {thing!r}: {_client_error_text(create_error)}") from None
    log.info("created thing %s", thing)
    return True


def provision(session: Any, thing: str, *, policy: str, out_dir: Path, gateways: list[dict[str, Any]],
              cloud_config: bool = True, data_dir: str = "data", force: bool = False,
              ca_source: Path | None = SYSTEM_AMAZON_ROOT_CA, ingest_rule: str | None = None) -> Provisioned:
    """Create (or reuse) the thing and a new certificate, attach them, write the device's directory.

    Everything that can be checked is checked before AWS is touched (thing name, files in the way, the policy
    exists), and a certificate made by a run that then fails is deleted again, so a failed run leaves no
    orphaned active certificate behind.
    """
    if not THING_NAME.match(thing):
        raise ProvisionError(f"thing name {thing!r} must be 1-128 letters, digits, ':', '_' or '-'")
    ca = ca_source is not None and ca_source.is_file()
    targets = [out_dir / CERT_FILE, out_dir / KEY_FILE, out_dir / CONFIG_FILE] + ([out_dir / CA_FILE] if ca else [])
    existing = [str(path) for path in targets if path.exists()]
    if existing and not force:
        raise ProvisionError(f"refusing to overwrite {', '.join(existing)} (use --force to replace them)")
    iot = session.client("iot")
    endpoint = _data_endpoint(iot, policy)
    created = _ensure_thing(iot, thing)

    try:
        response = iot.create_keys_and_certificate(setAsActive=True)
    except Exception as error:
        raise ProvisionError(f"cannot create a certificate: {_client_error_text(error)}") from None
    cert_arn: str = response["certificateArn"]
    cert_id: str = response["certificateId"]
    cert_pem: str = response["certificatePem"]
    private_key: str = response["keyPair"]["PrivateKey"]
    del response  # holds the key; keep it out of any traceback's locals from here on
    log.info("created certificate %s", cert_id)
    try:
        iot.attach_policy(policyName=policy, target=cert_arn)
        iot.attach_thing_principal(thingName=thing, principal=cert_arn)
        out_dir.mkdir(parents=True, exist_ok=True)
        files = [out_dir / CERT_FILE, out_dir / KEY_FILE]
        _write_public(out_dir / CERT_FILE, cert_pem)
        _write_private(out_dir / KEY_FILE, private_key)
        if ca:
            assert ca_source is not None
            shutil.copyfile(ca_source, out_dir / CA_FILE)
            files.append(out_dir / CA_FILE)
        config = edge_config(thing, endpoint, ca=ca, cloud_config=cloud_config, data_dir=data_dir, gateways=gateways,
                             ingest_rule=ingest_rule)
        EdgeConfig.model_validate(config)  # the agent's schema; ``${NAME}`` stays for the device's environment
        header = (f"# Edge agent config for thing {thing}, written by `python -m infra.provision`.\n"
                  f"# Run: python -m edge --config {CONFIG_FILE}   (paths are relative to this file)\n")
        _write_public(out_dir / CONFIG_FILE, header + yaml.safe_dump(config, sort_keys=False))
        files.append(out_dir / CONFIG_FILE)
    except Exception as error:
        private_key = ""
        _delete_certificate(iot, cert_arn, cert_id, [thing])
        message = _client_error_text(error) if getattr(error, "response", None) else f"{type(error).__name__}: {error}"
        raise ProvisionError(f"provisioning failed, certificate {cert_id} deleted again: {message}") from None
    private_key = ""
    log.info("wrote %s", ", ".join(str(path) for path in files))
    return Provisioned(thing=thing, thing_created=created, certificate_id=cert_id, certificate_arn=cert_arn,
                       endpoint=endpoint, files=files, ca_used=ca, ingest_rule=ingest_rule)


def _retry(call: Any, attempts: int = 5, delay_s: float = 1.0) -> Any:
    """IoT detaches are eventually consistent: a delete right after one may still see the attachment."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception as error:
            if attempt == attempts - 1 or _error_code(error) not in ("DeleteConflictException",
                                                                     "CertificateStateException"):
                raise
            time.sleep(delay_s * (attempt + 1))
    return None


def _delete_certificate(iot: Any, cert_arn: str, cert_id: str, things: list[str]) -> None:
    """Detach from the things and every policy, deactivate, delete. Best effort: each step is logged."""
    for thing in things:
        try:
            iot.detach_thing_principal(thingName=thing, principal=cert_arn)
        except Exception as error:
            log.warning("cannot detach certificate %s from %s: %s", cert_id, thing, _client_error_text(error))
    try:
        for page in iot.get_paginator("list_attached_policies").paginate(target=cert_arn):
            for item in page.get("policies", []):
                iot.detach_policy(policyName=item["policyName"], target=cert_arn)
        iot.update_certificate(certificateId=cert_id, newStatus="INACTIVE")
        _retry(lambda: iot.delete_certificate(certificateId=cert_id))
    except Exception as error:
        log.warning("cannot delete certificate %s: %s", cert_id, _client_error_text(error))
        raise ProvisionError(f"cannot delete certificate {cert_id}: {_client_error_text(error)}") from None


def revoke(session: Any, thing: str) -> list[str]:
    """Detach, deactivate and delete every certificate of the thing, then delete the thing; the certificate ids.

    A certificate also attached to another thing is only detached from this one (deleting it would cut the
    other device off)."""
    iot = session.client("iot")
    try:
        principals = [p for page in iot.get_paginator("list_thing_principals").paginate(thingName=thing)
                      for p in page.get("principals", [])]
    except Exception as error:
        raise ProvisionError(f"cannot read thing {thing!r}: {_client_error_text(error)}") from None
    revoked: list[str] = []
    for arn in principals:
        if ":cert/" not in arn:
            iot.detach_thing_principal(thingName=thing, principal=arn)
            continue
        cert_id = arn.rsplit("/", 1)[1]
        others = [t for page in iot.get_paginator("list_principal_things").paginate(principal=arn)
                  for t in page.get("things", []) if t != thing]
        if others:
            iot.detach_thing_principal(thingName=thing, principal=arn)
            log.warning("certificate %s is also attached to %s: detached only", cert_id, ", ".join(others))
            continue
        _delete_certificate(iot, arn, cert_id, [thing])
        revoked.append(cert_id)
        log.info("deleted certificate %s", cert_id)
    try:
        _retry(lambda: iot.delete_thing(thingName=thing))
    except Exception as error:
        raise ProvisionError(f"cannot delete thing {thing!r}: {_client_error_text(error)}") from None
    log.info("deleted thing %s", thing)
    return revoked


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m infra.provision",
        description="Provision an edge device on AWS IoT Core and write its edge.yaml (or --revoke it).")
    parser.add_argument("--thing", required=True, help="thing name = edge.id = MQTT client id")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--policy", help="the edge IoT policy's name (the stack's EdgePolicyName output)")
    source.add_argument("--stack", help="read the policy name from this CloudFormation stack's EdgePolicyName output")
    parser.add_argument("--region", help="AWS region (default: the profile's or AWS_REGION)")
    parser.add_argument("--profile", help="AWS credentials profile")
    parser.add_argument("--out-dir", type=Path, help="where the files go (default ./<thing>)")
    parser.add_argument("--gateway-config", type=Path,
                        help="YAML with the device's gateways (a list, or {gateways: [...]})")
    parser.add_argument("--cloud-config", action=argparse.BooleanOptionalAction, default=True,
                        help="let the agent also run the gateways the cloud assigns to it (default: on)")
    parser.add_argument("--data-dir", default="data",
                        help="edge.data_dir on the device (default 'data', beside edge.yaml; the systemd unit "
                             "wants /var/lib/mycontroller-edge)")
    parser.add_argument("--ca", type=Path, default=os.environ.get("MC_IOT_ROOT_CA") or None,
                        help="the root CA the device trusts for the endpoint (default: Amazon Root CA 1; "
                             "MC_IOT_ROOT_CA, which the cloud twin's ready line prints)")
    parser.add_argument("--force", action="store_true", help="overwrite files already in --out-dir")
    parser.add_argument("--revoke", action="store_true",
                        help="delete the thing's certificates and the thing instead of provisioning")
    return parser


def _session(region: str | None, profile: str | None) -> Any:
    import boto3

    return boto3.session.Session(region_name=region, profile_name=profile)


SDK_LOGGERS = ("botocore", "boto3", "urllib3")
"""At DEBUG botocore logs response bodies, and create_keys_and_certificate's body holds the private key."""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    levels = {name: logging.getLogger(name).level for name in SDK_LOGGERS}
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        return _run(args)
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _run(args: argparse.Namespace) -> int:
    try:
        session = _session(args.region, args.profile)
        if args.revoke:
            revoked = revoke(session, args.thing)
            print(f"revoked thing {args.thing}: deleted {len(revoked)} certificate(s)"
                  + (f" ({', '.join(revoked)})" if revoked else ""))
            print("the device's local files (certificate, key, edge.yaml) are unchanged; delete them there")
            return 0
        if not (args.policy or args.stack):
            print("provision: give --policy <EdgePolicyName> or --stack <stack name>", file=sys.stderr)
            return EXIT_USAGE
        out_dir: Path = args.out_dir or Path(args.thing)
        gateways = load_gateways(args.gateway_config)
        policy = resolve_policy(session, args.policy, args.stack)
        table = resolve_table(session, args.stack) if args.stack else None
        ingest_rule = resolve_ingest_rule(session, args.stack) if args.stack else None
        reservation = reserve_gateways(session, table, args.thing, [str(g["id"]) for g in gateways]) \
            if table and gateways else None
        result = provision(session, args.thing, policy=policy, out_dir=out_dir, gateways=gateways,
                           cloud_config=args.cloud_config, data_dir=args.data_dir, force=args.force,
                           ca_source=args.ca or SYSTEM_AMAZON_ROOT_CA, ingest_rule=ingest_rule)
    except ProvisionError as error:
        print(f"provision: {error}", file=sys.stderr)
        return EXIT_ERROR
    except (BotoCoreError, ClientError) as error:  # no credentials or region, a profile missing, access denied…
        print(f"provision: {_client_error_text(error)}", file=sys.stderr)
        return EXIT_ERROR
    print(format_summary(result, policy, reservation))
    return 0


def format_summary(result: Provisioned, policy: str, reservation: Reservation | None = None) -> str:
    config = result.files[-1]
    up = f"mc/{result.thing}/up"
    if result.ingest_rule:
        up = f"{basic_ingest_topic(result.ingest_rule, up)} (IoT Basic Ingest)"
    lines = [
        f"thing        {result.thing} ({'created' if result.thing_created else 'existing, reused'})",
        f"certificate  {result.certificate_id} (active, policy {policy})",
        f"endpoint     {result.endpoint}:{IOT_PORT}",
        f"topics       {up}, mc/{result.thing}/down (and its own shadow)",
        "files        " + "\n             ".join(str(path) for path in result.files),
    ]
    if reservation is not None:
        ids = sorted([*reservation.bound, *reservation.kept])
        lines.append(f"gateways     {', '.join(ids)}: this thing's only (table {reservation.table})")
    if not result.ca_used:
        lines.append(f"CA           none written ({SYSTEM_AMAZON_ROOT_CA} not here): "
                     "the agent uses the system trust store")
    if not result.thing_created:
        lines.append("note         earlier certificates of this thing stay active; --revoke removes them all")
    lines += [
        "next         copy the directory to the device (keep private.pem.key readable only by the agent's user), then",
        f"             python -m edge check --config {config}",
        f"             python -m edge --config {config}",
        "             or as a service: edge/mycontroller-edge.service (edge/README.md, 'Run it as a service')",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
