"""Inputs and orders that once escaped the processor or the ingest function, now failing alone."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.adapters.bus_local import LocalEventBus
from chalicelib.adapters.downlink_local import LocalDownlink
from chalicelib.adapters.metrics_embedded import EmbeddedMetricStore
from chalicelib.adapters.repository_memory import MemoryRepository
from chalicelib.core.identity import ingest_body
from chalicelib.core.model import Kind
from chalicelib.core.ops import FieldValue, NodeState, Op
from chalicelib.core.processor import Processor
from chalicelib.core.providers import default_interpreters
from chalicelib.functions.ingest import Ingest
from mycontroller_protocol.envelope import Envelope, encode_publish

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def record(envelopes: list[Envelope]) -> str:
    """An ingest record as the IoT rule makes it, from edge ``edge-1``."""
    return ingest_body("edge-1", encode_publish(envelopes))


def ms(gateway: str, t: int, seq: int, mid: str, raw: str, provider: str = "mysensors_v2") -> Envelope:
    return Envelope(gateway, provider, T0 + t, seq, mid, raw)


class _Odd:
    """A minimal third-party interpreter: JSON in, one FieldValue (or a node-down NodeState) out."""

    provider = "odd"

    def interpret(self, envelope: Envelope, gateway: Any) -> list[Op]:
        data = json.loads(envelope.raw)
        if data.get("down"):
            return [NodeState("n1", "down", "last will")]
        return [FieldValue("n1", "s1", data.get("f", "f1"), data["v"], data.get("m", "gauge"))]

    def reply_value(self, gateway: Any, field: Any) -> None:
        return None

    def node_id_response(self, gateway: Any, node_id: int) -> Any:
        raise ValueError("no ids here")


def make(extra: dict[str, Any] | None = None) -> tuple[MemoryRepository, EmbeddedMetricStore, Processor]:
    repo = MemoryRepository(None)
    metrics = EmbeddedMetricStore(":memory:")
    interpreters = default_interpreters()
    interpreters.update(extra or {})
    return repo, metrics, Processor(repo, metrics, interpreters, clock=lambda: T0)


def make_ingest() -> tuple[MemoryRepository, Ingest]:
    repo, _metrics, processor = make()
    return repo, Ingest(processor, LocalEventBus(mode="sync"), LocalDownlink())


# ------------------------------------------------------------------------------------------ per-message failures


def test_huge_gauge_number_fails_only_its_record_not_the_whole_ingest_batch() -> None:
    """V_PERCENTAGE (gauge) '1e30' converts to int(1e30); the embedded store cannot hold it and the flush
    raises OverflowError out of Ingest.run: the whole SQS batch fails and the good record's points are lost."""
    repo, ingest = make_ingest()
    records = [
        {"messageId": "bad", "body": record([ms("gw1", 0, 1, "m-bad", "1;1;1;0;3;1e30")])},
        {"messageId": "good", "body": record([ms("gw1", 1, 2, "m-good", "1;2;1;0;0;21.5")])},
    ]
    outcome = ingest.run(records)  # must not raise
    assert set(outcome.failed_records) <= {"bad"}
    assert repo.get(Kind.FIELD, "gw1.1.2.V_TEMP")["current"]["value"] == 21.5


def test_huge_integer_from_mc_json_does_not_fail_the_batch() -> None:
    _repo, ingest = make_ingest()
    bad = json.dumps({"n": "a", "s": "b", "f": "c", "v": 10**30, "m": "counter"})
    records = [
        {"messageId": "bad", "body": record([ms("gw1", 0, 1, "m-bad", bad, provider="mc_json")])},
        {"messageId": "good", "body": record([ms("gw1", 1, 2, "m-good", "1;2;1;0;0;21.5")])},
    ]
    outcome = ingest.run(records)
    assert set(outcome.failed_records) <= {"bad"}


def test_gateway_id_outside_the_id_pattern_fails_its_messages_not_the_batch() -> None:
    """Envelope validation lets any dot-free gateway id through; Gateway(id=...) then raises a pydantic
    ValidationError out of Processor.process (in _load_gateways) and takes the good gateway's messages with it."""
    repo, _metrics, processor = make()
    result = processor.process([
        ms("gw 1", 0, 1, "odd", "1;1;1;0;0;21.5"),
        ms("gw1", 1, 1, "good", "1;1;1;0;0;21.5"),
    ])
    assert [f.message_id for f in result.failures] == ["odd"]
    assert repo.get(Kind.FIELD, "gw1.1.1.V_TEMP") is not None


def test_field_value_with_unknown_metric_type_fails_only_that_message() -> None:
    """A new field whose op names an unknown metric type: MetricType(op.metric_type) in _Batch._field raises
    ValueError out of the batch (an existing field gets a clean per-message failure instead)."""
    repo, _metrics, processor = make({"odd": _Odd()})
    result = processor.process([
        ms("gw1", 0, 1, "weird", json.dumps({"v": 1, "m": "weird"}), provider="odd"),
        ms("gw1", 1, 2, "good", "1;1;1;0;0;21.5"),
    ])
    assert [f.message_id for f in result.failures] == ["weird"]
    assert repo.get(Kind.FIELD, "gw1.1.1.V_TEMP") is not None


def test_field_value_with_invalid_field_id_fails_only_that_message() -> None:
    _repo, _metrics, processor = make({"odd": _Odd()})
    result = processor.process([
        ms("gw1", 0, 1, "badid", json.dumps({"v": 1, "f": "a b"}), provider="odd"),
        ms("gw1", 1, 2, "good", "1;1;1;0;0;21.5"),
    ])
    assert [f.message_id for f in result.failures] == ["badid"]


# ------------------------------------------------------------------------------------------ node up / down


def test_traffic_after_node_down_in_the_same_batch_brings_it_up_as_one_by_one_does() -> None:
    """_apply_group calls self._node(..., first_ts): values at t=3 and t=7 with a last-will 'down' at t=5
    leave the node down, while the same messages one batch each leave it up."""
    lines = [
        ms("gw1", 3, 1, "a", json.dumps({"v": 1}), provider="odd"),
        ms("gw1", 5, 2, "d", json.dumps({"down": 1}), provider="odd"),
        ms("gw1", 7, 3, "c", json.dumps({"v": 2}), provider="odd"),
    ]
    one_by_one, _m, processor = make({"odd": _Odd()})
    for envelope in lines:
        processor.process([envelope])
    batched, _m2, processor2 = make({"odd": _Odd()})
    processor2.process(lines)
    assert one_by_one.get(Kind.NODE, "gw1.n1")["state"]["status"] == "up"
    assert batched.get(Kind.NODE, "gw1.n1")["state"]["status"] == "up"


# ------------------------------------------------------------------------------------------ I_ID_REQUEST


def test_id_request_does_not_hand_out_the_id_of_a_node_new_in_the_same_batch() -> None:
    """Node 1 (a static id) reports a value in the same batch as an I_ID_REQUEST: field values are applied
    after the other ops, so _node_id_request does not see node 1 yet and hands out id 1 again."""
    _repo, _metrics, processor = make()
    result = processor.process([
        ms("gw1", 0, 1, "a", "1;1;1;0;0;21.5"),
        ms("gw1", 1, 2, "b", "255;255;3;0;3;"),
    ])
    answers = [d.raw for d in result.downlinks if d.raw.startswith("255;255;3;0;4;")]
    assert answers and answers[0] != "255;255;3;0;4;1"


def test_gateway_first_seen_through_an_edge_state_message_still_answers_its_devices() -> None:
    """The edge agent's first publish for a gateway is usually its 'gateway_state' (provider 'edge'); the
    gateway is then created with provider type 'unknown' and never corrected, so I_ID_REQUEST fails forever
    ('no known provider') and requests are never answered (AWS path: nothing else registers gateways)."""
    _repo, _metrics, processor = make()
    state = json.dumps({"type": "gateway_state", "status": "up", "message": "connected"})
    processor.process([ms("gw1", 0, 1, "s", state, provider="edge")])
    result = processor.process([ms("gw1", 1, 2, "id", "255;255;3;0;3;")])
    assert not result.failures, result.failures
    assert any(d.raw.startswith("255;255;3;0;4;") for d in result.downlinks)


def test_late_traffic_from_before_a_node_went_down_does_not_bring_it_up() -> None:
    from chalicelib.adapters.metrics_none import NoMetricStore
    from chalicelib.adapters.repository_memory import MemoryRepository
    from chalicelib.core.model import Kind, iso_from_ms
    from chalicelib.core.processor import Processor
    from mycontroller_protocol.envelope import Envelope

    repo = MemoryRepository(None)
    processor = Processor(repo, NoMetricStore())
    t0 = 1_767_225_600_000
    processor.process([Envelope("gw9", "mysensors_v2", t0, 1, "late-1", "4;1;1;0;0;20.0")])
    node = repo.get(Kind.NODE, "gw9.4")
    assert node is not None
    repo.put(Kind.NODE, {**node, "state": {"status": "down", "message": "silent", "since": iso_from_ms(t0 + 60_000)}})
    processor.process([Envelope("gw9", "mysensors_v2", t0 + 30_000, 2, "late-2", "4;1;1;0;0;21.0")])
    node = repo.get(Kind.NODE, "gw9.4")
    assert node is not None and node["state"]["status"] == "down"
    processor.process([Envelope("gw9", "mysensors_v2", t0 + 90_000, 3, "late-3", "4;1;1;0;0;22.0")])
    node = repo.get(Kind.NODE, "gw9.4")
    assert node is not None and node["state"]["status"] == "up"
