"""The device shadow contract: the cloud makes a thing's desired section equal to a document; the edge's
reported section is its own.

``update_desired`` is not a merge: keys the new document no longer has, at any depth, are gone afterwards,
while what the edge reported stays. Two writers computing desired from the repository may race; the last one
to land must leave exactly its document (the iot-data adapter sends the shadow version it read and computes
again on a conflict). The edge's report goes in as the edge sends it: an MQTT update locally, an iot-data
update under moto.
"""

from __future__ import annotations

from typing import Any

from tests.contract.harnesses import ShadowHarness

GW1 = {"provider": {"type": "mysensors_v2", "protocol": {"type": "serial", "portname": "/dev/ttyUSB0",
                                                          "baudRate": 115200}}, "enabled": True}
GW2 = {"provider": {"type": "tasmota", "protocol": {"type": "mqtt", "broker": "tcp://127.0.0.1:1883"}},
       "enabled": False}


def desired(**gateways: Any) -> dict[str, Any]:
    return {"gateways": gateways}


def test_a_thing_without_a_shadow_has_none(shadows: ShadowHarness) -> None:
    assert shadows.store.get(shadows.new_thing()) is None


def test_update_desired_then_get_returns_it(shadows: ShadowHarness) -> None:
    thing = shadows.new_thing()
    document = desired(gw1=GW1, gw2=GW2)

    shadows.store.update_desired(thing, document)

    state = shadows.store.get(thing)
    assert state is not None and state.get("desired") == document
    assert "reported" not in state


def test_keys_the_new_document_no_longer_has_are_removed(shadows: ShadowHarness) -> None:
    thing = shadows.new_thing()
    shadows.store.update_desired(thing, desired(gw1=GW1, gw2=GW2))
    slimmer = {**GW1, "provider": {"type": "mysensors_v2", "protocol": {"type": "serial", "portname": "/dev/ttyACM0"}}}

    shadows.store.update_desired(thing, desired(gw1=slimmer))

    state = shadows.store.get(thing)
    assert state is not None and state.get("desired") == desired(gw1=slimmer)  # gw2 and baudRate are gone


def test_an_empty_document_leaves_no_desired_state(shadows: ShadowHarness) -> None:
    thing = shadows.new_thing()
    shadows.store.update_desired(thing, desired(gw1=GW1))

    shadows.store.update_desired(thing, {})

    state = shadows.store.get(thing)
    assert state is not None and not state.get("desired")


def test_the_edges_report_is_kept_beside_desired(shadows: ShadowHarness) -> None:
    thing = shadows.new_thing()
    shadows.store.update_desired(thing, desired(gw1=GW1, gw2=GW2))
    reported = {"gateways": {"gw1": {"state": "up", "since": 1_700_000_000}}, "agent": "1.2.0"}

    shadows.report(thing, reported)
    shadows.store.update_desired(thing, desired(gw2=GW2))

    state = shadows.store.get(thing)
    assert state is not None
    assert state.get("desired") == desired(gw2=GW2)
    assert state.get("reported") == reported, "writing desired must not touch what the edge reported"


def test_things_do_not_share_a_shadow(shadows: ShadowHarness) -> None:
    first, second = shadows.new_thing(), shadows.new_thing()

    shadows.store.update_desired(first, desired(gw1=GW1))
    shadows.store.update_desired(second, desired(gw2=GW2))

    assert (shadows.store.get(first) or {}).get("desired") == desired(gw1=GW1)
    assert (shadows.store.get(second) or {}).get("desired") == desired(gw2=GW2)


def test_the_last_of_two_racing_writers_leaves_exactly_its_document(shadows: ShadowHarness) -> None:
    thing = shadows.new_thing()
    shadows.store.update_desired(thing, desired(gw1=GW1))

    with shadows.racing(thing, desired(gw1=GW1, gw2=GW2)):  # lands after our read, before our write
        shadows.store.update_desired(thing, desired(gw3=GW2))

    state = shadows.store.get(thing)
    assert state is not None and state.get("desired") == desired(gw3=GW2)


def test_get_answers_the_desired_and_reported_sections_only(shadows: ShadowHarness) -> None:
    thing = shadows.new_thing()
    shadows.store.update_desired(thing, desired(gw1=GW1))
    shadows.report(thing, {"agent": "1.2.0"})

    state = shadows.store.get(thing)

    assert state == {"desired": desired(gw1=GW1), "reported": {"agent": "1.2.0"}}
