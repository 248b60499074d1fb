"""Gateway resources ↔ edge devices' shadows, under moto: an upsert through the API writes the edge's desired
state (secrets in the shadow, never in the API), moves and deletes follow, the ``shadow_reported`` function
writes what the edge reports into the gateway resources, and the iot-data adapter replaces nested keys."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from chalicelib.adapters.shadow_iotdata import IotDataShadowStore
from mycontroller_protocol.shadow import REDACTED, config_hash, gateway_config
from tests.integration.api_helpers import Api

pytestmark = pytest.mark.integration

REGION = "us-east-1"
_things = itertools.count(1)


@pytest.fixture
def things(api: Api, aws_mock: None) -> Iterator[list[str]]:
    """Two registered things (moto's shadows need them) and the API's container on the iot-data shadow."""
    iot = boto3.client("iot", region_name=REGION)
    names = [f"pi-{next(_things)}", f"pi-{next(_things)}"]
    for name in names:
        iot.create_thing(thingName=name)
    api.use(shadow=IotDataShadowStore(boto3.client("iot-data", region_name=REGION)))
    yield names


def desired(thing: str, shadow_name: str = "mycontroller") -> dict[str, Any]:
    client = boto3.client("iot-data", region_name=REGION)
    try:
        response = client.get_thing_shadow(thingName=thing, **({"shadowName": shadow_name} if shadow_name else {}))
    except client.exceptions.ResourceNotFoundException:
        return {}
    return json.loads(response["payload"].read())["state"].get("desired") or {}


def tasmota(gateway_id: str, thing: str | None, password: str = "s3cret") -> dict[str, Any]:
    return {"id": gateway_id, "edgeId": thing, "labels": {"room": "hall"},
            "provider": {"type": "tasmota", "protocol": {"type": "mqtt", "broker": "tcp://10.0.0.2:1883",
                                                         "username": "tas", "password": password}}}


def test_upsert_writes_the_edges_desired_state_and_the_api_never_shows_the_secret(api: Api,
                                                                                  things: list[str]) -> None:
    pi = things[0]
    stored = api.ok("POST", "/api/gateway", tasmota("hall", pi))
    assert stored["provider"]["protocol"]["password"] == REDACTED and stored["edgeId"] == pi
    shadow = desired(pi)
    assert shadow["gateways"]["hall"]["provider"]["protocol"]["password"] == "s3cret"  # the edge needs it
    assert shadow["gateways"]["hall"]["labels"] == {"room": "hall"}
    assert shadow["configVersion"]

    shown = [api.ok("GET", "/api/gateway/hall"), api.ok("GET", "/api/gateway")["data"][0],
             api.ok("GET", "/api/quickid", id="gateway:hall")["gateway:hall"],
             api.ok("GET", "/api/quickid", id="gateway:hall.provider.protocol")["gateway:hall.provider.protocol"]]
    events = [e.detail for e in api.events if e.detail_type.startswith("gateway.")]
    assert "s3cret" not in json.dumps(shown) + json.dumps(events)
    status, body, _ = api.call("GET", "/api/gateway",
                               filter='[{"k":"provider.protocol.password","o":"eq","v":"s3cret"}]')
    assert status == 400 and body["field"] == "filter"

    # editing the description with the placeholder sent back keeps the secret; a new password replaces it
    api.ok("POST", "/api/gateway", {**stored, "description": "Hall plugs"})
    assert desired(pi)["gateways"]["hall"]["provider"]["protocol"]["password"] == "s3cret"
    assert desired(pi)["gateways"]["hall"]["description"] == "Hall plugs"
    api.ok("POST", "/api/gateway", tasmota("hall", pi, password="n3w"))
    assert desired(pi)["gateways"]["hall"]["provider"]["protocol"]["password"] == "n3w"
    status, body, _ = api.call("POST", "/api/gateway", tasmota("other", pi, password=REDACTED))
    assert status == 400 and "provider.protocol.password" in body["message"]


def test_moving_disabling_and_deleting_gateways_follow_in_the_shadows(api: Api, things: list[str]) -> None:
    pi, other = things
    api.ok("POST", "/api/gateway", tasmota("a", pi))
    api.ok("POST", "/api/gateway", {**tasmota("b", pi), "labels": {"x": "1", "y": "2"}})
    api.ok("POST", "/api/gateway", {"id": "cloudless", "provider": {"type": "mysensors_v2"}})  # no edgeId
    assert set(desired(pi)["gateways"]) == {"a", "b"}

    api.ok("POST", "/api/gateway", {"id": "b", "labels": {"x": "1"}, "enabled": False})
    b = desired(pi)["gateways"]["b"]
    assert b["enabled"] is False and b["labels"] == {"x": "1"}  # a removed key does not linger in the shadow

    api.ok("POST", "/api/gateway", {"id": "a", "edgeId": other})
    assert set(desired(pi)["gateways"]) == {"b"} and set(desired(other)["gateways"]) == {"a"}

    api.ok("DELETE", "/api/gateway", ["b"])
    assert desired(pi)["gateways"] == {} or "gateways" not in desired(pi)
    assert set(desired(other)["gateways"]) == {"a"}


def test_the_shadow_reported_function_shows_what_the_edge_runs(api: Api, things: list[str]) -> None:
    from chalicelib.functions.entries import LambdaEntries

    pi = things[0]
    api.ok("POST", "/api/gateway", tasmota("hall", pi))
    api.ok("POST", "/api/gateway", tasmota("porch", pi))
    record = api.container.repository.get(*_gateway("hall"))
    assert record is not None
    digest = config_hash(gateway_config(record))
    reported = {"configVersion": desired(pi)["configVersion"], "reportedAt": "2026-11-27T03:10:00Z",
                "applied": {"hall": {"status": "running", "message": "", "hash": digest},
                            "porch": {"status": "rejected", "message": "protocol type 'mqtt' needs 'broker'",
                                      "hash": "other"}}}
    documents = {"thing": pi, "previous": {"state": {"desired": desired(pi)}},
                 "current": {"state": {"desired": desired(pi), "reported": reported}}}
    api.events.clear()
    entries = LambdaEntries(api.container)
    response = entries.shadow_reported(documents)
    assert sorted(response["updated"]) == ["hall", "porch"]
    again = entries.shadow_reported({**documents, "previous": documents["current"]})
    assert again == {"updated": []}  # the cloud's own desired updates cost nothing

    hall = api.ok("GET", "/api/gateway/hall")
    assert hall["others"]["edge"] == {"thing": pi, "status": "running", "message": "",
                                      "configVersion": reported["configVersion"], "configHash": digest,
                                      "reportedAt": "2026-11-27T03:10:00Z", "inSync": True}
    porch = api.ok("GET", "/api/gateway/porch")
    assert porch["others"]["edge"]["inSync"] is False and porch["state"]["status"] == "error"
    assert "needs 'broker'" in porch["state"]["message"]
    updated = [e for e in api.events if e.detail_type == "gateway.updated"]
    assert len(updated) == 2 and "s3cret" not in json.dumps([e.detail for e in updated])


def test_a_shadow_service_failure_is_a_502_naming_the_shadow_and_the_gateway_stays_saved(
        api: Api, things: list[str]) -> None:
    status, body, _ = api.call("POST", "/api/gateway", tasmota("lost", "not-a-registered-thing"))
    assert status == 502 and body["field"] == "shadow" and "not-a-registered-thing" in body["message"]
    assert "s3cret" not in json.dumps(body)
    assert api.ok("GET", "/api/gateway/lost")["edgeId"] == "not-a-registered-thing"
    status, body, _ = api.call("POST", "/api/gateway", {"id": "lost", "edgeId": things[0]})
    assert status == 502 and "not-a-registered-thing" in body["message"]  # its old edge still fails...
    assert set(desired(things[0])["gateways"]) == {"lost"}  # ...which does not hold back the new one


def _gateway(gateway_id: str) -> tuple[Any, str]:
    from chalicelib.core.model import Kind

    return Kind.GATEWAY, gateway_id


def test_iotdata_adapter_replaces_nested_keys_and_retries_a_version_conflict(aws_mock: None) -> None:
    thing = f"pi-{next(_things)}"
    boto3.client("iot", region_name=REGION).create_thing(thingName=thing)
    client = boto3.client("iot-data", region_name=REGION)
    store = IotDataShadowStore(client, shadow_name="")
    assert store.get(thing) is None
    store.update_desired(thing, {"configVersion": "1", "gateways": {"a": {"labels": {"x": "1"}}, "b": {}}})
    store.update_desired(thing, {"configVersion": "2", "gateways": {"a": {"enabled": True}}})
    assert desired(thing, "") == {"configVersion": "2", "gateways": {"a": {"enabled": True}}}

    class Racing:
        """The first update finds the shadow changed since it was read (another API call got there first)."""

        def __init__(self) -> None:
            self.exceptions = client.exceptions
            self.raced = False

        def get_thing_shadow(self, **kwargs: Any) -> Any:
            return client.get_thing_shadow(**kwargs)

        def update_thing_shadow(self, **kwargs: Any) -> Any:
            if not self.raced:
                self.raced = True
                client.update_thing_shadow(thingName=thing, payload=b'{"state": {"reported": {"seen": 1}}}')
            return client.update_thing_shadow(**kwargs)

    racing = IotDataShadowStore(Racing(), shadow_name="")
    racing.update_desired(thing, {"configVersion": "3", "gateways": {}})
    assert racing.calls == {"get": 2, "update": 2}
    state = store.get(thing)
    assert state is not None and state["desired"]["configVersion"] == "3" and state["reported"] == {"seen": 1}
    assert "a" not in (state["desired"].get("gateways") or {})
