"""The handler function's AWS side under moto: the SQS handler queue (batches of ten, partial batch responses,
redrive to the DLQ), DynamoDB idempotency records in the resource table, KMS-encrypted secrets, SES email, SNS SMS
and iot-data MQTT publishes."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID

from chalicelib.adapters.handler_email_ses import SesEmailExecutor
from chalicelib.adapters.handler_mqtt import IotDataPublisher, MqttExecutor
from chalicelib.adapters.handler_queue_sqs import SqsHandlerQueue
from chalicelib.adapters.handler_sms_sns import SnsSmsExecutor
from chalicelib.adapters.handler_webhook import WebhookExecutor
from chalicelib.adapters.repository_dynamodb import DynamoDBRepository
from chalicelib.adapters.secrets_kms import KmsSecretBox
from chalicelib.bootstrap import Container
from chalicelib.core.automation.handler_secrets import encrypt_spec
from chalicelib.core.automation.tasks import HandlerRequest
from chalicelib.core.model import Kind
from chalicelib.core.outbound import OutboundPolicy
from chalicelib.core.ports import HandlerCallError, SecretError
from chalicelib.functions.handlers import HandlerFunction, NoopExecutor
from chalicelib.settings import Settings
from tests.integration.services import free_port

pytestmark = pytest.mark.usefixtures("aws_mock")
_names = itertools.count(1)


class CountingNoop(NoopExecutor):
    def __init__(self) -> None:
        self.count = 0

    def execute(self, spec: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        self.count += 1
        return super().execute(spec, params)


@pytest.fixture
def world(aws_mock: None) -> Iterator[dict[str, Any]]:
    n = next(_names)
    table = f"mc-handlers-{n}"
    repository = DynamoDBRepository(table)
    repository.create_table()
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq_url = sqs.create_queue(QueueName=f"handlers-dlq-{n}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(QueueName=f"handlers-{n}", Attributes={
        "VisibilityTimeout": "0",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})})["QueueUrl"]
    kms = boto3.client("kms", region_name="us-east-1")
    box = KmsSecretBox(kms.create_key()["KeyMetadata"]["KeyId"], client=kms)
    queue = SqsHandlerQueue(queue_url, client=sqs)
    noop = CountingNoop()
    persistence = Container(Settings(storage="dynamodb", table_name=table)).idempotency
    webhook = WebhookExecutor(lambda: OutboundPolicy.allowing("127.0.0.1"))  # the settings allow this machine
    function = HandlerFunction(repository, {"noop": noop, "webhook": webhook}, persistence, secrets=box,
                               queue=queue)
    yield {"repository": repository, "sqs": sqs, "queue_url": queue_url, "dlq_url": dlq_url, "box": box,
           "queue": queue, "noop": noop, "function": function, "table": table}
    repository.close()


def deliver(world: dict[str, Any]) -> dict[str, Any]:
    """What the event source mapping does: receive up to ten, invoke, delete what did not fail."""
    sqs = world["sqs"]
    messages = sqs.receive_message(QueueUrl=world["queue_url"], MaxNumberOfMessages=10,
                                   AttributeNames=["All"]).get("Messages", [])
    records = [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:handlers",
                "awsRegion": "us-east-1"} for m in messages]
    if not records:
        return {"batchItemFailures": [], "received": 0}
    response = world["function"].handle({"Records": records})
    failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    for message in messages:
        if message["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=world["queue_url"], ReceiptHandle=message["ReceiptHandle"])
    return {**response, "received": len(records)}


def test_requests_go_in_batches_and_a_redelivered_trigger_runs_once(world: dict[str, Any]) -> None:
    world["repository"].put(Kind.HANDLER, {"id": "n", "type": "noop", "enabled": True, "spec": {}})
    requests = [HandlerRequest("n", {"i": i}, f"trigger-{i}", "task:t").to_dict() for i in range(23)]
    world["queue"].send(requests + requests[:5])  # five sent twice
    assert world["queue"].sent == 28
    received = 0
    for _ in range(10):
        received += deliver(world)["received"]
    assert received == 28 and world["noop"].count == 23
    # the idempotency records live in the resource table, keyed by the hashed triggerId/handlerId, with a TTL
    items = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=world["table"])["Items"]
    runs = [item for item in items if item["pk"]["S"].startswith("mycontroller.handler#")]
    assert len(runs) == 23 and all(item["status"]["S"] == "COMPLETED" and "ttl" in item for item in runs)


def test_a_failing_handler_is_reported_alone_and_dead_lettered(world: dict[str, Any]) -> None:
    repository = world["repository"]
    repository.put(Kind.HANDLER, {"id": "n", "type": "noop", "enabled": True, "spec": {}})
    dead_url = f"http://127.0.0.1:{free_port()}/nobody-listens"
    repository.put(Kind.HANDLER, {"id": "down", "type": "webhook", "enabled": True, "spec": {"url": dead_url}})
    bad = HandlerRequest("down", {"alert": "x"}, "t-bad", "task:t").to_dict()
    world["queue"].send([HandlerRequest("n", {}, "t-good", "task:t").to_dict(), bad])
    first = deliver(world)
    assert first["received"] == 2 and len(first["batchItemFailures"]) == 1 and world["noop"].count == 1
    second = deliver(world)
    assert second["received"] == 1 and len(second["batchItemFailures"]) == 1
    assert deliver(world)["received"] == 0  # past maxReceiveCount: moved to the DLQ
    letters = world["sqs"].receive_message(QueueUrl=world["dlq_url"], MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"]) for m in letters] == [bad]
    state = repository.get(Kind.HANDLER, "down")["state"]
    assert state["status"] == "error" and "refused" in state["message"].lower() and state["errorCount"] == 2


def test_a_delayed_call_is_requeued_with_delay_seconds(world: dict[str, Any]) -> None:
    world["repository"].put(Kind.HANDLER, {"id": "r", "type": "resource", "enabled": True, "spec": {}})
    request = HandlerRequest("r", {"later": {"type": "resource", "quickId": "task:x", "payload": "disable",
                                             "delay": "2m"}}, "t-delay", "schedule:s").to_dict()
    world["function"].run(request)
    # moto keeps delayed messages invisible until due: look at the queue's delayed count
    attributes = world["sqs"].get_queue_attributes(QueueUrl=world["queue_url"], AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"


def test_kms_secret_box_binds_the_ciphertext_to_its_place(world: dict[str, Any]) -> None:
    box = world["box"]
    spec = encrypt_spec("tg", "telegram", {"token": "bot-secret", "chatIds": ["1"]}, box)
    assert spec["token"].startswith("enc:v1:") and "bot-secret" not in spec["token"]
    assert box.decrypt(spec["token"][7:], {"handler": "tg", "path": "token"}) == "bot-secret"
    with pytest.raises(SecretError):
        box.decrypt(spec["token"][7:], {"handler": "other", "path": "token"})


def test_ses_sends_from_a_verified_sender_and_refuses_others(world: dict[str, Any]) -> None:
    from moto.ses.models import ses_backends

    ses = boto3.client("ses", region_name="us-east-1")
    ses.verify_email_identity(EmailAddress="mc@example.org")
    executor = SesEmailExecutor(client=ses, default_sender="mc@example.org")
    params = {"to": ["ops@example.org"], "subject": "hot", "body": "31.5 in the kitchen", "from": ""}
    assert executor.execute({}, params)["messageId"]
    sent = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages[-1]
    assert sent.destinations["ToAddresses"] == ["ops@example.org"] and sent.body == "31.5 in the kitchen"
    with pytest.raises(HandlerCallError) as refused:
        executor.execute({"from": "stranger@example.net"}, params)
    assert refused.value.retryable is False


def test_sns_sends_one_sms_per_number(world: dict[str, Any]) -> None:
    from moto.sns.models import sns_backends

    executor = SnsSmsExecutor(client=boto3.client("sns", region_name="us-east-1"))
    assert executor.execute({}, {"phoneNumbers": ["+15555550100", "+15555550101"], "text": "door open",
                                 "senderId": "MyCtrl"}) == {"sent": 2}
    messages = list(sns_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sms_messages.values())
    assert messages[-2:] == [("+15555550100", "door open"), ("+15555550101", "door open")]


def test_mqtt_without_a_broker_publishes_through_iot_data(world: dict[str, Any]) -> None:
    from moto.iotdata.models import iotdata_backends

    executor = MqttExecutor(IotDataPublisher(boto3.client("iot-data", region_name="us-east-1")))
    executor.execute({}, {"topic": "house/alerts", "payload": '{"t":31.5}', "qos": 1, "retain": False})
    assert ("house/alerts", b'{"t":31.5}') in iotdata_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].published_payloads
