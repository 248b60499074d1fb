"""Dashboards through the API (memory and DynamoDB repositories): create, read, list, replace and delete in the
reference's shape, widget configs checked by type, bus events announced, and a token required."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.api_helpers import Api

pytestmark = pytest.mark.integration


def home(**extra: Any) -> dict[str, Any]:
    return {
        "id": "home",
        "title": "Home",
        "description": "Ground floor",
        "favorite": True,
        "labels": {"floor": "0"},
        "widgets": [
            {"id": "w1", "title": "Lamp", "type": "switch", "layout": {"w": 2, "h": 2, "x": 0, "y": 0},
             "config": {"resource": "field:sim.1.3.V_STATUS"}},
            {"id": "w2", "title": "Temperature", "type": "line_chart", "layout": {"w": 6, "h": 4, "x": 2, "y": 0},
             "config": {"resources": ["field:sim.1.1.V_TEMP"], "duration": "-6h", "window": "10m"}},
            {"id": "w3", "title": "Humidity", "type": "gauge", "layout": {"w": 3, "h": 3, "x": 8, "y": 0},
             "config": {"resource": "field:sim.1.2.V_HUM", "min": 0, "max": 100, "unit": "%"}},
            {"id": "w4", "title": "Dimmer", "type": "light", "showTitle": False, "static": True,
             "layout": {"w": 4, "h": 3, "x": 0, "y": 4},
             "config": {"power": "field:sim.1.3.V_STATUS", "brightness": "field:sim.1.4.V_PERCENTAGE",
                        "rgb": "field:sim.1.5.V_RGB"}},
            {"id": "w5", "type": "key_value_table", "layout": {"w": 4, "h": 4, "x": 4, "y": 4},
             "config": {"items": [{"label": "Battery", "resource": "node:sim.1.labels.battery", "unit": "%"}]}},
            {"id": "w6", "type": "slider", "config": {"resource": "field:sim.1.4.V_PERCENTAGE", "step": 5}},
            {"id": "w7", "type": "button", "config": {"resource": "field:sim.1.3.V_STATUS"}},
            {"id": "w8", "type": "empty"},
        ],
        **extra,
    }


def test_dashboard_crud_in_the_reference_shape(api: Api) -> None:
    stored = api.ok("POST", "/api/dashboard", home())
    assert stored["id"] == "home" and stored["modifiedOn"] and stored["favorite"] is True
    assert [w["type"] for w in stored["widgets"]] == ["switch", "line_chart", "gauge", "light", "key_value_table",
                                                      "slider", "button", "empty"]
    light = stored["widgets"][3]
    assert (light["showTitle"], light["static"], light["layout"]) == (False, True, {"w": 4, "h": 3, "x": 0, "y": 4})
    assert light["config"]["brightness"] == "field:sim.1.4.V_PERCENTAGE" and light["config"]["rgbFormat"] == "hex"
    assert stored["widgets"][0]["config"] == {"resource": "field:sim.1.3.V_STATUS", "onPayload": "1",
                                              "offPayload": "0"}
    assert stored["widgets"][7]["layout"] == {"w": 4, "h": 4, "x": 0, "y": 0}
    assert api.ok("GET", "/api/dashboard/home") == stored
    assert api.ok("GET", "/api/dashboard/dashboard:home") == stored

    other = api.ok("POST", "/api/dashboard", {"title": "Garden", "widgets": []})
    assert len(other["id"]) == 32  # a new id when none is given
    page = api.ok("GET", "/api/dashboard", sortBy="title")
    assert page["count"] == 2 and [d["title"] for d in page["data"]] == ["Garden", "Home"]
    assert api.ok("GET", "/api/dashboard", filter='[{"k":"favorite","o":"eq","v":true}]')["count"] == 1

    replaced = api.ok("POST", "/api/dashboard", {"id": "home", "title": "Home 2", "widgets": []})
    assert replaced["widgets"] == [] and replaced["labels"] == {}  # upsert replaces
    assert [(e.detail["type"], e.detail["entityId"]) for e in api.events
            if e.detail["entityType"] == "dashboard"] == [("created", "home"), ("created", other["id"]),
                                                          ("updated", "home")]
    assert api.ok("DELETE", "/api/dashboard", ["home", other["id"]]) == {"deleted": 2, "cascaded": 0}
    assert api.call("GET", "/api/dashboard/home")[0] == 404
    assert api.call("DELETE", "/api/dashboard", ["home"])[0] == 404
    assert api.events[-1].detail["type"] == "deleted"


@pytest.mark.parametrize("api", ["memory"], indirect=True)
@pytest.mark.parametrize("change, field", [
    ({"widgets": [{"id": "a", "type": "clock"}]}, "widgets[0].type"),
    ({"widgets": [{"id": "a"}, {"id": "a"}]}, "widgets"),
    ({"widgets": [{"type": "switch"}]}, "widgets[0].id"),
    ({"widgets": [{"id": "a", "layout": {"w": 0}}]}, "widgets[0].layout.w"),
    ({"widgets": [{"id": "a", "layout": {"x": 48}}]}, "widgets[0].layout.x"),
    ({"widgets": [{"id": "a", "type": "switch", "config": {"resource": "sim.1.3"}}]}, "widgets[0].config"),
    ({"widgets": [{"id": "a", "type": "gauge", "config": {"min": 10, "max": 5}}]}, "widgets[0].config"),
    ({"widgets": [{"id": "a", "type": "light", "config": {}}]}, "widgets[0].config"),
    ({"widgets": [{"id": "a", "type": "line_chart", "config": {"resources": ["nope"]}}]}, "widgets[0].config"),
    ({"widgets": [{"id": "a", "type": "key_value_table", "config": {"items": [{"label": "x"}]}}]}, "widgets[0].config"),
    ({"id": "has.dot"}, "id"),
    ({"favorite": "very"}, "favorite"),
])
def test_bad_dashboards_are_400_naming_the_field(api: Api, change: dict[str, Any], field: str) -> None:
    status, body, _ = api.call("POST", "/api/dashboard", {"id": "d", "title": "x", **change})
    assert status == 400 and body["field"] == field, body
    assert api.call("GET", "/api/dashboard/d")[0] == 404


@pytest.mark.parametrize("api", ["memory"], indirect=True)
def test_dashboards_need_a_token(api: Api) -> None:
    assert api.call("GET", "/api/dashboard", auth=False)[0] == 401
    assert api.call("POST", "/api/dashboard", home(), auth=False)[0] == 401
    assert api.call("GET", "/api/dashboard/home")[0] == 404
