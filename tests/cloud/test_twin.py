"""The deployed shape end to end, on the cloud twin (``infra/twin``): what a device and a user see of the stack.

A device joins as on AWS (``infra.provision`` against the twin's AWS endpoint) and its edge agent runs unchanged
with a MySensors serial gateway on a pseudo-terminal; its messages go broker → IoT rule → SQS → the ingest
function → DynamoDB → the REST API and a subscribed websocket, and a command from the API comes back to the pty as
the exact MySensors line. Identity, the dead-letter queue, automation (a task's webhook, a cron schedule through
EventBridge Scheduler) and the role checks are each a test.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from websockets.sync.client import connect

from tests.cloud.helpers import ROOT, CloudTwin, Device, Webhook, wait_until

GATEWAY = "serial1"
TEMP = f"field:{GATEWAY}.1.1.V_TEMP"
LIGHT = f"field:{GATEWAY}.1.3.V_STATUS"


@pytest.fixture(scope="module")
def first(twin: CloudTwin, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Device]:
    """Thing ``pi-a`` with its agent running and a MySensors node presented (a temperature and a light)."""
    device = Device(twin, "pi-a", tmp_path_factory.mktemp("devices")).start()
    try:
        device.write("0;255;3;0;14;Gateway startup complete.", "1;255;0;0;17;2.3.2", "1;255;3;0;11;Kitchen",
                     "1;1;0;0;6;temperature", "1;3;0;0;3;light", "1;1;1;0;0;21.5", "1;3;1;0;2;0")
        wait_until(lambda: _field(twin, TEMP) is not None and _field(twin, LIGHT) is not None, 60,
                   "the presented fields in the REST API")
        yield device
    finally:
        device.stop()


def _field(twin: CloudTwin, quick_id: str) -> dict[str, Any] | None:
    status, answer = twin.api("GET", f"/api/field/{quick_id}")
    return answer if status == 200 else None


class MqttDevice:
    """A raw MQTT 5 connection with a thing's certificate (what a rogue firmware on that device could do)."""

    def __init__(self, twin: CloudTwin, cert: Path, key: Path, client_id: str) -> None:
        self.acks: dict[int, Any] = {}
        self.messages: list[tuple[str, bytes]] = []
        self.connected = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        context = ssl.create_default_context(cafile=twin.info["iot_ca"])
        context.load_cert_chain(str(cert), str(key))
        self.client.tls_set_context(context)
        self.client.on_connect = lambda c, u, f, reason, p: self.connected.set()
        self.client.on_subscribe = lambda c, u, mid, codes, p: self.acks.__setitem__(mid, codes)
        self.client.on_publish = lambda c, u, mid, code, p: self.acks.__setitem__(mid, code)
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, bytes(m.payload)))
        self.client.connect(twin.info["iot_endpoint"], twin.info["iot_port"], keepalive=30)
        self.client.loop_start()
        assert self.connected.wait(15), "the broker did not accept the device's certificate"

    def subscribe(self, topic: str) -> int:
        """The SUBACK reason code (>= 0x80: refused)."""
        _, mid = self.client.subscribe(topic, qos=1)
        assert mid is not None
        codes = wait_until(lambda: self.acks.get(mid), 10, f"SUBACK for {topic}")
        return int(codes[0].value)

    def publish(self, topic: str, payload: bytes) -> int:
        """The PUBACK reason code (>= 0x80: refused)."""
        info = self.client.publish(topic, payload, qos=1)
        code = wait_until(lambda: self.acks.get(info.mid), 10, f"PUBACK for {topic}")
        return int(code.value)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _publish_body(gateway: str, raw: str) -> bytes:
    from mycontroller_protocol.envelope import Envelope, encode_publish

    envelope = Envelope(gateway, "mysensors_v2", int(time.time() * 1000), int(time.time() * 1000),
                        uuid.uuid4().hex, raw)
    return encode_publish([envelope]).encode()


# --------------------------------------------------------------------------------------------- the stack


def test_the_stack_is_in_moto_with_its_outputs_and_what_the_twin_plays_or_lacks_is_listed(twin: CloudTwin) -> None:
    assert set(twin.info) >= {"api", "ws", "console", "aws_endpoint", "iot_endpoint", "iot_ca", "stack"}
    stack = twin.client("cloudformation").describe_stacks(StackName=twin.stack)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["EdgePolicyName"] and twin.client("iot").get_policy(policyName=outputs["EdgePolicyName"])
    table = outputs["TableName"]
    assert twin.client("dynamodb").describe_table(TableName=table)["Table"]["TableStatus"] == "ACTIVE"
    status = twin.status()
    mappings = [name for name, why in status["played_by_twin"].items() if "EventSourceMapping" in why]
    assert len(mappings) == len(status["mappings"]) >= 5
    for logical, reason in status["not_created"].items():  # only what a condition leaves out, nothing unknown
        assert "condition" in reason, f"{logical} was not created: {reason}"
    assert not status["problems"], status["problems"]
    assert not twin.refusals_at_start, twin.refusals_at_start
    with pytest.raises(Exception) as refused:  # a certificate of another CA is refused by the broker
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "intruder")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
        directory = Path(twin.workdir) / "intruder"
        directory.mkdir(exist_ok=True)
        (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (directory / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                              serialization.PrivateFormat.PKCS8,
                                                              serialization.NoEncryption()))
        MqttDevice(twin, directory / "cert.pem", directory / "key.pem", "intruder")
    assert refused.value is not None


def test_the_console_the_rest_api_and_the_websocket_share_one_origin_as_the_template_routes_them(
        twin: CloudTwin) -> None:
    """The console URL serves the single page (its own routes included) and, where the template routes them
    there (its CloudFront behaviours), the REST API and the websocket; a gone connection is API Gateway's 410."""
    import urllib.request

    console = twin.info["console"].rstrip("/")
    if (ROOT / "frontend" / "dist" / "index.html").is_file():  # `make test` builds it (with npm)
        with urllib.request.urlopen(f"{console}/fields/x.1.1.V", timeout=30) as response:
            assert response.status == 200 and response.headers["Content-Type"].startswith("text/html")
    status, answer = twin.api("GET", "/api/status", token="")
    assert status == 200 and answer["status"] == "ok"
    if twin.status()["played_by_twin"].get("ConsoleDistribution"):
        with urllib.request.urlopen(f"{console}/api/status", timeout=30) as response:
            assert json.loads(response.read())["status"] == "ok"
        with connect(f"{console.replace('http', 'ws', 1)}/api/ws?access_token={twin.token}", open_timeout=30) as ws:
            ws.send(json.dumps({"type": "ping"}))
            assert json.loads(ws.recv(timeout=30)) == {"type": "pong"}
    import boto3

    management = boto3.client(
        "apigatewaymanagementapi", endpoint_url=f"{twin.info['aws_endpoint']}/{twin.info['ws'].rsplit('/', 1)[1]}",
        region_name=twin.info["region"], aws_access_key_id="operator", aws_secret_access_key="operator")
    with pytest.raises(management.exceptions.GoneException):
        management.post_to_connection(ConnectionId="gone-connection=", Data=b"{}")


# --------------------------------------------------------------------------------------------- a device


def test_a_device_joins_as_on_aws_and_its_values_reach_dynamodb_the_api_and_a_websocket(
        twin: CloudTwin, first: Device) -> None:
    uplink = first.config["uplink"]
    assert (uplink["type"], uplink["endpoint"], uplink["port"]) == ("aws_iot", twin.info["iot_endpoint"], 8883)
    assert uplink["ingest_rule"] == twin.stack.replace("-", "_") + "_ingest"  # IoT Basic Ingest (#17)
    assert twin.status()["iot"]["basic_ingest"] > 0, "the agent publishes through Basic Ingest"
    assert (first.dir / uplink["tls"]["ca"]).read_bytes() == Path(twin.info["iot_ca"]).read_bytes()
    node = twin.ok("GET", f"/api/node/node:{GATEWAY}.1")
    assert node["name"] == "Kitchen" and node["gatewayId"] == GATEWAY
    table = {o["OutputKey"]: o["OutputValue"] for o in twin.client("cloudformation").describe_stacks(
        StackName=twin.stack)["Stacks"][0]["Outputs"]}["TableName"]
    items = twin.client("dynamodb").scan(TableName=table)["Items"]
    assert any(f"{GATEWAY}.1.1.V_TEMP" in json.dumps(item) for item in items)

    with connect(f"{twin.info['ws']}?access_token={twin.token}", open_timeout=30) as socket:
        socket.send(json.dumps({"type": "subscribe", "id": "temp", "filter": {"quickIds": [TEMP]}}))
        assert json.loads(socket.recv(timeout=30)) == {"type": "subscribed", "id": "temp"}
        first.write("1;1;1;0;0;23.25")
        deadline = time.monotonic() + 30
        while True:  # an event of the presentation may still be on its way: wait for this value's
            message = json.loads(socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("type") == "event" and message["data"]["entity"]["current"]["value"] == 23.25:
                break
        assert message["subscriptions"] == ["temp"]
        assert message["data"]["entityQuickId"] == TEMP
        assert message["data"]["entity"]["current"]["value"] == 23.25
    assert _field(twin, TEMP)["current"]["value"] == 23.25  # type: ignore[index]


def test_a_toggle_from_the_api_reaches_the_pty_as_the_exact_mysensors_line(twin: CloudTwin, first: Device) -> None:
    assert first.pty is not None
    first.pty.poll_lines()
    assert _field(twin, LIGHT)["current"]["value"] in (0, False, "0")  # type: ignore[index]
    answer = twin.ok("POST", "/api/action", [{"resource": LIGHT, "payload": "toggle"}])
    assert answer["sent"] == 1
    lines = wait_until(lambda: [line.strip() for line in first.pty.poll_lines() if line.strip()], 30,  # type: ignore[union-attr]
                       "the command on the serial line")
    assert lines == ["1;3;1;0;2;1"]


def test_a_gateway_assigned_from_the_api_runs_on_the_edge_through_its_shadow(twin: CloudTwin, first: Device) -> None:
    """iot-data shadow update → delta to the device → the agent starts the gateway and reports → update/documents →
    the IoT rule → shadow_reported → the gateway resource shows what the edge runs; its values flow as any other."""
    twin.ok("POST", "/api/gateway", {
        "id": "pi-a-sim", "edgeId": "pi-a", "enabled": True, "description": "simulated, from the cloud",
        "provider": {"type": "mysensors_v2", "protocol": {"type": "simulator", "nodes": 1, "interval": "1s"}}})
    try:
        gateway = wait_until(lambda: ((_gateway(twin, "pi-a-sim") or {}).get("others") or {}).get("edge"), 60,
                             "the edge's report on the cloud-assigned gateway")
        assert gateway.get("status") == "running", gateway
        query = urllib.parse.quote(json.dumps([{"k": "gatewayId", "o": "eq", "v": "pi-a-sim"}]))
        wait_until(lambda: twin.ok("GET", f"/api/field?filter={query}")["count"] > 0, 60,
                   "the simulated gateway's fields")
    finally:
        twin.api("DELETE", "/api/gateway", ["pi-a-sim"])


def test_a_second_device_can_neither_read_the_first_ones_commands_nor_publish_as_it(
        twin: CloudTwin, first: Device, workdir: Path) -> None:
    second = Device(twin, "pi-b", workdir)
    rogue = MqttDevice(twin, second.dir / "certificate.pem.crt", second.dir / "private.pem.key", "pi-b")
    try:
        assert rogue.subscribe("mc/pi-b/down") < 0x80
        for topic in ("mc/pi-a/down", "mc/+/down", "#", "$aws/things/pi-a/shadow/name/mycontroller/update/delta"):
            assert rogue.subscribe(topic) >= 0x80, f"pi-b may subscribe to {topic}"
        rule = second.config["uplink"]["ingest_rule"]
        for topic in ("mc/pi-a/up", "$aws/things/pi-a/shadow/name/mycontroller/update", f"$aws/rules/{rule}/mc/pi-a/up",
                      "$aws/rules/another_rule/mc/pi-b/up"):
            assert rogue.publish(topic, _publish_body(GATEWAY, "1;1;1;0;0;99")) >= 0x80, f"pi-b may publish {topic}"
        twin.ok("POST", "/api/action", [{"resource": LIGHT, "payload": "toggle"}])
        assert first.pty is not None
        wait_until(lambda: first.pty.poll_lines(), 30, "pi-a's command")  # type: ignore[union-attr]
        before = _field(twin, TEMP)["current"]["value"]  # type: ignore[index]
        # its own uplink is allowed, but an envelope for pi-a's gateway is refused by the ingest function
        assert rogue.publish("mc/pi-b/up", _publish_body(GATEWAY, "1;1;1;0;0;99")) < 0x80
        assert rogue.publish("mc/pi-b/up", _publish_body("pi-b-gw", "0;255;3;0;14;Gateway startup complete.")) < 0x80
        wait_until(lambda: _gateway(twin, "pi-b-gw"), 30, "pi-b's own gateway")
        assert _field(twin, TEMP)["current"]["value"] == before  # type: ignore[index]
        assert not [m for m in rogue.messages if "pi-a" in m[0]], rogue.messages
    finally:
        rogue.close()


def _gateway(twin: CloudTwin, gateway: str) -> dict[str, Any] | None:
    status, answer = twin.api("GET", f"/api/gateway/{gateway}")
    return answer if status == 200 else None


def test_a_poison_message_lands_in_the_dead_letter_queue_alone_at_once(twin: CloudTwin, first: Device) -> None:
    """Sent there by the ingest function with its reason (it can never be read: no retry), not after five deliveries."""
    outputs = {o["OutputKey"]: o["OutputValue"] for o in twin.client("cloudformation").describe_stacks(
        StackName=twin.stack)["Stacks"][0]["Outputs"]}
    sqs = twin.client("sqs")
    dlq = outputs["IngestDeadLetterQueueUrl"]
    retried = twin.status()["mappings"]["IngestEventSource"]["failed_records"]
    device = MqttDevice(twin, first.dir / "certificate.pem.crt", first.dir / "private.pem.key", "pi-a-rogue")
    try:
        poison = b"this is not an envelope batch"
        assert device.publish("mc/pi-a/up", poison) < 0x80
        first.write("1;1;1;0;0;19.75")
        wait_until(lambda: _field(twin, TEMP)["current"]["value"] == 19.75, 30, "the good value")  # type: ignore[index]
        messages = wait_until(lambda: sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                                          MessageAttributeNames=["reason"]).get("Messages"), 60,
                              "the poison message in the DLQ")
    finally:
        device.close()
    assert len(messages) == 1
    body = json.loads(messages[0]["Body"])
    assert base64.b64decode(body["publish"]) == poison and body["thing"] == "pi-a"
    assert messages[0]["MessageAttributes"]["reason"]["StringValue"].startswith("poison record")
    sqs.delete_message(QueueUrl=dlq, ReceiptHandle=messages[0]["ReceiptHandle"])
    assert twin.status()["mappings"]["IngestEventSource"]["failed_records"] == retried, "never retried"


# --------------------------------------------------------------------------------------------- files


def _multipart(fields: dict[str, str], file_field: str, name: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
             for key, value in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{name}"\r\n'
                 "Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_firmware_and_backups_go_through_presigned_s3_urls(twin: CloudTwin) -> None:
    """Files larger than Lambda's payload go to S3 (moto) by presigned URLs the API signs with its role."""
    import hashlib
    import urllib.request

    firmware = b":1000000001020304050607080910111213141516D8\n" * 64
    offer = twin.ok("POST", "/api/firmware/upload/twin-fw", {"name": "door.hex", "size": len(firmware)})
    assert offer["mode"] == "presigned", offer
    body, content_type = _multipart(offer["upload"]["fields"], offer["upload"]["fileField"], "door.hex", firmware)
    request = urllib.request.Request(offer["upload"]["url"], data=body, method="POST",
                                     headers={"Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status in (200, 201, 204)
    then = offer["then"]
    record = twin.ok(then["method"], then["path"], then["body"])
    assert record["file"]["checksum"] == "sha256:" + hashlib.sha256(firmware).hexdigest()

    job = twin.ok("POST", "/api/backup/run", {"retentionCount": 2})
    wait_until(lambda: twin.ok("GET", f"/api/backup/job/{job['jobId']}")["state"] in ("done", "completed"), 60,
               "the backup job")
    name = twin.ok("GET", "/api/backup")["data"][0]["name"]
    request = urllib.request.Request(f"{twin.info['api']}/api/backup/download/{name}", headers={
        "Authorization": f"Bearer {twin.token}", "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        link = json.loads(response.read())
    with urllib.request.urlopen(link["url"], timeout=30) as response:
        archive = response.read()
    assert archive[:2] == b"PK" and b"manifest.json" in archive


def test_a_node_takes_its_firmware_from_the_edge_fetched_through_a_presigned_url(twin: CloudTwin,
                                                                                 first: Device) -> None:
    """MySensors OTA as in AWS: the API hands the edge a presigned S3 URL of the node's firmware through IoT Core;
    the edge fetches it, reboots the node and serves its bootloader; the progress reaches the node in DynamoDB."""
    import asyncio
    import random

    from mycontroller_protocol.mysensors.firmware import FirmwareImage
    from tests.integration.ota_node import BootloaderNode, intel_hex

    assert first.pty is not None
    hex_file = intel_hex(random.Random(9).randbytes(1500)).encode()
    offer = twin.ok("POST", "/api/firmware/upload/twin-blink", {"name": "blink.hex", "size": len(hex_file)})
    body, content_type = _multipart(offer["upload"]["fields"], offer["upload"]["fileField"], "blink.hex", hex_file)
    request = urllib.request.Request(offer["upload"]["url"], data=body, method="POST",
                                     headers={"Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=30):
        pass
    then = offer["then"]
    twin.ok(then["method"], then["path"], then["body"])
    twin.ok("POST", "/api/firmware", {"id": "twin-blink", "labels": {"ms_type_id": "10", "ms_version_id": "4"}})
    node = twin.ok("GET", f"/api/node/{GATEWAY}.1")
    twin.ok("POST", "/api/node", {**node, "labels": {**node["labels"], "assigned_firmware": "twin-blink"}})

    first.pty.poll_lines()
    assert twin.ok("POST", "/api/action/node", {"action": "firmware_update", "ids": [f"{GATEWAY}.1"]})["sent"] == 1
    wait_until(lambda: "1;255;3;0;13;" in [line.strip() for line in first.pty.poll_lines()], 60,  # type: ignore[union-attr]
               "the edge rebooting the node once it has the firmware")
    bootloader = BootloaderNode(first.pty, 1, type_id=1, version=1)
    assert asyncio.run(bootloader.boot()) == "updated"
    assert bootloader.flash == FirmwareImage.load(hex_file, 10, 4).data
    others = wait_until(lambda: (o := twin.ok("GET", f"/api/node/{GATEWAY}.1").get("others", {})).get(
        "ota_state") == "sent" and o, 60, "the update's progress on the node")
    assert others["ota_blocks_sent"] == others["ota_block_total"] and others["ota_firmware"] == "twin-blink"


# --------------------------------------------------------------------------------------------- automation


def test_a_task_with_a_webhook_handler_fires(twin: CloudTwin, first: Device, webhook: Webhook) -> None:
    twin.ok("POST", "/api/handler", {"id": "twin-hook", "type": "webhook", "enabled": True,  # a secret: KMS
                                     "spec": {"url": f"{webhook.url}/alert", "method": "POST",
                                              "headers": {"Authorization": "Bearer twin-secret"}}})
    assert "twin-secret" not in json.dumps(twin.ok("GET", "/api/handler/twin-hook"))
    twin.ok("POST", "/api/task", {
        "id": "twin-hot", "enabled": True, "triggerOnEvent": True, "handlers": ["twin-hook"],
        "eventFilter": {"eventTypes": ["updated"], "entityTypes": ["field"], "filters": {"fieldId": "V_TEMP"}},
        "evaluationConfig": {"rule": {"matchAll": True, "conditions": [
            {"variable": "entity.current.value", "operator": "gt", "value": "30"}]}},
        "handlerParameters": {"alert": {"type": "webhook", "body": {"temperature": "{{ entity.current.value }}"}}}})
    try:
        first.write("1;1;1;0;0;31.5")
        wait_until(lambda: webhook.received, 60, "the webhook call")
        assert webhook.received[0]["path"] == "/alert"
        assert json.loads(webhook.received[0]["body"]) == {"temperature": "31.5"}
        assert webhook.received[0]["authorization"] == "Bearer twin-secret"
    finally:
        twin.api("DELETE", "/api/task", ["twin-hot"])


def test_a_cron_schedule_fires_through_eventbridge_scheduler(twin: CloudTwin, webhook: Webhook) -> None:
    twin.ok("POST", "/api/handler", {"id": "twin-cron-hook", "type": "webhook", "enabled": True,
                                     "spec": {"url": f"{webhook.url}/tick", "method": "POST"}})
    twin.ok("POST", "/api/schedule", {"id": "twin-cron", "type": "cron", "enabled": True,
                                      "spec": {"cronExpression": "*/3 * * * * *"}, "handlers": ["twin-cron-hook"],
                                      "handlerParameters": {"tick": {"type": "webhook", "body": {"tick": "yes"}}}})
    try:
        wait_until(lambda: webhook.received, 60, "the schedule's webhook call")
        fired = twin.status()["schedules_fired"]
        assert fired, "no EventBridge Scheduler schedule fired"
    finally:
        twin.api("DELETE", "/api/schedule", ["twin-cron"])
    assert webhook.received[0]["path"] == "/tick" and json.loads(webhook.received[0]["body"]) == {"tick": "yes"}
    times = [f["at"] for f in fired if f["name"].endswith("twin-cron")]
    assert len(times) == len(set(times)), f"a schedule time fired twice: {times}"


def test_the_scheduled_system_jobs_run(twin: CloudTwin) -> None:
    import urllib.request

    status = twin.status()
    rules = {name for name in status["rules_fired"]} | set()
    del rules
    for job in ("NodeStateJob", "NodeDiscoverJob", "SunJob"):
        request = urllib.request.Request(f"{twin.info['aws_endpoint']}/_twin/rules/{job}/fire", method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            assert json.loads(response.read())["fired"], job
    wait_until(lambda: all(twin.status()["functions"][job]["invocations"] >= 1
                           for job in ("NodeStateJob", "NodeDiscoverJob", "SunJob")), 60, "the system jobs")
    assert all(twin.status()["functions"][job]["errors"] == 0 for job in ("NodeStateJob", "NodeDiscoverJob", "SunJob"))


# --------------------------------------------------------------------------------------------- the roles


def test_a_call_the_role_does_not_allow_is_refused_as_aws_refuses_it(twin: CloudTwin,
                                                                    refusals_expected: None) -> None:
    """The worker the functions run in, with the ingest function's role from the template: reading its own table is
    allowed, deleting the table or reading the JWT key is refused with AccessDenied, as AWS would refuse them."""
    from infra.twin.worker import read_frame, write_frame

    state = Path(twin.info["state_dir"])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AWS_ENDPOINT_URL": twin.info["aws_endpoint"],
           "AWS_ACCESS_KEY_ID": "twin", "AWS_SECRET_ACCESS_KEY": "twin", "AWS_DEFAULT_REGION": twin.info["region"],
           "AWS_REGION": twin.info["region"], "TWIN_HANDLER": "tests.cloud.rogue.handler",
           "TWIN_POLICY_FILE": str(state / "policies" / "Ingest.json"), "AWS_LAMBDA_FUNCTION_NAME": "rogue",
           "TWIN_ROLE_ARN": json.loads((state / "policies" / "Ingest.json").read_text())["role_arn"]}
    worker = subprocess.Popen([sys.executable, "-m", "infra.twin.worker"], env=env, cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert worker.stdin is not None and worker.stdout is not None
        assert read_frame(worker.stdout)["ready"]
        table = {o["OutputKey"]: o["OutputValue"] for o in twin.client("cloudformation").describe_stacks(
            StackName=twin.stack)["Stacks"][0]["Outputs"]}["TableName"]
        schema = twin.client("dynamodb").describe_table(TableName=table)["Table"]["KeySchema"]
        key = {item["AttributeName"]: {"S": "twin-test"} for item in schema}
        write_frame(worker.stdin, {"id": "1", "event": {"table": table, "key": key}, "timeout_s": 30})
        answer = read_frame(worker.stdout)
    finally:
        worker.kill()
        worker.wait()
    assert answer["ok"], answer
    result = answer["result"]
    assert result["get"] == "allowed"
    assert result["delete"].startswith("AccessDeniedException") and "dynamodb:DeleteTable" in result["delete"]
    assert result["ssm"].startswith("AccessDeniedException") and "ssm:GetParameter" in result["ssm"]
    refused = [c for c in answer["calls"] if not c["allowed"]]
    assert {c["action"] for c in refused} == {"dynamodb:DeleteTable", "ssm:GetParameter"}
