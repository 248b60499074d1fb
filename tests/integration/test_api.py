"""The REST API through the Chalice app (``chalice.test.Client``), once with the memory and once with the
DynamoDB repository (moto): resources, quick ids, actions leaving as device messages, metrics, errors, and
the OpenAPI document matching the routes."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import subprocess
import sys
import textwrap
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from chalicelib.core.model import iso_from_ms, now_ms
from chalicelib.core.ports import MetricPoint
from chalicelib.settings import Settings, SettingsError
from tests.integration.api_helpers import MAX_BODY_BYTES, Api

pytestmark = pytest.mark.integration


def seed(api: Api, *, gateway: str = "gw", provider: str = "mysensors_v2", enabled: bool = True) -> None:
    """A gateway with node 1, its source 1, and a switch (binary) and a temperature (gauge_float) field."""
    api.ok("POST", "/api/gateway", {"id": gateway, "provider": {"type": provider}, "enabled": enabled})
    api.ok("POST", "/api/node", {"gatewayId": gateway, "nodeId": "1", "name": "kitchen",
                                 "labels": {"room": "kitchen"}})
    api.ok("POST", "/api/source", {"gatewayId": gateway, "nodeId": "1", "sourceId": "1"})
    api.ok("POST", "/api/field", {"gatewayId": gateway, "nodeId": "1", "sourceId": "1", "fieldId": "V_STATUS",
                                  "metricType": "binary", "current": {"value": True}})
    api.ok("POST", "/api/field", {"gatewayId": gateway, "nodeId": "1", "sourceId": "1", "fieldId": "V_TEMP",
                                  "metricType": "gauge_float", "unit": "°C", "current": {"value": 21.5}})


def types_of(api: Api) -> list[str]:
    return [e.detail_type for e in api.events]


def error_of(api: Api, method: str, path: str, body: Any = None, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    status, data, _ = api.call(method, path, body, **kwargs)
    assert status >= 400
    assert set(data) == {"status", "message", "field"} and data["status"] == status, data
    return status, data


# --------------------------------------------------------------------------------------------- resources


def test_crud_for_every_kind_with_events(api: Api) -> None:
    seed(api)
    gateway = api.ok("GET", "/api/gateway/gw")
    assert gateway["provider"] == {"type": "mysensors_v2"} and gateway["modifiedOn"]
    node = api.ok("GET", "/api/node/gw.1")
    assert (node["id"], node["gatewayId"], node["nodeId"], node["labels"]) == ("gw.1", "gw", "1", {"room": "kitchen"})
    assert api.ok("GET", "/api/source/gw.1.1")["sourceId"] == "1"
    field = api.ok("GET", "/api/field/gw.1.1.V_TEMP")
    assert (field["metricType"], field["unit"], field["current"]["value"]) == ("gauge_float", "°C", 21.5)
    assert types_of(api) == ["gateway.created", "node.created", "source.created", "field.created", "field.created"]

    renamed = api.ok("POST", "/api/node", {"id": "gw.1", "name": "pantry"})
    assert renamed["name"] == "pantry" and renamed["labels"] == {"room": "kitchen"}  # omitted keys kept
    assert api.ok("GET", "/api/node/gw.1")["name"] == "pantry"
    assert api.events[-1].detail_type == "node.updated" and api.events[-1].detail["entity"]["name"] == "pantry"


def test_upsert_never_overwrites_a_fields_reported_value(api: Api) -> None:
    seed(api)
    updated = api.ok("POST", "/api/field", {"id": "gw.1.1.V_TEMP", "name": "Temperature",
                                            "current": {"value": 99}})
    assert updated["name"] == "Temperature" and updated["current"]["value"] == 21.5


def test_list_filters_sorts_pages_and_counts(api: Api) -> None:
    seed(api)
    for node in ("2", "3", "4"):
        api.ok("POST", "/api/node", {"gatewayId": "gw", "nodeId": node, "labels": {"room": f"r{node}"}})
    page = api.ok("GET", "/api/node", limit=2, offset=1, sortBy=json.dumps([{"f": "nodeId", "o": "desc"}]))
    assert (page["count"], page["limit"], page["offset"]) == (4, 2, 1)
    assert [n["id"] for n in page["data"]] == ["gw.3", "gw.2"]
    filtered = api.ok("GET", "/api/node", filter=json.dumps([{"k": "labels.room", "o": "in", "v": ["r2", "r4"]}]))
    assert filtered["count"] == 2 and {n["id"] for n in filtered["data"]} == {"gw.2", "gw.4"}
    fields = api.ok("GET", "/api/field", filter=json.dumps([{"k": "metricType", "o": "eq", "v": "binary"}]))
    assert [f["id"] for f in fields["data"]] == ["gw.1.1.V_STATUS"]
    assert api.ok("GET", "/api/gateway")["count"] == 1


@pytest.mark.parametrize(("query", "parameter"), [
    ({"filter": "[{"}, "filter"),
    ({"filter": json.dumps([{"k": "id", "o": "like", "v": 1}])}, "filter"),
    ({"sortBy": json.dumps([{"f": "id", "o": "up"}])}, "sortBy"),
    ({"offset": "-1"}, "offset"),
    ({"limit": "ten"}, "limit"),
])
def test_bad_list_query_is_a_400_naming_the_parameter(api: Api, query: dict[str, str], parameter: str) -> None:
    status, data = error_of(api, "GET", "/api/field", **query)
    assert (status, data["field"]) == (400, parameter), data


def test_cascade_delete_removes_everything_beneath(api: Api) -> None:
    seed(api)
    seed(api, gateway="other")
    api.events.clear()
    assert api.ok("DELETE", "/api/gateway", ["gw"]) == {"deleted": 1, "cascaded": 4}
    for path in ("/api/gateway/gw", "/api/node/gw.1", "/api/source/gw.1.1", "/api/field/gw.1.1.V_STATUS"):
        assert api.call("GET", path)[0] == 404
    assert api.ok("GET", "/api/field")["count"] == 2  # the other gateway's fields remain
    assert sorted(types_of(api)) == ["field.deleted", "field.deleted", "gateway.deleted", "node.deleted",
                                     "source.deleted"]
    assert api.ok("DELETE", "/api/field", ["field:other.1.1.V_TEMP"]) == {"deleted": 1, "cascaded": 0}


def test_delete_with_unknown_ids_is_a_404_and_deletes_nothing(api: Api) -> None:
    seed(api)
    status, data = error_of(api, "DELETE", "/api/node", ["gw.1", "gw.9"])
    assert status == 404 and "gw.9" in data["message"]
    assert api.ok("GET", "/api/node/gw.1")["id"] == "gw.1"
    assert error_of(api, "DELETE", "/api/node", [])[1]["field"] == "body"
    assert error_of(api, "DELETE", "/api/node", {"gw": 1})[1]["field"] == "body"
    assert error_of(api, "DELETE", "/api/node", ["gw.1", 7])[1]["field"] == "[1]"


def test_quick_ids_work_where_ids_do(api: Api) -> None:
    seed(api)
    assert api.ok("GET", "/api/field/field:gw.1.1.V_TEMP")["id"] == "gw.1.1.V_TEMP"
    assert api.ok("GET", "/api/node/nd:gw.1")["id"] == "gw.1"
    status, data = error_of(api, "GET", "/api/node/field:gw.1.1.V_TEMP")
    assert status == 400 and data["field"] == "id"


def test_quick_id_lookup_with_key_paths(api: Api) -> None:
    seed(api)
    result = api.ok("GET", "/api/quickid", id=["field:gw.1.1.V_TEMP", "node:gw.1.labels.room",
                                               "field:gw.1.1.V_TEMP.current.value"])
    assert result["field:gw.1.1.V_TEMP"]["unit"] == "°C"
    assert result["node:gw.1.labels.room"] == "kitchen"
    assert result["field:gw.1.1.V_TEMP.current.value"] == 21.5
    assert error_of(api, "GET", "/api/quickid", id="node:gw.7")[0] == 404
    assert error_of(api, "GET", "/api/quickid", id="node:gw.1.nothing.here")[0] == 404
    assert error_of(api, "GET", "/api/quickid", id="sprocket:1")[1]["field"] == "id"
    assert error_of(api, "GET", "/api/quickid")[1]["field"] == "id"


def test_unknown_ids_are_404(api: Api) -> None:
    for path in ("/api/gateway/nope", "/api/node/gw.1", "/api/source/a.b.c", "/api/field/a.b.c.d"):
        status, data = error_of(api, "GET", path)
        assert status == 404 and data["field"] == "id"


# --------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/api/gateway", {"id": "has.dot"}, "id"),
    ("/api/gateway", {"id": "gw", "labels": "x"}, "labels"),
    ("/api/gateway", {"description": "no id"}, "id"),
    ("/api/node", {"gatewayId": "gw", "nodeId": "a.b"}, "nodeId"),
    ("/api/field", {"gatewayId": "gw", "nodeId": "1", "sourceId": "1", "fieldId": "F", "metricType": "bogus"},
     "metricType"),
    ("/api/field", {"gatewayId": "gw", "nodeId": "1", "sourceId": "1", "fieldId": "F", "current": "x"}, "current"),
    ("/api/node", {"id": "gw.1", "nodeId": "2"}, "id"),
    ("/api/node", {"gatewayId": "ghost", "nodeId": "1"}, "gatewayId"),
    ("/api/source", {"gatewayId": "gw", "nodeId": "9", "sourceId": "1"}, "nodeId"),
    ("/api/gateway", ["gw"], "body"),
])
def test_bad_bodies_are_400s_naming_the_field(api: Api, path: str, body: Any, field: str) -> None:
    seed(api)
    status, data = error_of(api, "POST", path, body)
    assert status == 400 and data["field"] == field, data
    assert field in data["message"] or field == "body"


def test_wrong_json_is_a_400_with_the_parse_error(api: Api) -> None:
    status, data = error_of(api, "POST", "/api/gateway", raw=b'{"id": "gw",')
    assert status == 400 and data["field"] == "body" and "not valid JSON" in data["message"]
    assert error_of(api, "POST", "/api/gateway", raw=b"")[1]["field"] == "body"


def test_oversized_bodies_are_413_before_parsing(api: Api) -> None:
    big = b'{"id": "gw", "description": "' + b"x" * MAX_BODY_BYTES + b'"}'
    status, data = error_of(api, "POST", "/api/gateway", raw=big)
    assert status == 413 and data["field"] == "body"
    assert error_of(api, "POST", "/api/gateway", raw=b"[" * (MAX_BODY_BYTES + 1))[0] == 413
    assert api.call("GET", "/api/gateway/gw")[0] == 404


def test_records_too_big_to_store_are_413(api: Api) -> None:
    labels = {f"k{i}": "v" * 1000 for i in range(210)}  # under the body limit, over what a record may hold
    status, data = error_of(api, "POST", "/api/gateway", {"id": "gw", "labels": labels})
    assert status == 413 and "stored" in data["message"]
    assert error_of(api, "GET", "/api/gateway/" + "g" * 5000)[0] == 404


def test_chalice_errors_come_in_our_shape(api: Api) -> None:
    status, data, headers = api.call("PUT", "/api/gateway", {"id": "gw"})
    assert (status, data["status"]) == (405, 405) and set(data) == {"status", "message", "field"}
    assert headers.get("Allow") == "DELETE, GET, POST"
    status, data, headers = api.call("POST", "/api/gateway", raw=b"id=gw", headers={"Content-Type": "text/plain"})
    assert (status, data["status"], data["field"]) == (415, 415, "Content-Type") and "Code" not in data
    assert headers.get("Access-Control-Allow-Origin") is None  # same origin only, unless CORS_ORIGINS says
    assert headers.get("X-Content-Type-Options") == "nosniff" and "default-src 'none'" in headers.get(
        "Content-Security-Policy", "")


@pytest.mark.parametrize("raw, field", [
    (b'{"username": "admin", "password": ' + b"9" * 5000 + b"}", "password"),  # a 500 before: Python's digit limit
    (b'{"id": "gw", "labels": {"a": 1}, "reconnectDelay": ' + b"1" * 30 + b"}", "reconnectDelay"),
    (b'[{"resource": "field:g.1.1.V", "payload": -' + b"9" * 20 + b"}]", "0.payload"),
    (b'{"id": "gw", "x": 1e999}', "x"),
    (b'{"id": "gw", "x": NaN}', "x"),
])
def test_numbers_no_field_can_hold_are_400s_naming_the_field(api: Api, raw: bytes, field: str) -> None:
    path = "/api/user/login" if field == "password" else "/api/action" if field == "0.payload" else "/api/gateway"
    status, data = error_of(api, "POST", path, raw=raw)
    assert (status, data["field"]) == (400, field) and "out of range" in data["message"]
    assert api.ok("POST", "/api/gateway", {"id": "gw", "x": 2**63 - 1, "y": -(2**63), "z": 1.5e300})["id"] == "gw"


def test_unexpected_failures_are_500s_in_our_shape(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(api.container.repository, "query", broken)
    status, data = error_of(api, "GET", "/api/gateway")
    assert status == 500 and "disk" not in data["message"]


# --------------------------------------------------------------------------------------------- actions


def test_set_field_sends_the_mysensors_line_to_its_gateway(api: Api) -> None:
    seed(api)
    seed(api, gateway="other")
    assert api.ok("POST", "/api/action", [{"resource": "field:gw.1.1.V_STATUS", "payload": "off"}]) == {
        "sent": 1, "skipped": 0}
    [downlink] = api.sent
    assert (downlink.gateway_id, downlink.provider, downlink.raw) == ("gw", "mysensors_v2", "1;1;1;0;2;0")
    assert (downlink.node_id, downlink.key) == ("1", "1;1;2")
    assert api.ok("GET", "/api/field/gw.1.1.V_STATUS")["current"]["value"] is True  # changes when the node echoes
    api.ok("POST", "/api/action", [{"id": "field:gw.1.1.V_TEMP", "payload": 22.25}])
    assert api.sent[-1].raw == "1;1;1;0;0;22.25"


def test_toggle_flips_the_current_value(api: Api) -> None:
    seed(api)
    api.ok("POST", "/api/action", [{"resource": "field:gw.1.1.V_STATUS", "payload": "toggle"}])
    assert api.sent[-1].raw == "1;1;1;0;2;0"
    api.ok("GET", "/api/action", resource="field:gw.1.1.V_STATUS", payload="on")
    assert api.sent[-1].raw == "1;1;1;0;2;1"
    status, data = error_of(api, "POST", "/api/action", [{"resource": "field:gw.1.1.V_TEMP", "payload": "toggle"}])
    assert status == 400 and data["field"] == "[0].payload"


def test_a_bad_action_sends_nothing(api: Api) -> None:
    seed(api)
    actions = [{"resource": "field:gw.1.1.V_STATUS", "payload": "on"},
               {"resource": "field:gw.1.1.V_TEMP", "payload": "warm"}]
    status, data = error_of(api, "POST", "/api/action", actions)
    assert (status, data["field"]) == (400, "[1].payload") and api.sent == []
    assert error_of(api, "POST", "/api/action", [{"resource": "field:gw.1.1.V_NONE", "payload": 1}])[0] == 404
    assert error_of(api, "POST", "/api/action", [{"payload": 1}])[1]["field"] == "[0].resource"
    assert error_of(api, "POST", "/api/action", [{"resource": "field:gw.1.1.V_TEMP"}])[1]["field"] == "[0].payload"
    assert error_of(api, "POST", "/api/action", [])[1]["field"] == "body"
    assert api.sent == []


@pytest.mark.parametrize(("action", "line"), [
    ("reboot", "1;255;3;0;13;"),
    ("heartbeat_request", "1;255;3;0;18;"),
    ("refresh_node_info", "1;255;3;0;19;"),
])
def test_node_actions(api: Api, action: str, line: str) -> None:
    seed(api)
    assert api.ok("POST", "/api/action/node", {"action": action, "nodeIds": ["gw.1"]})["sent"] == 1
    assert (api.sent[-1].raw, api.sent[-1].gateway_id, api.sent[-1].node_id) == (line, "gw", "1")
    api.ok("GET", "/api/action/node", action=action, id="node:gw.1")  # the reference's form
    assert api.sent[-1].raw == line


def test_node_reset_flags_the_node_then_reboots_it(api: Api) -> None:
    seed(api)
    assert api.ok("POST", "/api/action/node", {"action": "reset", "ids": ["gw.1"]})["sent"] == 1
    erase, reboot = api.sent[-2:]
    assert json.loads(erase.raw) == {"ctl": "ota", "node": "1", "erase": True}  # the edge answers the bootloader
    assert reboot.raw == "1;255;3;0;13;"
    assert api.ok("GET", "/api/node/gw.1")["labels"]["ms_erase_eeprom"] == "true"


def test_firmware_update_hands_the_edge_the_assigned_firmware(api: Api) -> None:
    seed(api)
    content = b":0400000001020304F2\n:00000001FF\n"
    api.container.firmware.store("blink", content, name="blink.hex", extra={"labels": {"ms_type_id": "10"}})
    node = api.ok("GET", "/api/node/gw.1")
    api.ok("POST", "/api/node", {**node, "labels": {**node["labels"], "assigned_firmware": "blink"}})
    status, data = error_of(api, "POST", "/api/action/node", {"action": "firmware_update", "ids": ["gw.1"]})
    assert status == 400 and "ms_version_id" in data["message"] and api.sent == []
    api.container.firmware.store("blink", content, name="blink.hex",
                                 extra={"labels": {"ms_type_id": "10", "ms_version_id": "3"}})

    assert api.ok("POST", "/api/action/node", {"action": "firmware_update", "ids": ["gw.1"]})["sent"] == 1
    [downlink] = api.sent
    control = json.loads(downlink.raw)
    assert (downlink.gateway_id, downlink.node_id) == ("gw", "1")
    assert {k: control[k] for k in ("ctl", "node", "firmware", "type", "version", "size", "reboot")} == {
        "ctl": "ota", "node": "1", "firmware": "blink", "type": 10, "version": 3, "size": len(content),
        "reboot": True}
    assert control["checksum"] == "sha256:" + hashlib.sha256(content).hexdigest()
    assert control["url"].startswith(("file://", "https://", "http://"))
    if control["url"].startswith("file://"):  # the local store: the edge reads the file where it is
        assert Path(urllib.parse.unquote(control["url"][7:])).read_bytes() == content
    else:  # presigned, short-lived
        assert control["urlExpires"] > time.time() * 1000
    others = api.ok("GET", "/api/node/gw.1")["others"]
    assert (others["ota_state"], others["ota_firmware"], others["ota_progress"]) == ("assigned", "blink", 0)

    # an edge whose URL expired asks again (its report, through the ingest): only for the node's own firmware
    refresh = api.container.actions.firmware_link("gw", "1")
    assert refresh is not None and refresh.node_id == "1"
    again = json.loads(refresh.raw)
    assert (again["refresh"], again["reboot"], again["checksum"]) == (True, False, control["checksum"])
    assert api.container.actions.firmware_link("gw", "9") is None  # no such node
    api.ok("POST", "/api/node", {**node, "labels": node["labels"]})  # assignment removed
    assert api.container.actions.firmware_link("gw", "1") is None


def test_a_nodes_sleep_labels_reach_its_edge(api: Api) -> None:
    seed(api)
    node = api.ok("GET", "/api/node/gw.1")
    api.ok("POST", "/api/node", {**node, "name": "kitchen lamp"})
    assert api.sent == []  # nothing about sleep changed
    api.ok("POST", "/api/node", {**node, "labels": {**node["labels"], "sleep_node": "true",
                                                     "ignore_sleep_node": "true"}})
    [downlink] = api.sent
    assert (downlink.gateway_id, downlink.node_id) == ("gw", "1")
    assert json.loads(downlink.raw) == {"ctl": "sleep", "node": "1", "sleep": True, "pinned": True}
    api.ok("POST", "/api/node", {**node, "labels": {"room": "kitchen", "sleep_node": "true"}})
    # unpinned: the edge follows what the node shows again
    assert json.loads(api.sent[-1].raw) == {"ctl": "sleep", "node": "1", "sleep": None, "pinned": False}
    api.ok("POST", "/api/node", {**node, "labels": {"room": "kitchen"}})  # set by hand: an always-on node
    assert json.loads(api.sent[-1].raw) == {"ctl": "sleep", "node": "1", "sleep": False, "pinned": False}


def test_node_and_gateway_actions_by_quick_id(api: Api) -> None:
    seed(api)
    api.ok("POST", "/api/action", [{"resource": "node:gw.1", "payload": "reboot"},
                                   {"resource": "gateway:gw", "payload": "discover_nodes"}])
    assert [d.raw for d in api.sent] == ["1;255;3;0;13;", "255;255;3;0;20;"]
    status, data = error_of(api, "POST", "/api/action", [{"resource": "node:gw.1", "payload": "explode"}])
    assert (status, data["field"]) == (400, "[0].payload")
    assert error_of(api, "POST", "/api/action", [{"resource": "task:t1", "payload": "on"}])[1]["field"] == (
        "[0].resource")


def test_bad_node_actions(api: Api) -> None:
    seed(api)
    assert error_of(api, "POST", "/api/action/node", {"action": "explode", "ids": ["gw.1"]})[1]["field"] == "action"
    assert error_of(api, "POST", "/api/action/node", {"action": "reboot", "ids": ["gw.8"]})[0] == 404
    assert error_of(api, "POST", "/api/action/node", {"action": "reboot"})[1]["field"] == "ids"
    assert error_of(api, "GET", "/api/action/node", action="reboot")[1]["field"] == "ids"
    assert api.sent == []


def test_gateway_discover_broadcasts_and_skips_disabled_gateways(api: Api) -> None:
    seed(api)
    seed(api, gateway="off", enabled=False)
    assert api.ok("POST", "/api/action/gateway", {"action": "discover_nodes", "gatewayIds": ["gw", "off"]}) == {
        "sent": 1, "skipped": 1}
    [downlink] = api.sent
    assert (downlink.gateway_id, downlink.raw, downlink.node_id) == ("gw", "255;255;3;0;20;", "255")
    api.ok("GET", "/api/action/gateway", action="discover_nodes", id="gw")
    assert len(api.sent) == 2
    assert error_of(api, "POST", "/api/action/gateway", {"action": "reboot", "ids": ["gw"]})[1]["field"] == "action"


def test_tasmota_set_field_goes_to_the_command_topic(api: Api) -> None:
    api.ok("POST", "/api/gateway", {"id": "tas", "provider": {"type": "tasmota"}})
    api.ok("POST", "/api/node", {"gatewayId": "tas", "nodeId": "plug1"})
    api.ok("POST", "/api/source", {"gatewayId": "tas", "nodeId": "plug1", "sourceId": "Control"})
    api.ok("POST", "/api/field", {"gatewayId": "tas", "nodeId": "plug1", "sourceId": "Control",
                                  "fieldId": "POWER", "metricType": "binary", "current": {"value": False}})
    api.ok("POST", "/api/action", [{"resource": "field:tas.plug1.Control.POWER", "payload": "toggle"}])
    assert (api.sent[-1].topic, api.sent[-1].raw) == ("cmnd/plug1/POWER", "ON")
    api.ok("POST", "/api/action/node", {"action": "reboot", "ids": ["tas.plug1"]})
    assert (api.sent[-1].topic, api.sent[-1].raw) == ("cmnd/plug1/Restart", "1")


# --------------------------------------------------------------------------------------------- metrics


def _points(api: Api, now: int) -> None:
    api.container.metrics.write([
        MetricPoint("gw.1.1.V_TEMP", "gw", "1", "1", "V_TEMP", "gauge_float", value, now - age_min * 60_000)
        for age_min, value in ((50, 20.0), (40, 22.0), (10, 24.0), (5, 26.0))
    ])
    api.container.metrics.flush()


def test_metrics_get_raw_and_windowed(api: Api) -> None:
    seed(api)
    now = now_ms()
    _points(api, now)
    raw = api.ok("GET", "/api/metric", quickId="field:gw.1.1.V_TEMP", start="-1h")
    assert [row["value"] for row in raw["field:gw.1.1.V_TEMP"]] == [20.0, 22.0, 24.0, 26.0]
    assert api.ok("GET", "/api/metric", quickId="field:gw.1.1.V_TEMP", start="-1h", window="none") == raw
    recent = api.ok("GET", "/api/metric", quick_id="field:gw.1.1.V_TEMP", start="-15m")
    assert [row["value"] for row in recent["field:gw.1.1.V_TEMP"]] == [24.0, 26.0]
    windowed = api.ok("GET", "/api/metric", quickId="field:gw.1.1.V_TEMP", start=iso_from_ms(now - 3_600_000),
                      stop=str(now), window="1h", functions=["max,min", "count"])
    rows = windowed["field:gw.1.1.V_TEMP"]  # hour windows aligned to the epoch: one or two of them
    assert 1 <= len(rows) <= 2 and set(rows[0]) == {"time", "max", "min", "count"}
    assert (max(r["max"] for r in rows), min(r["min"] for r in rows), sum(r["count"] for r in rows)) == (26.0, 20.0, 4)


def test_metrics_post_for_several_fields(api: Api) -> None:
    seed(api)
    now = now_ms()
    _points(api, now)
    result = api.ok("POST", "/api/metric", {"quickIds": ["field:gw.1.1.V_TEMP", "field:gw.1.1.V_STATUS"],
                                            "start": "-1h", "window": "2h", "functions": ["mean", "count"]})
    assert set(result) == {"field:gw.1.1.V_TEMP", "field:gw.1.1.V_STATUS"}
    means = [r for r in result["field:gw.1.1.V_TEMP"] if r.get("count")]
    assert sum(r["count"] for r in means) == 4
    reference_form = api.ok("POST", "/api/metric", {"global": {"start": "-20m"},
                                                    "individual": [{"name": "t", "tags": {"id": "gw.1.1.V_TEMP"}}]})
    assert [row["value"] for row in reference_form["t"]] == [24.0, 26.0]


@pytest.mark.parametrize(("query", "field"), [
    ({}, "quickId"),
    ({"quickId": "node:gw.1"}, "quickId"),
    ({"quickId": "field:gw.1.1.V_TEMP", "start": "yesterday"}, "start"),
    ({"quickId": "field:gw.1.1.V_TEMP", "window": "5 parsecs"}, "window"),
    ({"quickId": "field:gw.1.1.V_TEMP", "window": "1ms", "start": "-1w"}, "window"),
    ({"quickId": "field:gw.1.1.V_TEMP", "functions": "mean,mode"}, "functions"),
    ({"quickId": "field:gw.1.1.V_TEMP", "start": "now", "stop": "-1h"}, "start"),
])
def test_bad_metric_queries_are_400s(api: Api, query: dict[str, str], field: str) -> None:
    seed(api)
    status, data = error_of(api, "GET", "/api/metric", **query)
    assert (status, data["field"]) == (400, field), data


def test_text_metrics_aggregate_only_with_count_first_last(api: Api) -> None:
    seed(api)
    api.ok("POST", "/api/field", {"gatewayId": "gw", "nodeId": "1", "sourceId": "1", "fieldId": "V_TEXT",
                                  "metricType": "string"})
    status, data = error_of(api, "GET", "/api/metric", quickId="field:gw.1.1.V_TEXT", window="5m")
    assert (status, data["field"]) == (400, "functions") and "count, first and last" in data["message"]
    assert api.ok("GET", "/api/metric", quickId="field:gw.1.1.V_TEXT", window="5m", functions="last") == {
        "field:gw.1.1.V_TEXT": []}


def test_metrics_of_an_unknown_field_are_404(api: Api) -> None:
    assert error_of(api, "GET", "/api/metric", quickId="field:gw.1.1.V_NONE")[0] == 404
    assert error_of(api, "POST", "/api/metric", {"start": "-1h"})[1]["field"] == "quickIds"


# --------------------------------------------------------------------------------------------- composition root


def test_settings_come_from_the_environment_and_errors_name_the_variable() -> None:
    settings = Settings.from_env({"STORAGE": "DynamoDB", "TABLE_NAME": "t1", "MAX_BODY_BYTES": "2048",
                                  "METRICS": "none", "BUS": "eventbridge", "DOWNLINK": "iotdata", "LOG_LEVEL": "debug"})
    assert (settings.storage, settings.table_name, settings.max_body_bytes, settings.metrics, settings.bus,
            settings.downlink, settings.log_level) == ("dynamodb", "t1", 2048, "none", "eventbridge", "iotdata",
                                                       "DEBUG")
    assert Settings.from_env({}) == Settings()
    assert "t0ken-value" not in repr(Settings.from_env({"METRICS": "influxdb", "INFLUXDB_URL": "http://x",
                                                        "INFLUXDB_ORG": "o", "INFLUXDB_BUCKET": "b",
                                                        "INFLUXDB_TOKEN": "t0ken-value"}))
    for env, variable in [({"STORAGE": "mongodb"}, "STORAGE"), ({"MAX_BODY_BYTES": "lots"}, "MAX_BODY_BYTES"),
                          ({"MAX_BODY_BYTES": "0"}, "MAX_BODY_BYTES"), ({"METRICS": "influxdb"}, "INFLUXDB_URL"),
                          ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"), ({"DOWNLINK": "carrier-pigeon"}, "DOWNLINK")]:
        with pytest.raises(SettingsError, match=variable):
            Settings.from_env(env)


def test_a_default_stack_is_built_once_and_never_loads_the_aws_libraries(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import sys
        from chalicelib.bootstrap import Container
        container = Container.from_env()
        first = container.repository
        assert container.repository is first
        print(type(first).__name__, type(container.metrics).__name__, type(container.bus).__name__,
              type(container.downlink).__name__, *(m in sys.modules for m in ("boto3", "pynamodb", "influxdb_client")))
        container.close()
    """)
    env = {**os.environ, "DATA_DIR": str(tmp_path), "DUMP_INTERVAL_S": "0"}
    for name in ("STORAGE", "METRICS", "BUS", "DOWNLINK"):
        env.pop(name, None)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60,
                         check=True).stdout.split()
    assert out == ["SqliteRepository", "EmbeddedMetricStore", "LocalEventBus", "LocalDownlink", "False", "False",
                   "False"]
    assert (tmp_path / "metrics.sqlite3").exists() and (tmp_path / "repository.sqlite3").is_file()


# --------------------------------------------------------------------------------------------- status, document


def test_logs_carry_the_correlation_id_and_never_bodies(api: Api, monkeypatch: pytest.MonkeyPatch,
                                                        request: pytest.FixtureRequest) -> None:
    from chalicelib.api.observability import logger
    from chalicelib.observability import SERVICE

    stream = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", stream)
    # at INFO whatever ran before in this process (a local stack started in it set its default, WARNING, which a
    # logger made afterwards takes)
    level = logger._logger.level
    logger._logger.setLevel(logging.INFO)  # setLevel: it also clears the loggers' cached answers
    request.addfinalizer(lambda: logger._logger.setLevel(level))
    status, _, headers = api.call("POST", "/api/gateway", {"id": "gw", "provider": {"password": "hunter2"}},
                                  headers={"X-Request-Id": "req-42"})
    assert status == 200 and headers["X-Request-Id"] == "req-42"
    out = stream.getvalue()
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    [line] = [entry for entry in lines if entry.get("message") == "request"]
    assert (line["correlation_id"], line["route"], line["status"]) == ("req-42", "/api/gateway", 200)
    assert line["service"] == SERVICE and "hunter2" not in out


def test_status_and_version(api: Api) -> None:
    status = api.ok("GET", "/api/status")
    assert status["status"] == "ok" and status["metricsDBDisabled"] is False and status["uptime"] >= 0
    from mycontroller_protocol.version import VERSION

    assert api.ok("GET", "/api/version")["version"] == VERSION != "0+unknown"  # from the git tags (#21)


def test_openapi_document_matches_the_routes(api: Api) -> None:
    from openapi_spec_validator import validate

    from chalicelib.api import build_api
    from chalicelib.api.openapi import operations
    from chalicelib.api.routes import NOT_ALLOWED_PREFIX, document

    app = build_api(api.container)
    served = api.ok("GET", "/api/openapi.json")
    assert served == json.loads(json.dumps(document()))
    validate(served)
    routed = {(method, path) for path, entries in app.routes.items() for method, entry in entries.items()
              if not entry.view_name.startswith(NOT_ALLOWED_PREFIX)}
    assert operations(served) == routed
    for path, entries in app.routes.items():  # every other method of a path answers 405
        documented = {m.upper() for m in served["paths"][path]}
        assert set(entries) - documented == {m for m in ("GET", "POST", "PUT", "PATCH", "DELETE")} - documented
