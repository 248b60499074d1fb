"""Websocket subscription filters: AND between parts, OR within a list, a device quick id covers what lies beneath
it, private kinds never go out, and the index answers exactly what scanning every filter would."""

from __future__ import annotations

import random
from typing import Any

import pytest

from chalicelib.core.subscriptions import (
    MAX_LIST_ITEMS,
    SubscriptionError,
    SubscriptionFilter,
    SubscriptionIndex,
    check_subscription_id,
    event_keys,
    parse_filter,
)


def field_event(field_id: str = "gw.1.2.V_TEMP", kind: str = "updated", **labels: str) -> dict[str, Any]:
    return {"type": kind, "entityType": "field", "entityId": field_id, "entityQuickId": f"field:{field_id}",
            "entity": {"id": field_id, "labels": labels, "current": {"value": 21.5}}}


def node_event(node_id: str = "gw.1", kind: str = "updated") -> dict[str, Any]:
    return {"type": kind, "entityType": "node", "entityId": node_id, "entityQuickId": f"node:{node_id}",
            "entity": {"id": node_id, "labels": {}}}


def test_empty_filter_matches_everything_public() -> None:
    flt = parse_filter({})
    assert flt.matches(field_event()) and flt.matches(node_event())
    assert not flt.matches({"type": "updated", "entityType": "user", "entityId": "admin", "entity": {}})
    assert parse_filter(None).matches(field_event())


def test_parts_are_anded_and_lists_ored() -> None:
    flt = parse_filter({"entityTypes": ["field", "node"], "eventTypes": ["updated"], "labels": {"room": "kitchen"}})
    assert flt.matches(field_event(room="kitchen"))
    assert not flt.matches(field_event(room="hall"))
    assert not flt.matches(field_event(kind="created", room="kitchen"))
    assert not flt.matches(node_event())  # no labels → the label part fails
    assert not parse_filter({"entityTypes": ["gateway"]}).matches(field_event())


def test_quick_id_of_a_node_matches_its_sources_and_fields_only() -> None:
    flt = parse_filter({"quickIds": ["node:gw.1"]})
    assert flt.matches(node_event("gw.1"))
    assert flt.matches(field_event("gw.1.2.V_TEMP"))
    assert flt.matches({"type": "updated", "entityType": "source", "entityId": "gw.1.2", "entity": {}})
    assert not flt.matches(field_event("gw.10.2.V_TEMP"))
    assert not flt.matches(node_event("gw.2"))
    assert not flt.matches({"type": "updated", "entityType": "gateway", "entityId": "gw", "entity": {}})
    assert event_keys(field_event("g.n.s.f")) == ["field:g.n.s.f", "gateway:g", "node:g.n", "source:g.n.s"]


def test_a_field_quick_id_matches_that_field_and_nothing_else() -> None:
    flt = parse_filter({"quickIds": ["field:gw.1.2.V_TEMP"]})
    assert flt.matches(field_event("gw.1.2.V_TEMP"))
    assert not flt.matches(field_event("gw.1.2.V_HUM"))
    assert not flt.matches(node_event("gw.1"))


@pytest.mark.parametrize("bad, where", [
    ({"entityTypes": ["fields"]}, "entityTypes"),
    ({"entityTypes": ["user"]}, "entityTypes"),
    ({"eventTypes": ["changed"]}, "eventTypes"),
    ({"quickIds": ["gw.1.2"]}, "quickIds"),
    ({"labels": {"room": 3}}, "labels"),
    ({"colour": "red"}, "colour"),
    ({"quickIds": [f"field:g.1.1.F{i}" for i in range(MAX_LIST_ITEMS + 1)]}, "quickIds"),
    ("everything", "filter"),
])
def test_bad_filters_are_refused_naming_the_part(bad: Any, where: str) -> None:
    with pytest.raises(SubscriptionError, match=where):
        parse_filter(bad)


def test_subscription_ids_are_checked() -> None:
    assert check_subscription_id("field-page/1") == "field-page/1"
    for bad in ("", "x" * 65, 3, None, "a b"):
        with pytest.raises(SubscriptionError):
            check_subscription_id(bad)


def test_index_finds_only_the_connections_that_asked() -> None:
    index = SubscriptionIndex.build([
        ("c1", {"temp": {"quickIds": ["field:gw.1.2.V_TEMP"]}}),
        ("c2", {"node": {"quickIds": ["node:gw.1"], "eventTypes": ["updated"]}, "all": {}}),
        ("c3", {"nodes": {"entityTypes": ["node"]}}),
        ("c4", {"nothing": {"quickIds": []}}),
    ])
    assert index.match(field_event("gw.1.2.V_TEMP")) == {"c1": ["temp"], "c2": ["node", "all"]}
    assert index.match(field_event("gw.1.2.V_HUM")) == {"c2": ["node", "all"]}
    assert index.match(node_event("gw.2")) == {"c3": ["nodes"], "c2": ["all"]}
    assert index.match({"type": "updated", "entityType": "service_token", "entityId": "t", "entity": {}}) == {}
    assert index.match({"type": "updated"}) == {}


def test_index_agrees_with_scanning_every_filter() -> None:
    rng = random.Random(7)
    fields = [f"g{g}.{n}.{s}.F{f}" for g in range(2) for n in range(3) for s in range(2) for f in range(2)]

    def random_filter() -> dict[str, Any]:
        data: dict[str, Any] = {}
        if rng.random() < 0.5:
            data["quickIds"] = rng.sample([f"field:{f}" for f in fields] + ["node:g0.1", "gateway:g1",
                                                                               "source:g0.2.1"], rng.randint(1, 3))
        if rng.random() < 0.4:
            data["entityTypes"] = rng.sample(["field", "node", "source", "gateway"], rng.randint(1, 2))
        if rng.random() < 0.3:
            data["eventTypes"] = rng.sample(["created", "updated", "deleted"], rng.randint(1, 2))
        if rng.random() < 0.3:
            data["labels"] = {"room": rng.choice(["kitchen", "hall"])}
        return data

    connections = [(f"c{i}", {f"s{j}": random_filter() for j in range(rng.randint(1, 3))}) for i in range(60)]
    index = SubscriptionIndex.build(connections)
    parsed = [(cid, sid, SubscriptionFilter.model_validate(data)) for cid, subs in connections
              for sid, data in subs.items()]
    for _ in range(400):
        event = field_event(rng.choice(fields), rng.choice(["created", "updated", "deleted"]),
                            room=rng.choice(["kitchen", "hall"]))
        if rng.random() < 0.3:
            event = node_event(".".join(rng.choice(fields).split(".")[:2]), rng.choice(["updated", "created"]))
        expected: dict[str, set[str]] = {}
        for cid, sid, flt in parsed:
            if flt.matches(event):
                expected.setdefault(cid, set()).add(sid)
        assert {cid: set(sids) for cid, sids in index.match(event).items()} == expected
