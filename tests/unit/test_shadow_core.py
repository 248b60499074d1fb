"""Gateway configs through the device shadow: the documents (core), the in-process shadow service's AWS
semantics, and the edge's reading of shadow messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.shadow_local import LocalShadowStore, delta, merge
from chalicelib.core.model import Gateway
from edge.shadow import ShadowClient
from mycontroller_protocol.shadow import (
    REDACTED,
    ShadowError,
    config_hash,
    desired_document,
    desired_gateways,
    desired_patch,
    gateway_config,
    parse_shadow_topic,
    redact_secrets,
    reported_document,
    reported_of_documents,
    reported_update,
    restore_secrets,
    secret_key_path,
    shadow_topic,
)


def gateway(gateway_id: str, edge: str | None = "pi-1", **extra: Any) -> dict[str, Any]:
    provider = extra.pop("provider", {"type": "mysensors_v2",
                                      "protocol": {"type": "ethernet", "server": "tcp://10.0.0.5:5003"}})
    return Gateway(id=gateway_id, edge_id=edge, provider=provider, **extra).record()


# --------------------------------------------------------------------------------------------- topics


def test_named_and_classic_shadow_topics_round_trip() -> None:
    assert shadow_topic("pi-1", "update/delta") == "$aws/things/pi-1/shadow/name/mycontroller/update/delta"
    assert shadow_topic("pi-1", "get", "") == "$aws/things/pi-1/shadow/get"
    assert parse_shadow_topic("$aws/things/pi-1/shadow/name/mycontroller/update/documents") == (
        "pi-1", "mycontroller", "update/documents")
    assert parse_shadow_topic("$aws/things/pi-1/shadow/get/accepted") == ("pi-1", "", "get/accepted")
    for bad in ("mc/pi-1/up", "$aws/things/pi-1/jobs/get", "$aws/things/pi-1/shadow/name/x"):
        with pytest.raises(ShadowError):
            parse_shadow_topic(bad)
    with pytest.raises(ShadowError):
        shadow_topic("a/b", "get")


# --------------------------------------------------------------------------------------------- desired


def test_gateway_model_takes_edge_id_and_checks_it() -> None:
    assert gateway("g1")["edgeId"] == "pi-1"
    assert Gateway(id="g", edgeId="").record()["edgeId"] is None
    with pytest.raises(ValueError, match="edgeId"):
        Gateway(id="g", edgeId="pi/1")


def test_desired_document_holds_the_reference_shape_with_secrets_and_a_version() -> None:
    mqtt = {"type": "tasmota", "protocol": {"type": "mqtt", "broker": "tcp://b:1883", "password": "s3cret"}}
    records = [gateway("b", provider=mqtt, labels={"room": "hall"}), gateway("a", enabled=False)]
    document = desired_document(records)
    assert list(document["gateways"]) == ["a", "b"]
    assert document["gateways"]["b"] == {"description": "", "enabled": True, "reconnectDelay": "15s",
                                         "provider": mqtt, "labels": {"room": "hall"}}
    assert document["gateways"]["a"]["enabled"] is False
    assert "state" not in document["gateways"]["a"] and "edgeId" not in document["gateways"]["a"]
    assert document["configVersion"] == desired_document(list(reversed(records)))["configVersion"]
    changed = desired_document([gateway("b", provider={**mqtt, "protocol": {**mqtt["protocol"], "password": "x"}}),
                                records[1]])
    assert changed["configVersion"] != document["configVersion"]


def test_desired_document_too_large_for_a_shadow_is_refused() -> None:
    many = [gateway(f"g{i}", description="x" * 500) for i in range(20)]
    with pytest.raises(ShadowError, match="8192"):
        desired_document(many)


def test_desired_patch_deletes_gateways_no_longer_wanted() -> None:
    current = {"configVersion": "old", "gateways": {"a": {"enabled": True}, "gone": {"enabled": True}}}
    patch = desired_patch(current, {"configVersion": "new", "gateways": {"a": {"enabled": False}}})
    assert patch == {"configVersion": "new", "gateways": {"a": {"enabled": False}, "gone": None}}
    nested = desired_patch({"gateways": {"a": {"labels": {"x": "1"}, "provider": {"type": "t", "port": 1}}}},
                           {"gateways": {"a": {"provider": {"type": "t"}}}})
    assert nested == {"gateways": {"a": {"provider": {"type": "t", "port": None}, "labels": None}}}
    assert desired_patch(None, {"configVersion": "v", "gateways": {}}) == {"configVersion": "v", "gateways": {}}
    assert desired_gateways({"gateways": {"a": {"enabled": True}, "b": None, "c": 3}}) == {"a": {"enabled": True}}


# --------------------------------------------------------------------------------------------- secrets


def test_secrets_are_redacted_and_restored_by_placeholder() -> None:
    provider = {"type": "tasmota", "protocol": {"type": "mqtt", "username": "u", "password": "pw"},
                "extra": [{"apiKey": "k"}], "token": ""}
    shown = redact_secrets(provider)
    assert shown["protocol"] == {"type": "mqtt", "username": "u", "password": REDACTED}
    assert shown["extra"] == [{"apiKey": REDACTED}] and shown["token"] == ""
    assert "pw" not in json.dumps(shown)
    assert restore_secrets(shown, provider) == provider
    edited = {**shown, "protocol": {**shown["protocol"], "password": "new"}}
    assert restore_secrets(edited, provider)["protocol"]["password"] == "new"
    with pytest.raises(ShadowError, match=r"provider\.protocol\.password"):
        restore_secrets(shown, None)
    assert secret_key_path("provider.protocol.password") and not secret_key_path("provider.protocol.broker")


# --------------------------------------------------------------------------------------------- reported


def test_reported_update_shows_what_the_edge_runs_and_only_changes() -> None:
    record = gateway("g1")
    digest = config_hash(gateway_config(record))
    reported = reported_document("v1", {"g1": {"status": "running", "message": "", "hash": digest}},
                                 "2026-11-27T03:00:00Z")
    updated = reported_update(record, reported, "pi-1", digest)
    assert updated is not None
    assert updated["others"]["edge"] == {"thing": "pi-1", "status": "running", "message": "", "configVersion": "v1",
                                         "configHash": digest, "reportedAt": "2026-11-27T03:00:00Z", "inSync": True}
    assert reported_update(updated, reported, "pi-1", digest) is None  # the same report again: nothing to write
    rejected = reported_document("v2", {"g1": {"status": "rejected", "message": "bad port", "hash": "h"}}, "t")
    failed = reported_update(updated, rejected, "pi-1", digest)
    assert failed is not None and failed["others"]["edge"]["inSync"] is False
    assert failed["state"]["status"] == "error" and "bad port" in failed["state"]["message"]
    absent = reported_update(record, reported_document("v1", {}, "t"), "pi-1", digest)
    assert absent is not None and absent["others"]["edge"]["status"] == "absent"


def test_documents_message_yields_reported_only_when_it_changed() -> None:
    same = {"previous": {"state": {"reported": {"a": 1}}}, "current": {"state": {"reported": {"a": 1},
                                                                                  "desired": {"b": 2}}}}
    assert reported_of_documents(same) is None
    assert reported_of_documents({"previous": None, "current": {"state": {"reported": {"a": 1}}}}) == {"a": 1}
    assert reported_of_documents({"current": {"state": {"desired": {}}}}) is None


# --------------------------------------------------------------------------------------------- local shadow


def test_merge_and_delta_follow_aws_semantics() -> None:
    assert merge({"a": {"x": 1, "y": 2}, "b": 1}, {"a": {"x": None, "z": 3}, "b": None}) == {"a": {"y": 2, "z": 3}}
    assert delta({"v": 2, "g": {"a": {"p": 1}}, "same": 1}, {"v": 1, "same": 1, "g": {"a": {"p": 1}}}) == {"v": 2}
    assert delta({"g": {"a": {"p": 1, "q": 2}}}, {"g": {"a": {"p": 1}}}) == {"g": {"a": {"q": 2}}}


def test_local_shadow_talks_to_the_device_as_aws_iot_does() -> None:
    shadow = LocalShadowStore()
    to_device: list[tuple[str, dict[str, Any]]] = []
    documents: list[tuple[str, dict[str, Any]]] = []
    shadow.attach_device("pi-1", lambda topic, payload: to_device.append((topic, json.loads(payload))))
    shadow.on_documents(lambda thing, message: documents.append((thing, message)))
    prefix = "$aws/things/pi-1/shadow/name/mycontroller/"

    shadow.device_publish(prefix + "get", b"{}")
    assert to_device[-1] == (prefix + "get/rejected", {"code": 404, "message": "No shadow exists with name"})

    shadow.update_desired("pi-1", {"configVersion": "v1", "gateways": {"a": {"enabled": True}, "b": {}}})
    topic, body = to_device[-1]
    assert topic == prefix + "update/delta" and body["version"] == 1
    assert body["state"] == {"configVersion": "v1", "gateways": {"a": {"enabled": True}, "b": {}}}

    shadow.device_publish(prefix + "update", json.dumps({"state": {"reported": {"configVersion": "v1"}}}).encode())
    assert to_device[-1][0] == prefix + "update/accepted"
    assert documents[-1][1]["current"]["state"]["reported"] == {"configVersion": "v1"}

    shadow.update_desired("pi-1", {"configVersion": "v2", "gateways": {"a": {"enabled": True}}})
    assert shadow.get("pi-1") == {"desired": {"configVersion": "v2", "gateways": {"a": {"enabled": True}}},
                                  "reported": {"configVersion": "v1"}}
    shadow.device_publish(prefix + "get", b"{}")
    topic, body = to_device[-1]
    assert topic == prefix + "get/accepted" and body["version"] == 3
    assert body["state"]["delta"] == {"configVersion": "v2", "gateways": {"a": {"enabled": True}}}

    shadow.device_publish(prefix + "update", b'{"state": {"bogus": 1}}')
    assert to_device[-1][0] == prefix + "update/rejected"
    shadow.device_publish("$aws/things/pi-1/shadow/get", b"{}")  # the classic shadow is not ours
    assert to_device[-1][0] == "$aws/things/pi-1/shadow/get/rejected"


# --------------------------------------------------------------------------------------------- edge side


def test_edge_reads_deltas_and_get_answers_and_ignores_stale_ones(tmp_path: Path) -> None:
    client = ShadowClient("pi-1", "mycontroller", tmp_path)
    delta_topic = client.topic("update/delta")
    gateways = {"a": {"provider": {"type": "x"}}}
    decision = client.interpret(delta_topic, json.dumps(
        {"version": 5, "state": {"configVersion": "v5", "gateways": gateways}}).encode())
    assert (decision.action, decision.gateways, decision.config_version) == ("apply", gateways, "v5")
    assert client.interpret(delta_topic, json.dumps({"version": 4, "state": {"configVersion": "v4", "gateways": {}}})
                            .encode()).action == "none"  # older than what we saw
    in_sync = {"version": 6, "state": {"gateways": gateways}}  # reported runs desired's configVersion already
    assert client.interpret(delta_topic, json.dumps(in_sync).encode()).action == "none"
    assert client.interpret(delta_topic, b'{"version": 7, "state": {"configVersion": "v7"}}').action == "get"
    answer = {"version": 8, "state": {"desired": {"configVersion": "v8", "gateways": gateways},
                                      "reported": {"applied": {"old": {"status": "running"}}}}}
    decision = client.interpret(client.topic("get/accepted"), json.dumps(answer).encode())
    assert decision.action == "apply" and decision.reported == {"applied": {"old": {"status": "running"}}}
    assert client.reported_ids == {"old"}
    assert client.interpret(client.topic("get/rejected"), b'{"code": 404, "message": "none"}').gateways == {}
    for bad_topic, payload in ((delta_topic, b"not json"), ("$aws/things/other/shadow/name/mycontroller/update/delta",
                                                            b"{}"), (delta_topic, b"[1]")):
        assert client.interpret(bad_topic, payload).action == "none"


def test_edge_report_deletes_gone_gateways_and_is_not_repeated(tmp_path: Path) -> None:
    client = ShadowClient("pi-1", "", tmp_path)
    client.reported_ids = {"old", "a"}
    applied = {"a": {"status": "running", "message": "", "hash": "h"}}
    body = client.prepare_report("v1", applied)
    assert body is not None
    assert body["state"]["reported"]["applied"] == {"a": applied["a"], "old": None}
    assert body["state"]["reported"]["configVersion"] == "v1"
    client.report_sent(body)
    assert client.reported_ids == {"a"} and client.pending_report is None
    assert client.prepare_report("v1", applied) is None  # same as last time
    assert client.prepare_report("v1", applied, {"configVersion": "v0", "applied": applied}) is not None


def test_edge_saves_the_applied_config_privately_and_loads_it(tmp_path: Path) -> None:
    client = ShadowClient("pi-1", "mycontroller", tmp_path)
    assert client.load() is None
    gateways = {"a": {"provider": {"type": "tasmota", "protocol": {"password": "pw"}}}}
    client.save(gateways, "v3")
    assert (tmp_path / "cloud_config.json").stat().st_mode & 0o777 == 0o600
    assert client.load() == (gateways, "v3")
    assert ShadowClient("another-thing", "mycontroller", tmp_path).load() is None
    (tmp_path / "cloud_config.json").write_text("{broken")
    assert client.load() is None


def test_gateway_events_on_the_bus_never_carry_secrets() -> None:
    from chalicelib.core.model import Kind, event
    from chalicelib.core.ports import bus_event

    mqtt = {"type": "tasmota", "protocol": {"type": "mqtt", "broker": "tcp://b:1883", "password": "s3cret"}}
    record = gateway("g1", provider=mqtt)
    published = bus_event(event("updated", Kind.GATEWAY, record))  # as the processor announces a state change
    assert published.detail["entity"]["provider"]["protocol"]["password"] == REDACTED
    assert record["provider"]["protocol"]["password"] == "s3cret"  # the stored record is not touched
