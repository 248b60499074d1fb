"""Devices bound to their identity: the edge IoT policy evaluated against the topics two devices use, the rule that
binds a gateway to one thing, the ingest record, and the ingest function refusing a thing that is not the owner.

The policy is evaluated here as AWS IoT Core evaluates a device's policy: the ``Fn::Sub`` template resolved as
CloudFormation resolves it, the policy variable ``${iot:Connection.Thing.ThingName}`` replaced by the thing of
the connection, resources matched with IAM wildcards (``*`` any run of characters, ``/`` included; ``?`` one
character), and MQTT's ``+`` and ``#`` taken literally, as IoT does for ``topicfilter`` resources (a device
asking for ``mc/+/down`` is checked against the text ``mc/+/down``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.bus_local import LocalEventBus
from chalicelib.adapters.downlink_local import LocalDownlink
from chalicelib.adapters.metrics_embedded import EmbeddedMetricStore
from chalicelib.adapters.repository_memory import MemoryRepository
from chalicelib.core.identity import GatewayOwners, ingest_body, read_ingest_body, route
from chalicelib.core.model import Gateway, Kind
from chalicelib.core.processor import Processor
from chalicelib.core.publish_reader import decode_publish
from chalicelib.functions.ingest import Ingest
from edge.config import parse_config
from edge.shadow import ShadowClient
from edge.uplink import build_uplink
from infra.identity import THING_VARIABLE, edge_policy_document, ingest_rule_sql
from mycontroller_protocol.envelope import Downlink, Envelope, EnvelopeError, encode_publish

REGION, ACCOUNT = "eu-west-1", "123456789012"
RULE = "mc_home_ingest"
"""The ingest rule's name (stack ``mc-home``): ``${IngestTopicRule}`` in the policy."""
T0 = 1_767_225_600_000


# --------------------------------------------------------------------------------------------- IoT policy


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _wildcard(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern) + r"\Z",
                      re.DOTALL)


class DevicePolicy:
    """One device's view of the edge policy: ``allows(action, resource)`` for the thing its certificate names."""

    def __init__(self, thing: str, *, attached: bool = True) -> None:
        template = json.dumps(edge_policy_document())
        resolved = (template.replace("${AWS::Partition}", "aws").replace("${AWS::Region}", REGION)
                    .replace("${AWS::AccountId}", ACCOUNT).replace("${IngestTopicRule}", RULE)
                    .replace("${!", "${"))  # what Fn::Sub does
        assert re.findall(r"\$\{[^}]*\}", resolved.replace("${aws}", "")) and set(
            re.findall(r"\$\{[^}]*\}", resolved)) == {THING_VARIABLE}, "only the IoT variable is left for IoT"
        self.statements = json.loads(resolved.replace(THING_VARIABLE, thing))["Statement"]
        self.attached = attached

    def allows(self, action: str, resource: str) -> bool:
        arn = f"arn:aws:iot:{REGION}:{ACCOUNT}:{resource}"
        allowed = False
        for statement in self.statements:
            if not any(_wildcard(a.lower()).match(action.lower()) for a in _as_list(statement["Action"])):
                continue
            if not any(_wildcard(r).match(arn) for r in _as_list(statement["Resource"])):
                continue
            condition = statement.get("Condition", {}).get("Bool", {})
            if "iot:Connection.Thing.IsAttached" in condition and (
                    condition["iot:Connection.Thing.IsAttached"] == "true") != self.attached:
                continue
            if statement["Effect"] == "Deny":
                return False
            allowed = True
        return allowed

    def connect(self, client_id: str) -> bool:
        return self.allows("iot:Connect", f"client/{client_id}")

    def publish(self, topic: str) -> bool:
        return self.allows("iot:Publish", f"topic/{topic}")

    def subscribe(self, topic_filter: str) -> bool:
        return self.allows("iot:Subscribe", f"topicfilter/{topic_filter}")

    def receive(self, topic: str) -> bool:
        return self.allows("iot:Receive", f"topic/{topic}")


def device_topics(tmp_path: Path, thing: str) -> dict[str, list[str]]:
    """The topics the edge agent of ``thing`` uses, taken from the agent's own code: its uplink (up and down
    topics) and its shadow client, with the README's gateway id on both devices."""
    config = parse_config({"edge": {"id": thing, "data_dir": str(tmp_path / thing), "cloud_config": True},
                           "uplink": {"type": "inprocess"},
                           "gateways": [{"id": "mysensors-serial", "provider": {
                               "type": "mysensors_v2", "protocol": {"type": "serial", "portname": "/dev/null"}}}]},
                          base_dir=tmp_path)
    uplink = build_uplink(config, handler=lambda body: None)
    shadow = ShadowClient(thing, config.edge.shadow_name, config.edge.data_dir)
    return {"client": [config.client_id], "publish": [uplink.up_topic, shadow.topic("get"), shadow.topic("update")],
            "subscribe": [*uplink.down_topics, *shadow.subscriptions],
            "receive": [*uplink.down_topics, *shadow.subscriptions]}


@pytest.mark.parametrize(("me", "other"), [("site-a", "site-b"), ("site-b", "site-a")])
def test_each_device_uses_its_own_topics_and_none_of_the_others(tmp_path: Path, me: str, other: str) -> None:
    policy = DevicePolicy(me)
    mine, theirs = device_topics(tmp_path, me), device_topics(tmp_path, other)
    assert mine["subscribe"][0] == f"mc/{me}/down" and mine["publish"][0] == f"mc/{me}/up"

    assert all(map(policy.connect, mine["client"])) and not any(map(policy.connect, theirs["client"]))
    assert all(map(policy.publish, mine["publish"])) and not any(map(policy.publish, theirs["publish"]))
    assert all(map(policy.subscribe, mine["subscribe"])) and not any(map(policy.subscribe, theirs["subscribe"]))
    assert all(map(policy.receive, mine["receive"])) and not any(map(policy.receive, theirs["receive"]))


@pytest.mark.parametrize(("me", "other"), [("site-a", "site-b"), ("site-b", "site-a")])
def test_a_device_publishes_its_uplink_through_basic_ingest_to_the_ingest_rule_alone(tmp_path: Path, me: str,
                                                                                     other: str) -> None:
    """#17: ``uplink.ingest_rule`` (what provisioning writes) puts the uplink on ``$aws/rules/<rule>/mc/<thing>/up``,
    which the policy allows for the device's own thing and the stack's rule only."""
    config = parse_config({"edge": {"id": me, "data_dir": str(tmp_path / me)},
                           "uplink": {"type": "aws_iot", "endpoint": "x-ats.iot.eu-west-1.amazonaws.com",
                                      "ingest_rule": RULE, "tls": {"cert": "c.pem", "key": "k.pem"}},
                           "gateways": []}, base_dir=tmp_path)
    from edge.uplink.mqtt import MqttUplink

    uplink = build_uplink(config)
    assert isinstance(uplink, MqttUplink)
    assert uplink.up_topic == f"$aws/rules/{RULE}/mc/{me}/up"
    policy = DevicePolicy(me)
    assert policy.publish(uplink.up_topic) and policy.publish(f"mc/{me}/up")
    assert not policy.publish(f"$aws/rules/{RULE}/mc/{other}/up")
    assert not policy.publish(f"$aws/rules/other_stack_ingest/mc/{me}/up")
    assert not policy.publish(f"$aws/rules/{RULE}/mc/{me}/down")


def test_an_ingest_rule_is_for_aws_iot_and_a_rule_name() -> None:
    base = {"edge": {"id": "site-a"}, "gateways": []}
    with pytest.raises(ValueError, match="aws_iot only"):
        parse_config({**base, "uplink": {"type": "mqtt", "host": "broker", "ingest_rule": RULE}})
    with pytest.raises(ValueError, match="ingest_rule"):
        parse_config({**base, "uplink": {"type": "aws_iot", "endpoint": "x-ats.iot.eu-west-1.amazonaws.com",
                                         "ingest_rule": "mc-home/ingest", "tls": {"cert": "c", "key": "k"}}})


@pytest.mark.parametrize("topic_filter", ["mc/+/down", "mc/#", "#", "mc/site-b/#", "mc/site-a/#", "mc/+/up",
                                          "mc/mysensors-serial/down", "$aws/things/+/shadow/#", "mc/site-a/+"])
def test_no_wildcard_subscription_reaches_beyond_the_own_down_topic(topic_filter: str) -> None:
    assert not DevicePolicy("site-a").subscribe(topic_filter)


@pytest.mark.parametrize("topic", ["mc/site-b/up", "mc/site-a/down", "mc/site-b/down", "mc/mysensors-serial/down",
                                   "mc/site-a/up/x", "mc/site-a", "$aws/things/site-b/shadow/update"])
def test_a_device_publishes_nowhere_but_its_uplink_and_its_shadow(topic: str) -> None:
    assert not DevicePolicy("site-a").publish(topic)


def test_no_connection_without_the_thing_attached_and_no_resource_naming_another_device() -> None:
    assert DevicePolicy("site-a").connect("site-a") and not DevicePolicy("site-a", attached=False).connect("site-a")
    for statement in edge_policy_document()["Statement"]:
        for resource in _as_list(statement["Resource"]):
            assert "${!iot:Connection.Thing.ThingName}" in resource, resource
            assert "+" not in resource and "#" not in resource, resource


def test_the_ingest_rule_names_the_thing_from_the_topic_and_keeps_the_body_whole() -> None:
    assert ingest_rule_sql() == "SELECT topic(2) AS thing, encode(*, 'base64') AS publish FROM 'mc/+/up'"


# --------------------------------------------------------------------------------------------- ingest records


def test_an_ingest_record_carries_the_thing_and_the_publish_byte_for_byte() -> None:
    publish = encode_publish([Envelope("gw", "mysensors_v2", T0, 1, "m1", "1;1;1;0;0;21.5")])
    thing, body = read_ingest_body(ingest_body("site-a", publish))
    assert thing == "site-a" and body == publish.encode()
    assert decode_publish(body)[0][0].raw == "1;1;1;0;0;21.5"


@pytest.mark.parametrize("body", [
    encode_publish([]),  # a bare publish: who sent it?
    '{"thing": "site-a", "v": 1, "e": []}',  # the thing beside the envelopes, not the rule's record
    '{"thing": "a/b", "publish": ""}',
    '{"thing": "site-a", "publish": "not base64!"}',
    '{"thing": 7, "publish": ""}',
    "[]", "nope",
])
def test_anything_but_the_rules_record_is_poison(body: str) -> None:
    with pytest.raises(EnvelopeError):
        read_ingest_body(body)


# --------------------------------------------------------------------------------------------- ownership


def envelope(gateway: str, seq: int, raw: str = "1;1;1;0;0;21.5", provider: str = "mysensors_v2",
             stream: str = "s") -> Envelope:
    return Envelope(gateway, provider, T0 + seq, seq, f"{stream}-{gateway}-{seq}", raw)


def test_a_new_gateway_is_bound_to_the_first_thing_and_refused_to_the_next() -> None:
    repo = MemoryRepository(None)
    owners = GatewayOwners(repo)

    first = owners.admit([("site-a", [envelope("house", 1, provider="edge", raw="{}"), envelope("house", 2)]),
                          ("site-b", [envelope("house", 1, stream="b"), envelope("barn", 2, stream="b")])])

    assert [e.message_id for e in first.admitted] == ["s-house-1", "s-house-2", "b-barn-2"]
    assert [(r.thing, r.gateway_id, r.owner, r.message_ids) for r in first.refused] == [
        ("site-b", "house", "site-a", ("b-house-1",))]
    assert set(first.created) == {"house", "barn"} and not first.claimed
    house = repo.get(Kind.GATEWAY, "house")
    assert house is not None and (house["edgeId"], house["cloudConfig"]) == ("site-a", False)
    assert house["provider"] == {"type": "mysensors_v2"}  # not the state envelope's "edge"
    assert (repo.get(Kind.GATEWAY, "barn") or {})["edgeId"] == "site-b"

    later = GatewayOwners(repo).admit([("site-b", [envelope("house", 3, stream="b")]),
                                       ("site-a", [envelope("house", 3)])])
    assert [e.message_id for e in later.admitted] == ["s-house-3"] and later.refused_count == 1
    assert not later.created


def test_of_two_functions_racing_for_a_new_gateway_exactly_one_thing_wins() -> None:
    repo = MemoryRepository(None)
    slow = GatewayOwners(repo)
    real_get_many = repo.get_many

    def get_many_then_lose_the_race(kind: Kind, ids: Any) -> dict[str, Any]:
        found = real_get_many(kind, ids)  # nothing yet; meanwhile another function binds it to site-a
        repo.get_many = real_get_many  # type: ignore[method-assign]
        assert GatewayOwners(repo).admit([("site-a", [envelope("house", 1)])]).created
        return found

    repo.get_many = get_many_then_lose_the_race  # type: ignore[method-assign]
    admission = slow.admit([("site-b", [envelope("house", 1, stream="b")])])

    assert admission.admitted == [] and admission.refused[0].owner == "site-a" and not admission.created
    assert (real_get_many(Kind.GATEWAY, ["house"])["house"])["edgeId"] == "site-a"


def test_an_api_gateway_belongs_to_its_edge_and_one_without_an_edge_is_claimed() -> None:
    repo = MemoryRepository(None)
    repo.put(Kind.GATEWAY, Gateway(id="hall", edge_id="site-b", provider={"type": "tasmota"}).record())
    repo.put(Kind.GATEWAY, Gateway(id="old", provider={"type": "mysensors_v2"}, labels={"room": "x"}).record())

    admission = GatewayOwners(repo).admit([("site-a", [envelope("hall", 1), envelope("old", 2)])])

    assert [e.gateway_id for e in admission.admitted] == ["old"] and admission.refused[0].gateway_id == "hall"
    old = repo.get(Kind.GATEWAY, "old") or {}
    assert (old["edgeId"], old["cloudConfig"], old["labels"]) == ("site-a", False, {"room": "x"})
    assert set(admission.claimed) == {"old"} and (repo.get(Kind.GATEWAY, "hall") or {})["cloudConfig"] is True


def test_a_remembered_owner_saves_reads_but_never_admits_another_thing() -> None:
    repo = MemoryRepository(None)
    clock = [0.0]
    owners = GatewayOwners(repo, ttl_s=60, clock=lambda: clock[0])
    owners.admit([("site-a", [envelope("house", 1)])])
    reads: list[Any] = []
    real_get_many = repo.get_many

    def counted(kind: Kind, ids: Any) -> dict[str, Any]:
        reads.append(set(ids))
        return real_get_many(kind, ids)

    repo.get_many = counted  # type: ignore[method-assign]

    assert owners.admit([("site-a", [envelope("house", 2)])]).admitted and reads == []  # remembered
    repo.put(Kind.GATEWAY, {**(repo.get(Kind.GATEWAY, "house") or {}), "edgeId": "site-b"})  # moved by the API
    assert owners.admit([("site-b", [envelope("house", 3, stream="b")])]).admitted  # a fresh read says site-b
    assert reads == [{"house"}] and owners.edges_of(["house"]) == {"house": "site-b"}
    clock[0] = 61.0
    assert owners.edges_of(["house", "nobody"]) == {"house": "site-b"} and reads[-1] == {"house", "nobody"}


def test_downlinks_are_grouped_by_the_edge_owning_their_gateway() -> None:
    sent = [Downlink("house", "mysensors_v2", "1"), Downlink("barn", "mysensors_v2", "2"),
            Downlink("nobody", "mysensors_v2", "3"), Downlink("house", "mysensors_v2", "4")]
    groups, unrouted = route(sent, lambda ids: {g: {"house": "site-a", "barn": "site-b"}[g] for g in ids
                                                if g in ("house", "barn")})
    assert groups == {"site-a": [sent[0], sent[3]], "site-b": [sent[1]]} and unrouted == [sent[2]]


def test_the_local_downlink_delivers_per_edge_and_drops_what_no_edge_owns() -> None:
    owners = {"house": "site-a", "barn": "site-b"}
    local = LocalDownlink(edges=lambda ids: {g: owners[g] for g in ids if g in owners})
    inbox: list[Downlink] = []
    local.register("site-a", inbox.extend)

    local.send([Downlink("house", "mysensors_v2", "1"), Downlink("barn", "mysensors_v2", "2"),
                Downlink("nobody", "mysensors_v2", "3")])

    assert [d.raw for d in inbox] == ["1"] and [d.raw for d in local.pending("site-b")] == ["2"]
    assert local.unrouted == 1 and [d.raw for d in local.sent] == ["1", "2", "3"]


# --------------------------------------------------------------------------------------------- ingest function


def test_ingest_refuses_a_thing_speaking_for_another_things_gateway_counted_not_retried(tmp_path: Path) -> None:
    repo = MemoryRepository(None)
    bus = LocalEventBus(mode="sync")
    events: list[Any] = []
    bus.subscribe("all", {"source": ["mycontroller"]}, events.append)
    ingest = Ingest(Processor(repo, EmbeddedMetricStore(tmp_path / "m.sqlite")), bus, LocalDownlink())

    first = ingest.run([{"messageId": "a1", "body": ingest_body("site-a", encode_publish([envelope("house", 1)]))}])
    assert first.refused == [] and first.result.applied_ids == ["s-house-1"]
    gateway_events = [(e.detail_type, e.detail["entity"]["edgeId"]) for e in events
                      if e.detail_type.startswith("gateway.")]
    assert gateway_events == [("gateway.created", "site-a")]  # created, bound, announced once

    forged = [envelope("house", 2, "1;1;1;0;0;99", stream="b")]
    second = ingest.run([{"messageId": "b1", "body": ingest_body("site-b", encode_publish(forged))},
                         {"messageId": "a2", "body": ingest_body("site-a", encode_publish([envelope("house", 3)]))}])

    assert second.refused_messages == 1 and second.refused[0].owner == "site-a"
    assert second.failed_records == {}  # not retried: a retry cannot change who sent it
    assert second.result.applied_ids == ["s-house-3"]
    assert (repo.get(Kind.FIELD, "house.1.1.V_TEMP") or {})["current"]["value"] == 21.5
    response = ingest.handle({"Records": [{"messageId": "b2", "body": ingest_body("site-b", encode_publish(forged)),
                                           "attributes": {}, "eventSource": "aws:sqs"}]})
    assert response == {"batchItemFailures": []}


def test_an_edge_change_made_in_this_process_is_forgotten_at_once() -> None:
    from chalicelib.services.gateway_sync import GatewaySync

    repo = MemoryRepository(None)
    owners = GatewayOwners(repo)
    owners.admit([("site-a", [envelope("house", 1)])])
    sync = GatewaySync(repo, LocalEventBus(mode="sync"), lambda: None, forget_owners=owners.forget)
    stored = repo.get(Kind.GATEWAY, "house") or {}
    moved = {**stored, "edgeId": "site-b"}
    repo.put(Kind.GATEWAY, moved)  # what the API's upsert does, then it tells the sync

    sync.after_upsert(Kind.GATEWAY, moved, stored)

    assert owners.admit([("site-a", [envelope("house", 2)])]).refused_count == 1  # read afresh: site-b's now
    assert owners.edges_of(["house"]) == {"house": "site-b"}


def test_a_remembered_owner_expires_however_often_it_is_used() -> None:
    repo = MemoryRepository(None)
    clock = [0.0]
    owners = GatewayOwners(repo, ttl_s=60, clock=lambda: clock[0])
    owners.admit([("site-a", [envelope("house", 1)])])
    repo.put(Kind.GATEWAY, {**(repo.get(Kind.GATEWAY, "house") or {}), "edgeId": "site-b"})  # moved elsewhere
    for second, seq in ((20.0, 2), (40.0, 3), (59.0, 4)):  # site-a keeps sending: served from memory
        clock[0] = second
        assert owners.admit([("site-a", [envelope("house", seq)])]).refused_count == 0

    clock[0] = 61.0
    assert owners.admit([("site-a", [envelope("house", 5)])]).refused_count == 1  # read again: not its any more
