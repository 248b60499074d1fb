"""Which failures are kept for good and which are retried (``functions/ingest.py``, ``processor.results.permanent``).

For good: the same bytes would fail the same way again (unreadable, invalid, a stored record that cannot be read):
put in the dead letters at once, alone, with the reason; the SQS record is acknowledged. For now: anything else (a
store or network error): the SQS record is reported in ``batchItemFailures`` and retried."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from chalicelib.adapters.bus_local import LocalEventBus
from chalicelib.adapters.downlink_local import LocalDownlink
from chalicelib.adapters.metrics_embedded import EmbeddedMetricStore
from chalicelib.adapters.repository_memory import MemoryRepository
from chalicelib.core.identity import ingest_body, read_ingest_body
from chalicelib.core.model import Kind
from chalicelib.core.ops import FieldValue, Op
from chalicelib.core.ports import DeadLetter
from chalicelib.core.processor import Processor
from chalicelib.core.processor.results import UnreadableRecord, permanent
from chalicelib.core.providers import default_interpreters
from chalicelib.core.publish_reader import decode_publish
from chalicelib.functions.ingest import Ingest
from mycontroller_protocol.envelope import Envelope, encode_publish

T0 = 1_767_225_600_000


class Letters:
    def __init__(self, fail: bool = False) -> None:
        self.letters: list[DeadLetter] = []
        self.fail = fail

    def put(self, letters: Sequence[DeadLetter]) -> None:
        if self.fail:
            raise OSError("disk full")
        self.letters.extend(letters)


class Flaky:
    """An interpreter whose lookups fail for now (a store it reads is down) for values of 'down'."""

    provider = "flaky"

    def interpret(self, envelope: Envelope, gateway: Any) -> list[Op]:
        if envelope.raw == "down":
            raise ConnectionError("the store is down")
        return [FieldValue("n1", "s1", "f1", envelope.raw, "gauge_float")]


def make(letters: Letters | None = None) -> tuple[MemoryRepository, Ingest, Letters]:
    repo = MemoryRepository(None)
    interpreters = {**default_interpreters(), "flaky": Flaky()}
    processor = Processor(repo, EmbeddedMetricStore(":memory:"), interpreters, clock=lambda: T0)
    letters = letters or Letters()
    return repo, Ingest(processor, LocalEventBus(mode="sync"), LocalDownlink(), dead_letters=letters), letters


def record(record_id: str, envelopes: list[Envelope], thing: str = "edge-1") -> dict[str, Any]:
    return {"messageId": record_id, "body": ingest_body(thing, encode_publish(envelopes))}


def line(gateway: str, seq: int, raw: str, provider: str = "mysensors_v2") -> Envelope:
    return Envelope(gateway, provider, T0 + seq, seq, f"{gateway}-{seq}", raw)


@pytest.mark.parametrize(("error", "lasting"), [
    (ValueError("bad"), True), (KeyError("metricType"), True), (TypeError("x"), True), (ZeroDivisionError(), True),
    (UnreadableRecord("stored node"), True), (ConnectionError("down"), False), (OSError("disk"), False),
    (TimeoutError(), False), (RuntimeError("?"), False),
])
def test_what_is_permanent(error: BaseException, lasting: bool) -> None:
    assert permanent(error) is lasting


def test_an_unusable_message_is_kept_alone_and_its_record_acknowledged() -> None:
    repo, ingest, letters = make()
    outcome = ingest.run([record("r1", [line("gw", 1, "1;1;1;0;0;20.5"), line("gw", 2, "1;1;1;0;0;21.5;extra"),
                                        line("gw", 3, "1;1;1;0;0;22.5")])])
    assert outcome.failed_records == {}
    [kept] = letters.letters
    thing, publish = read_ingest_body(kept.body)
    [envelope], _ = decode_publish(publish)
    assert (thing, envelope.message_id, envelope.raw) == ("edge-1", "gw-2", "1;1;1;0;0;21.5;extra")
    assert kept.reason.startswith("message gw-2 of gateway gw: field gw.1.1.V_TEMP: ")
    assert repo.get(Kind.FIELD, "gw.1.1.V_TEMP")["current"]["value"] == 22.5


def test_a_message_failing_for_now_retries_its_record_and_is_not_dead_lettered() -> None:
    repo, ingest, letters = make()
    outcome = ingest.run([record("r1", [line("fl", 1, "1.5", "flaky"), line("fl", 2, "down", "flaky")]),
                          record("r2", [line("fl", 3, "2.5", "flaky")])])
    assert set(outcome.failed_records) == {"r1"} and "the store is down" in outcome.failed_records["r1"]
    assert letters.letters == []
    assert repo.get(Kind.FIELD, "fl.n1.s1.f1")["current"]["value"] == 2.5


def test_letters_that_cannot_be_kept_make_their_records_retried() -> None:
    _repo, ingest, _letters = make(Letters(fail=True))
    outcome = ingest.run([record("r1", [line("gw", 1, "1;1;1;0;0;x")]), record("r2", [line("gw", 2, "1;1;1;0;0;1")])])
    assert set(outcome.failed_records) == {"r1"} and "not dead-lettered: OSError: disk full" in \
        outcome.failed_records["r1"]


def test_the_bad_envelopes_of_a_publish_are_kept_without_their_good_neighbours() -> None:
    repo, ingest, letters = make()
    good = line("gw", 1, "1;1;1;0;0;20.5").to_wire()
    publish = json.dumps({"v": 1, "e": [good, {"g": "gw", "p": "mysensors_v2"}]})
    outcome = ingest.run([{"messageId": "r1", "body": ingest_body("edge-1", publish)}])
    assert outcome.failed_records == {}
    [kept] = letters.letters
    _thing, body = read_ingest_body(kept.body)
    assert json.loads(body)["e"] == [{"g": "gw", "p": "mysensors_v2"}] and kept.reason.startswith("envelope 1:")
    assert repo.get(Kind.FIELD, "gw.1.1.V_TEMP") is not None


@pytest.mark.parametrize(("kind", "entity_id", "change", "reason"), [
    (Kind.GATEWAY, "gw", {"provider": "mysensors"}, "stored gateway 'gw' cannot be read: provider is not an object"),
    (Kind.GATEWAY, "gw", {"state": {"status": "down", "since": "then"}}, "state.since 'then' is not a date"),
    (Kind.NODE, "gw.1", {"labels": ["a"]}, "stored node 'gw.1' cannot be read: labels is not an object"),
    (Kind.SOURCE, "gw.1.1", {"lastSeen": 12}, "stored source 'gw.1.1' cannot be read: lastSeen 12 is not a date"),
    (Kind.FIELD, "gw.1.1.V_TEMP", {"current": {"value": 1, "timestamp": "x"}}, "stored field 'gw.1.1.V_TEMP' cannot"),
])
def test_a_stored_record_that_cannot_be_read_fails_only_the_messages_touching_it(
        kind: Kind, entity_id: str, change: dict[str, Any], reason: str) -> None:
    repo, ingest, letters = make()
    ingest.run([record("r0", [line("gw", 1, "1;1;1;0;0;20.5"), line("other", 1, "1;1;1;0;0;5")])])
    repo.put(kind, {**repo.get(kind, entity_id), **change})

    outcome = ingest.run([record("r1", [line("gw", 2, "1;1;1;0;0;21.5"), line("gw", 3, "2;1;1;0;0;30"),
                                        line("other", 2, "1;1;1;0;0;6")])])

    assert outcome.failed_records == {}
    assert repo.get(Kind.FIELD, "other.1.1.V_TEMP")["current"]["value"] == 6
    failed = {item.reason.split(":")[0] for item in letters.letters}
    assert "message gw-2 of gateway gw" in failed and all(reason in item.reason for item in letters.letters)
    if kind != Kind.GATEWAY:  # the gateway's other node goes on
        assert "message gw-3 of gateway gw" not in failed
        assert repo.get(Kind.FIELD, "gw.2.1.V_TEMP")["current"]["value"] == 30
