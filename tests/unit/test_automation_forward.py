"""Forward payload: a field's new value travels to the destination's downlink; loops are refused when saved."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.adapters.repository_memory import MemoryRepository
from chalicelib.core.automation.forward import (
    find_loop,
    index_mappings,
    plan_forward,
    plan_forward_report,
    would_loop,
)
from chalicelib.core.automation.models import ForwardPayload
from chalicelib.core.automation.tasks import RepositoryLookup
from chalicelib.core.model import FieldModel, Gateway, Kind, Record, event
from chalicelib.core.ports import bus_event


def gateway(gateway_id: str, provider: str, **extra: Any) -> Record:
    return Gateway(id=gateway_id, provider={"type": provider}, **extra).record()


def field(gateway_id: str, node: str, source: str, field_id: str, metric_type: str = "binary",
          value: Any = None) -> Record:
    return FieldModel.model_validate({"gatewayId": gateway_id, "nodeId": node, "sourceId": source,
                                      "fieldId": field_id, "metricType": metric_type,
                                      "current": {"value": value}}).record()


class Lookup:
    def __init__(self, *records: tuple[Kind, Record]) -> None:
        self.records = {f"{kind.value}:{record['id']}": record for kind, record in records}

    def get_by_quick_id(self, quick_id: str) -> Record | None:
        return self.records.get(quick_id)

    def find_by_labels(self, kind: str, labels: Mapping[str, str]) -> list[Record]:
        return []


SWITCH = field("ms", "4", "2", "V_STATUS", value=True)
RELAY = field("tas", "plug1", "Control", "POWER")
DIMMER = field("ms", "5", "1", "V_PERCENTAGE", "gauge")
LOOKUP = Lookup((Kind.GATEWAY, gateway("ms", "mysensors_v2")), (Kind.GATEWAY, gateway("tas", "tasmota")),
                (Kind.FIELD, SWITCH), (Kind.FIELD, RELAY), (Kind.FIELD, DIMMER))


def mapping(mapping_id: str, source: str, destination: str, **extra: Any) -> dict[str, Any]:
    return {"id": mapping_id, "srcFieldId": source, "dstFieldId": destination, **extra}


def test_a_switch_update_travels_to_a_tasmota_relay_on_another_gateway() -> None:
    mappings = [mapping("m1", "field:ms.4.2.V_STATUS", "field:tas.plug1.Control.POWER")]
    [downlink] = plan_forward(event("updated", Kind.FIELD, SWITCH), mappings, LOOKUP)
    assert (downlink.gateway_id, downlink.provider, downlink.topic, downlink.raw) == (
        "tas", "tasmota", "cmnd/plug1/POWER", "ON")
    off = {**SWITCH, "current": {"value": False}}
    assert plan_forward(bus_event(event("updated", Kind.FIELD, off)), mappings, LOOKUP)[0].raw == "OFF"


def test_a_relay_update_travels_to_a_mysensors_node_as_its_serial_line() -> None:
    relay_on = {**RELAY, "current": {"value": True}}
    [downlink] = plan_forward(event("updated", Kind.FIELD, relay_on),
                              [mapping("m2", "tas.plug1.Control.POWER", "ms.4.2.V_STATUS")], LOOKUP)
    assert (downlink.gateway_id, downlink.raw, downlink.node_id) == ("ms", "4;2;1;0;2;1", "4")


def test_a_template_transforms_the_value() -> None:
    mappings = [mapping("m3", "field:ms.4.2.V_STATUS", "field:ms.5.1.V_PERCENTAGE",
                        template="{{ ternary(value, 80, 0) }}")]
    [downlink] = plan_forward(event("updated", Kind.FIELD, SWITCH), mappings, LOOKUP)
    assert downlink.raw == "5;1;1;0;3;80"
    report = plan_forward_report(event("updated", Kind.FIELD, SWITCH),
                                 [mapping("m4", "field:ms.4.2.V_STATUS", "field:ms.5.1.V_PERCENTAGE",
                                          template="{{ 1 / 0 }}")], LOOKUP)
    assert report.downlinks == [] and report.failures[0].mapping_id == "m4"
    assert "ZeroDivisionError" in report.failures[0].reason


def test_only_enabled_mappings_of_this_source_on_updates_forward() -> None:
    mappings = [
        mapping("on", "field:ms.4.2.V_STATUS", "field:tas.plug1.Control.POWER"),
        mapping("off", "field:ms.4.2.V_STATUS", "field:ms.5.1.V_PERCENTAGE", enabled=False),
        mapping("other", "field:ms.9.9.V_STATUS", "field:ms.5.1.V_PERCENTAGE"),
    ]
    assert [d.gateway_id for d in plan_forward(event("updated", Kind.FIELD, SWITCH), mappings, LOOKUP)] == ["tas"]
    assert plan_forward(event("created", Kind.FIELD, SWITCH), mappings, LOOKUP) == []
    assert plan_forward(event("updated", Kind.FIELD, {**SWITCH, "current": {"value": None}}), mappings, LOOKUP) == []
    assert plan_forward(event("updated", Kind.NODE, {"id": "ms.4"}), mappings, LOOKUP) == []
    index = index_mappings(mappings)
    assert [m.id for m in index["field:ms.4.2.V_STATUS"]] == ["on"]


def test_mappings_that_cannot_send_are_reported_not_raised() -> None:
    lookup = Lookup((Kind.GATEWAY, gateway("tas", "tasmota", enabled=False)), (Kind.FIELD, RELAY),
                    (Kind.FIELD, field("gone", "1", "1", "V_STATUS")))
    mappings = [
        mapping("missing-field", "field:ms.4.2.V_STATUS", "field:ms.7.7.V_STATUS"),
        mapping("disabled-gateway", "field:ms.4.2.V_STATUS", "field:tas.plug1.Control.POWER"),
        mapping("missing-gateway", "field:ms.4.2.V_STATUS", "field:gone.1.1.V_STATUS"),
    ]
    report = plan_forward_report(event("updated", Kind.FIELD, SWITCH), mappings, lookup)
    assert report.downlinks == []
    reasons = {f.mapping_id: f.reason for f in report.failures}
    assert "does not exist" in reasons["missing-field"]
    assert "disabled" in reasons["disabled-gateway"]
    assert "gateway 'gone'" in reasons["missing-gateway"]
    bad_value = plan_forward_report(event("updated", Kind.FIELD, {**SWITCH, "current": {"value": "maybe"}}),
                                    [mapping("m", "field:ms.4.2.V_STATUS", "field:ms.5.1.V_PERCENTAGE")], LOOKUP)
    assert "maybe" in bad_value.failures[0].reason


def test_forward_through_the_repository_lookup() -> None:
    repository = MemoryRepository(None, 0)
    try:
        repository.put(Kind.GATEWAY, gateway("gen", "mc_json"))
        repository.put(Kind.FIELD, field("gen", "hvac", "zone1", "setpoint", "gauge_float"))
        [downlink] = plan_forward(event("updated", Kind.FIELD, field("ms", "3", "1", "V_TEMP", "gauge_float", 19.5)),
                                  [mapping("m", "ms.3.1.V_TEMP", "gen.hvac.zone1.setpoint")],
                                  RepositoryLookup(repository))
        assert json.loads(downlink.raw) == {"n": "hvac", "s": "zone1", "f": "setpoint", "v": 19.5}
    finally:
        repository.close()


# --------------------------------------------------------------------------------------------- loops


def test_a_mapping_that_closes_a_loop_is_refused() -> None:
    chain = [mapping("ab", "a.1.1.V_STATUS", "b.1.1.V_STATUS"), mapping("bc", "b.1.1.V_STATUS", "c.1.1.V_STATUS")]
    closing = mapping("ca", "c.1.1.V_STATUS", "a.1.1.V_STATUS")
    assert would_loop(chain, closing)
    assert find_loop(chain, closing) == ["field:c.1.1.V_STATUS", "field:a.1.1.V_STATUS", "field:b.1.1.V_STATUS",
                                         "field:c.1.1.V_STATUS"]
    assert would_loop(chain, mapping("ba", "b.1.1.V_STATUS", "a.1.1.V_STATUS"))
    assert would_loop([mapping("x", "a.1.1.V_STATUS", "b.1.1.V_STATUS", enabled=False)],
                      ForwardPayload.model_validate(mapping("y", "b.1.1.V_STATUS", "a.1.1.V_STATUS")))


def test_mappings_without_a_loop_are_accepted() -> None:
    chain = [mapping("ab", "a.1.1.V_STATUS", "b.1.1.V_STATUS"), mapping("bc", "b.1.1.V_STATUS", "c.1.1.V_STATUS")]
    assert not would_loop(chain, mapping("ad", "a.1.1.V_STATUS", "d.1.1.V_STATUS"))
    assert not would_loop(chain, mapping("ac", "a.1.1.V_STATUS", "c.1.1.V_STATUS"))  # a diamond, not a cycle
    assert not would_loop([], mapping("ab", "a.1.1.V_STATUS", "b.1.1.V_STATUS"))
    # Replacing a mapping (same id) does not count its old version: reversing ab leaves b→a and b→c, no cycle.
    assert not would_loop(chain, mapping("ab", "b.1.1.V_STATUS", "a.1.1.V_STATUS"))
    assert would_loop(chain, mapping("bc", "b.1.1.V_STATUS", "a.1.1.V_STATUS"))  # b→a with a→b still loops


def test_forward_payload_validation_names_the_field() -> None:
    with pytest.raises(ValidationError, match="dstFieldId must differ"):
        ForwardPayload.model_validate(mapping("self", "a.1.1.V_STATUS", "field:a.1.1.V_STATUS"))
    with pytest.raises(ValidationError) as caught:
        ForwardPayload.model_validate(mapping("n", "a.1.1.V_STATUS", "node:a.1"))
    assert caught.value.errors()[0]["loc"] == ("dstFieldId",)
    with pytest.raises(ValidationError) as caught:
        ForwardPayload.model_validate(mapping("t", "a.1.1.V_STATUS", "b.1.1.V_STATUS", template="{{ value"))
    assert caught.value.errors()[0]["loc"] == ("template",)
    assert ForwardPayload.model_validate(mapping("ok", "a.1.1.V_STATUS", "b.1.1.V_STATUS")).src_field_id == \
        "field:a.1.1.V_STATUS"
