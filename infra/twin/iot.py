"""IoT Core beyond the broker: the device shadow service, the rules engine and iot-data, on the twin's own client.

* Shadows: devices use them over MQTT (``$aws/things/<thing>/shadow[/name/<name>]/update|get|delete`` and the
  ``accepted``/``rejected``/``delta``/``documents`` answers), functions through iot-data (``GetThingShadow``,
  ``UpdateThingShadow`` with its version check). The merge and delta are the local shadow adapter's
  (``chalicelib/adapters/shadow_local.py``), which implements AWS's semantics.
* Rules: every publish (a device's, iot-data's, the shadow service's own) is matched against the template's
  topic rules; a matching ``SELECT`` goes to the rule's actions (SQS through the action's role, which must allow
  ``sqs:SendMessage`` on the queue; Lambda only when a ``AWS::Lambda::Permission`` lets iot.amazonaws.com invoke
  the function for that rule; Republish), and a failed action to the rule's error action. A publish to
  ``$aws/rules/<rule>/<topic>`` (IoT Basic Ingest) goes to the rule of that name alone, as a publish to
  ``<topic>``.
* iot-data ``Publish`` reaches subscribed devices through the broker.

The twin's MQTT client subscribes with *no local*, so what it publishes itself is evaluated here directly and not
twice.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from chalicelib.adapters.shadow_local import delta, merge
from mycontroller_protocol.envelope import read_basic_ingest_topic

from ..errors import InfraError
from .iam import Policy, Request
from .iotsql import Message, SqlError, Statement, topic_matches

log = logging.getLogger("twin.iot")


class ShadowRejected(InfraError):
    """A shadow request AWS would reject; ``code`` is its HTTP status."""

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        super().__init__(message)


def parse_shadow(topic: str) -> tuple[str, str, str] | None:
    """``(thing, shadow name or "", operation)`` for a shadow topic."""
    parts = topic.split("/")
    if len(parts) < 5 or parts[:2] != ["$aws", "things"] or parts[3] != "shadow":
        return None
    thing, rest = parts[2], parts[4:]
    name = ""
    if rest[0] == "name":
        if len(rest) < 3:
            return None
        name, rest = rest[1], rest[2:]
    return thing, name, "/".join(rest)


def shadow_base(thing: str, name: str) -> str:
    return f"$aws/things/{thing}/shadow" + (f"/name/{name}" if name else "")


class Shadows:
    """Device shadows with AWS's semantics; ``publish(topic, payload)`` sends the service's messages."""

    def __init__(self, publish: Callable[[str, bytes], None]) -> None:
        self.publish = publish
        self._lock = threading.Lock()
        self._docs: dict[tuple[str, str], dict[str, Any]] = {}

    @staticmethod
    def _state(doc: dict[str, Any], with_delta: bool) -> dict[str, Any]:
        state = {key: doc[key] for key in ("desired", "reported") if doc[key]}
        difference = delta(doc["desired"], doc["reported"])
        if with_delta and difference:
            state["delta"] = difference
        return state

    def get(self, thing: str, name: str) -> dict[str, Any]:
        with self._lock:
            doc = self._docs.get((thing, name))
            if doc is None:
                raise ShadowRejected(404, f"No shadow exists with name: '{name or 'classic'}'")
            return json.loads(json.dumps({"state": self._state(doc, True), "metadata": {},
                                          "version": doc["version"], "timestamp": int(time.time())}))

    def update(self, thing: str, name: str, body: Any) -> dict[str, Any]:
        """Apply an update document; the accepted answer. ``ShadowRejected`` as AWS rejects it."""
        if not isinstance(body, dict) or not isinstance(body.get("state"), dict):
            raise ShadowRejected(400, "Missing required node: state")
        state = body["state"]
        if set(state) - {"desired", "reported"}:
            raise ShadowRejected(400, "State contains an invalid node")
        now = int(time.time())
        with self._lock:
            previous = self._docs.get((thing, name))
            if "version" in body and previous is not None and body["version"] != previous["version"]:
                raise ShadowRejected(409, "Version conflict")
            base = previous or {"desired": {}, "reported": {}, "version": 0}
            current = {"desired": merge(base["desired"], state.get("desired") or {})
                       if state.get("desired", {}) is not None else {},
                       "reported": merge(base["reported"], state.get("reported") or {})
                       if state.get("reported", {}) is not None else {},
                       "version": base["version"] + 1}
            self._docs[(thing, name)] = current
            difference = delta(current["desired"], current["reported"])
        token = {"clientToken": body["clientToken"]} if "clientToken" in body else {}
        accepted = {"state": state, "metadata": {}, "version": current["version"], "timestamp": now, **token}
        prefix = shadow_base(thing, name)
        self.publish(f"{prefix}/update/accepted", json.dumps(accepted).encode())
        if state.get("desired") and difference:
            self.publish(f"{prefix}/update/delta", json.dumps({"state": difference, "metadata": {},
                                                               "version": current["version"], "timestamp": now,
                                                               **token}).encode())
        documents = {"previous": ({"state": self._state(previous, False), "metadata": {},
                                   "version": previous["version"]} if previous else None),
                     "current": {"state": self._state(current, False), "metadata": {},
                                 "version": current["version"]},
                     "timestamp": now, **token}
        self.publish(f"{prefix}/update/documents", json.dumps(documents).encode())
        return accepted

    def names(self, thing: str) -> list[str]:
        """The named shadows of a thing (iot-data ``ListNamedShadowsForThing``)."""
        with self._lock:
            return sorted(name for (owner, name) in self._docs if owner == thing and name)

    def delete(self, thing: str, name: str) -> dict[str, Any]:
        with self._lock:
            doc = self._docs.pop((thing, name), None)
        if doc is None:
            raise ShadowRejected(404, f"No shadow exists with name: '{name or 'classic'}'")
        answer = {"version": doc["version"], "timestamp": int(time.time())}
        self.publish(f"{shadow_base(thing, name)}/delete/accepted", json.dumps(answer).encode())
        return answer

    def device(self, topic: str, payload: bytes) -> None:
        """A device's publish on a shadow topic."""
        parsed = parse_shadow(topic)
        if parsed is None:
            return
        thing, name, operation = parsed
        if operation not in ("update", "get", "delete"):
            return
        prefix = shadow_base(thing, name)
        token: dict[str, Any] = {}
        try:
            body = json.loads(payload) if payload.strip() else {}
            if isinstance(body, dict) and "clientToken" in body:
                token = {"clientToken": body["clientToken"]}
            if operation == "update":
                self.update(thing, name, body)
            elif operation == "get":
                self.publish(f"{prefix}/get/accepted", json.dumps({**self.get(thing, name), **token}).encode())
            else:
                self.delete(thing, name)
        except ValueError:
            self.publish(f"{prefix}/{operation}/rejected", json.dumps(
                {"code": 400, "message": "Payload contains invalid json", "timestamp": int(time.time())}).encode())
        except ShadowRejected as error:
            self.publish(f"{prefix}/{operation}/rejected", json.dumps(
                {"code": error.code, "message": str(error), "timestamp": int(time.time()), **token}).encode())


@dataclass
class TopicRule:
    logical: str
    name: str
    arn: str
    statement: Statement
    actions: list[dict[str, Any]]
    error_action: dict[str, Any] | None
    disabled: bool


class IotCore:
    """The twin's client on the broker's internal listener, the shadow service and the rules engine."""

    def __init__(self, host: str, port: int, user: str, password: str, rules: list[TopicRule], *,
                 sqs: Callable[[], Any], invoke_async: Callable[[str, Any], None],
                 role_policy: Callable[[str], Policy | None], lambda_allowed: Callable[[str, str], bool],
                 on_refusal: Callable[[str, str], None]) -> None:
        self.rules = rules
        self.sqs = sqs
        self.invoke_async = invoke_async
        self.role_policy = role_policy
        self.lambda_allowed = lambda_allowed
        self.on_refusal = on_refusal
        self.shadows = Shadows(self._publish_own)
        self.counts = {"device_publishes": 0, "basic_ingest": 0, "rule_matches": 0, "rule_errors": 0}
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="rules")
        self._connected = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"twin-iot-core-{uuid.uuid4().hex[:6]}",
                                  protocol=mqtt.MQTTv5)
        self.client.username_pw_set(user, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        if not self._connected.wait(10):
            raise RuntimeError("the twin could not connect to its broker")

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        options = SubscribeOptions(qos=1, noLocal=True)
        client.subscribe([("#", options), ("$aws/#", options)])
        self._connected.set()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        topic, payload = message.topic, bytes(message.payload)
        self.counts["device_publishes"] += 1
        if topic.startswith("$aws/things/") and parse_shadow(topic) and topic.rsplit("/", 1)[-1] in (
                "update", "get", "delete"):
            self._pool.submit(self.shadows.device, topic, payload)
        self._pool.submit(self.apply_rules, Message(topic, payload))

    def _publish_own(self, topic: str, payload: bytes) -> None:
        self.publish(topic, payload, qos=1)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """What iot-data ``Publish`` and the shadow service send: to the devices, and through the rules."""
        self.client.publish(topic, payload, qos=min(qos, 1), retain=retain)
        self._pool.submit(self.apply_rules, Message(topic, payload))

    # ------------------------------------------------------------------------------------------- rules

    def apply_rules(self, message: Message) -> None:
        rules = self.rules
        basic = read_basic_ingest_topic(message.topic)
        if basic is not None:  # IoT Basic Ingest: the named rule alone, seeing the topic after the prefix
            name, topic = basic
            rules = [rule for rule in self.rules if rule.name == name]
            self.counts["basic_ingest"] += 1
            if not rules:
                log.warning("basic ingest to %s: the template has no rule of that name", name)
            message = Message(topic, message.payload, message.client_id)
        for rule in rules:
            if rule.disabled or not topic_matches(rule.statement.topic_filter, message.topic):
                continue
            try:
                output = rule.statement.evaluate(message)
            except Exception as error:
                log.error("rule %s: SQL failed on %s: %s", rule.name, message.topic, error)
                continue
            if output is None:
                continue
            self.counts["rule_matches"] += 1
            for action in rule.actions:
                try:
                    self._act(rule, action, output)
                except Exception as error:
                    self.counts["rule_errors"] += 1
                    log.error("rule %s: action %s failed: %s", rule.name, next(iter(action), "?"), error)
                    if rule.error_action:
                        self._error_action(rule, action, message, str(error))

    def _act(self, rule: TopicRule, action: dict[str, Any], output: bytes) -> None:
        if "Sqs" in action:
            spec = action["Sqs"]
            url = str(spec["QueueUrl"])
            self._check_role(rule, spec.get("RoleArn", ""), "sqs:SendMessage", _queue_arn(url))
            body = base64.b64encode(output).decode() if spec.get("UseBase64") else output.decode()
            self.sqs().send_message(QueueUrl=url, MessageBody=body)
        elif "Lambda" in action:
            arn = str(action["Lambda"]["FunctionArn"])
            if not self.lambda_allowed(arn, rule.arn):
                self.on_refusal(f"rule {rule.name}", f"lambda:InvokeFunction on {arn}: no AWS::Lambda::Permission "
                                f"lets iot.amazonaws.com invoke it for {rule.arn}")
                raise PermissionError(f"IoT is not allowed to invoke {arn}")
            self.invoke_async(arn, json.loads(output))
        elif "Republish" in action:
            spec = action["Republish"]
            self._check_role(rule, spec.get("RoleArn", ""), "iot:Publish", f"{rule.arn.split(':rule/')[0]}:topic/"
                             f"{spec['Topic']}")
            self.publish(str(spec["Topic"]), output, int(spec.get("Qos", 0)))
        else:
            raise NotImplementedError(f"the twin does not emulate the rule action {next(iter(action))}")

    def _check_role(self, rule: TopicRule, role_arn: str, action: str, resource: str) -> None:
        policy = self.role_policy(role_arn)
        decision = policy.decide(Request(action, resource)) if policy is not None else None
        if decision is None or not decision.allowed:
            reason = decision.reason if decision else f"role {role_arn} is not a role of the template"
            self.on_refusal(f"rule {rule.name} (role {role_arn})", f"{action} on {resource}: {reason}")
            raise PermissionError(f"{action} on {resource} refused: {reason}")

    def _error_action(self, rule: TopicRule, failed: dict[str, Any], message: Message, error: str) -> None:
        payload = json.dumps({"ruleName": rule.name, "topic": message.topic, "cloudwatchTraceId": str(uuid.uuid4()),
                              "clientId": message.client_id,
                              "base64OriginalPayload": base64.b64encode(message.payload).decode(),
                              "failures": [{"failedAction": next(iter(failed), "?") + "Action",
                                            "failedResource": json.dumps(next(iter(failed.values()), {}))[:200],
                                            "errorMessage": error}]}).encode()
        try:
            assert rule.error_action is not None
            self._act(rule, rule.error_action, payload)
        except Exception as second:
            log.error("rule %s: error action failed too: %s", rule.name, second)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
        self._pool.shutdown(wait=False, cancel_futures=True)


def _queue_arn(url: str) -> str:
    from .iam import _queue_arn as arn
    from .template import ACCOUNT_ID

    host = url.split("//", 1)[-1].split("/", 1)[0]
    region = host.split(".")[1] if host.startswith("sqs.") else "us-east-1"
    return arn(url, region, ACCOUNT_ID)


def build_rules(template: Any) -> list[TopicRule]:
    """The template's ``AWS::IoT::TopicRule`` resources, parsed; a statement the twin cannot parse is an error."""
    rules: list[TopicRule] = []
    for logical, resource in template.of_type("AWS::IoT::TopicRule"):
        if logical not in template.physical:
            continue
        payload = template.resolve(resource["Properties"]["TopicRulePayload"])
        try:
            statement = Statement(payload["Sql"])
        except SqlError as error:
            raise SqlError(f"topic rule {logical}: {error}") from None
        rules.append(TopicRule(logical, template.physical[logical], template.attributes[logical]["Arn"], statement,
                               list(payload.get("Actions") or []), payload.get("ErrorAction"),
                               bool(payload.get("RuleDisabled"))))
    return rules
