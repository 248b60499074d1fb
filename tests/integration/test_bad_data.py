"""Bad data stays local (#16 item 6), as a user meets it: through the API, the local ingest queue (retries, the
dead-letter file) and ``python -m chalicelib.local dead-letters``, once with the memory repository and once with
DynamoDB (moto).

* an API write of a device resource with a value of the wrong type (a date that is none, an enum, a number) is a
  400 naming the field, and nothing is stored;
* a stored record that cannot be read (written straight to the repository, as an older version could have) fails
  only the messages that touch it, with the reason, while the rest of the publish applies;
* one unusable MySensors line or Tasmota JSON in a publish is kept in the dead letters with its reason, at once and
  not retried; its neighbours are applied once;
* the dead-letter command lists and replays them; a replayed message is applied once, however often it comes.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters import dead_letters_local
from chalicelib.adapters.dead_letters_local import INGEST_DEAD_LETTERS
from chalicelib.core.identity import ingest_body
from chalicelib.core.model import Kind
from chalicelib.local.ingest_queue import LocalIngestQueue
from mycontroller_protocol.envelope import Envelope, encode_publish
from tests.integration.api_helpers import Api

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@dataclass
class Site:
    """The API and the local ingest queue over one container, as the local stack wires them."""

    api: Api
    queue: LocalIngestQueue
    data_dir: Path

    def publish(self, envelopes: list[Envelope], thing: str = "local") -> None:
        self.queue.send(ingest_body(thing, encode_publish(envelopes)))
        assert self.queue.drain(10)

    def letters(self) -> list[dict[str, Any]]:
        return dead_letters_local.read(self.data_dir / INGEST_DEAD_LETTERS)

    def command(self, *args: str) -> str:
        """``python -m chalicelib.local dead-letters ...`` as a user types it."""
        done = subprocess.run([sys.executable, "-m", "chalicelib.local", "dead-letters", "--data-dir",
                               str(self.data_dir), *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def field(self, field_id: str) -> dict[str, Any]:
        return self.api.ok("GET", f"/api/field/{field_id}")

    def field_events(self, field_id: str) -> int:
        return sum(1 for e in self.api.events if e.detail.get("entityId") == field_id)


@pytest.fixture
def site(api: Api, tmp_path: Path) -> Iterator[Site]:
    queue = LocalIngestQueue(api.container.ingest.handle, dead_letter_path=tmp_path / INGEST_DEAD_LETTERS,
                             linger_s=0.0, backoff_s=0.01)
    queue.start()
    try:
        yield Site(api, queue, tmp_path)
    finally:
        queue.stop(timeout=5)


def mysensors(gateway: str, lines: list[str], seq0: int = 1, t0: int = T0) -> list[Envelope]:
    return [Envelope(gateway, "mysensors_v2", t0 + i, seq0 + i, f"{gateway}-{seq0 + i}", line)
            for i, line in enumerate(lines)]


# ------------------------------------------------------------------------------------------ the API


def test_posting_a_gateway_back_with_a_date_that_is_none_is_a_400_naming_the_field(site: Site) -> None:
    site.publish(mysensors("sim", ["1;1;1;0;0;20.5"]))
    gateway = site.api.ok("GET", "/api/gateway/sim")

    status, body, _ = site.api.call("POST", "/api/gateway", {**gateway, "lastTransaction": "not-a-date"})

    assert status == 400 and body["field"] == "lastTransaction" and "not-a-date" in body["message"]
    assert site.api.ok("GET", "/api/gateway/sim")["lastTransaction"] == gateway["lastTransaction"]
    site.publish(mysensors("sim", ["1;1;1;0;0;21.5"], seq0=2, t0=T0 + 1000))
    assert site.field("sim.1.1.V_TEMP")["current"]["value"] == 21.5  # the gateway's ingest goes on


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/api/gateway", {"id": "g", "state": {"status": "up", "since": "yesterday"}}, "state.since"),
    ("/api/gateway", {"id": "g", "state": {"status": "sleeping"}}, "state.status"),
    ("/api/gateway", {"id": "g", "reconnectDelay": "soon"}, "reconnectDelay"),
    ("/api/node", {"gatewayId": "sim", "nodeId": "9", "lastSeen": "13/01/2026"}, "lastSeen"),
    ("/api/field", {"gatewayId": "sim", "nodeId": "1", "sourceId": "1", "fieldId": "F", "metricType": "float"},
     "metricType"),
    ("/api/field", {"gatewayId": "sim", "nodeId": "1", "sourceId": "1", "fieldId": "F",
                    "current": {"value": 1, "timestamp": "noon"}}, "current.timestamp"),
    ("/api/field", {"gatewayId": "sim", "nodeId": "1", "sourceId": "1", "fieldId": "F",
                    "current": {"value": 1, "sequence": -1}}, "current.sequence"),
])
def test_device_writes_are_checked_to_their_types(site: Site, path: str, body: dict[str, Any], field: str) -> None:
    site.publish(mysensors("sim", ["1;1;1;0;0;20.5"]))
    status, answer, _ = site.api.call("POST", path, body)
    assert status == 400 and answer["field"] == field, answer


def test_dates_are_kept_in_one_form_whatever_offset_they_come_with(site: Site) -> None:
    site.api.ok("POST", "/api/gateway", {"id": "g", "lastTransaction": "2026-01-01T02:00:00+02:00"})
    assert site.api.ok("GET", "/api/gateway/g")["lastTransaction"] == "2026-01-01T00:00:00.000Z"


# ------------------------------------------------------------------------------------------ stored records


def test_a_stored_gateway_that_cannot_be_read_fails_only_its_messages_until_fixed_then_replays(site: Site) -> None:
    site.publish(mysensors("old", ["1;1;1;0;0;20.5"]) + mysensors("house", ["1;1;1;0;0;19.0"]))
    repository = site.api.container.repository
    repository.put(Kind.GATEWAY, {**repository.get(Kind.GATEWAY, "old"), "lastTransaction": "not-a-date"})

    site.publish(mysensors("old", ["1;1;1;0;0;21.5", "1;2;1;0;1;40"], seq0=2, t0=T0 + 1000)
                 + mysensors("house", ["1;1;1;0;0;19.5"], seq0=2, t0=T0 + 1000))

    assert site.field("house.1.1.V_TEMP")["current"]["value"] == 19.5  # the rest of the publish applied
    assert site.field("old.1.1.V_TEMP")["current"]["value"] == 20.5
    letters = site.letters()
    assert len(letters) == 2 and all(
        "stored gateway 'old' cannot be read: lastTransaction 'not-a-date' is not a date" in item["reason"]
        for item in letters)
    assert site.queue.failed_deliveries == 0, "a retry cannot fix a stored record: not retried"
    listed = site.command("list")
    assert "ingest: 2 dead letter(s)" in listed and "old old-2 from local: '1;1;1;0;0;21.5'" in listed

    site.api.ok("POST", "/api/gateway", {"id": "old", "lastTransaction": "2026-01-01T00:00:00Z"})  # fixed
    before = site.field_events("old.1.1.V_TEMP")
    assert "2 letter(s) replayed" in site.command("replay", "--queue", "ingest")
    assert site.queue.drain(10)
    assert site.field("old.1.1.V_TEMP")["current"]["value"] == 21.5
    assert site.field("old.1.2.V_HUM")["current"]["value"] == 40
    assert site.letters() == [] and site.command("replay") == "nothing to replay\n"
    assert site.field_events("old.1.1.V_TEMP") == before + 1


def test_a_stored_node_that_cannot_be_read_fails_only_the_messages_of_that_node(site: Site) -> None:
    site.publish(mysensors("house", ["5;1;1;0;0;20.5", "6;1;1;0;0;18.0"]))
    repository = site.api.container.repository
    repository.put(Kind.NODE, {**repository.get(Kind.NODE, "house.5"), "lastSeen": "yesterday"})

    site.publish(mysensors("house", ["5;1;1;0;0;21.5", "6;1;1;0;0;18.5", "5;255;3;0;0;80"], seq0=3, t0=T0 + 1000))

    assert site.field("house.6.1.V_TEMP")["current"]["value"] == 18.5
    assert site.field("house.5.1.V_TEMP")["current"]["value"] == 20.5
    reasons = sorted(item["reason"] for item in site.letters())
    assert len(reasons) == 2 and all("stored node 'house.5' cannot be read: lastSeen 'yesterday'" in reason
                                     for reason in reasons)
    assert site.queue.failed_deliveries == 0


# ------------------------------------------------------------------------------------------ unusable messages


def test_one_unusable_mysensors_line_is_kept_with_its_reason_and_its_neighbours_applied_once(site: Site) -> None:
    site.publish(mysensors("house", ["12;0;1;0;0;21.5", "12;0;1;0;0;21.5;extra", "12;0;1;0;0;22.5", "12;1;1;0;1;48"]))

    field = site.field("house.12.0.V_TEMP")
    assert (field["current"]["value"], field["previous"]["value"]) == (22.5, 21.5)
    assert site.field("house.12.1.V_HUM")["current"]["value"] == 48
    [letter] = site.letters()
    assert letter["receiveCount"] == 0 and "house-2" in letter["reason"] and "'21.5;extra'" in letter["reason"]
    assert (site.queue.failed_deliveries, site.queue.dead_lettered) == (0, 0), "kept at once, never retried"
    assert site.field_events("house.12.0.V_TEMP") == 1  # one batch: one event with the newest value


def test_one_bad_tasmota_json_is_kept_with_its_reason_and_its_neighbours_applied_once(site: Site) -> None:
    def tasmota(seq: int, raw: str) -> Envelope:
        return Envelope("plugs", "tasmota", T0 + seq, seq, f"plugs-{seq}", raw, "tele/plug/SENSOR")

    site.publish([tasmota(1, '{"AM2301":{"Temperature":21.4}}'), tasmota(2, '{"AM2301":{"Temperature":21.4'),
                  tasmota(3, '{"AM2301":{"Temperature":22.0,"Humidity":51}}')])

    field = site.field("plugs.plug.AM2301.Temperature")
    assert (field["current"]["value"], field["previous"]["value"]) == (22.0, 21.4)
    assert site.field("plugs.plug.AM2301.Humidity")["current"]["value"] == 51
    [letter] = site.letters()
    assert "plugs-2" in letter["reason"] and "payload is not JSON" in letter["reason"]
    assert site.queue.failed_deliveries == 0
    assert "plugs plugs-2 from local" in site.command("list", "--queue", "ingest")


def test_a_replayed_message_is_applied_once_however_often_it_is_replayed(site: Site) -> None:
    """Letters that failed every retry (a store outage, say) replayed twice: the second is a no-op by message id."""
    body = ingest_body("local", encode_publish(mysensors("house", ["3;1;1;0;0;17.5"])))
    path = site.data_dir / INGEST_DEAD_LETTERS
    dead_letters_local.append(path, [dead_letters_local.letter(body, "failed 3 deliveries", 3)])

    assert "1 letter(s) replayed" in site.command("replay")
    assert site.queue.drain(10)
    assert site.field("house.3.1.V_TEMP")["current"]["value"] == 17.5
    events = site.field_events("house.3.1.V_TEMP")

    dead_letters_local.append(path, [dead_letters_local.letter(body, "failed 3 deliveries", 3)])
    assert "1 letter(s) replayed" in site.command("replay")
    assert site.queue.drain(10)
    assert site.field_events("house.3.1.V_TEMP") == events and site.letters() == []


def test_letters_that_can_never_succeed_are_dropped_by_id(site: Site) -> None:
    site.publish(mysensors("house", ["1;1;1;0;0;x", "1;1;1;0;0;y"]))
    first, second = site.letters()
    assert "1 letter(s) dropped" in site.command("drop", "--id", first["messageId"])
    assert [item["messageId"] for item in site.letters()] == [second["messageId"]]
