"""Cloud twin benchmark: the deployed shape on this machine, device message → websocket, and the chain's throughput.

Starts the twin on the template of this checkout (``infra.package --template-only``; ``--template`` for another),
provisions a thing with ``infra.provision`` and connects as that device (its certificate, mutual TLS, MQTT 5) to
the twin's broker. A websocket client (through the twin's API Gateway, token from a login) subscribes to one field.

The device publishes as the provisioned agent does: through IoT Basic Ingest (``$aws/rules/<rule>/mc/<thing>/up``,
the rule its ``edge.yaml`` names), or to ``mc/<thing>/up`` when the stack names no rule.

* Latency: one envelope at a time changes the field; the time from the device's publish to the websocket event
  (IoT rule → ingest, invoked by the rule itself → DynamoDB → EventBridge → notify, invoked by the bus rule →
  ``post_to_connection`` → socket), ``ROUNDS`` times, paced so rounds do not queue.
* Throughput: ``BURST`` messages in publishes of ``PER_PUBLISH`` envelopes (as the agent batches them), as fast as
  the broker takes them; messages per second until the last value is in DynamoDB (seen through the REST API).

Prints, as its last line:
``twin device-to-websocket: p50 <a> ms, p99 <b> ms; chain <n> msg/s (<m> messages in <s> s)``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mycontroller_protocol.envelope import Envelope, encode_publish
from tests.cloud.conftest import build_template
from tests.cloud.helpers import CloudTwin, Device, wait_until
from tests.cloud.test_twin import MqttDevice

INGEST_FUNCTION = "Ingest"
INGEST_MAPPING = "IngestEventSource"
NOTIFIER = "WebsocketNotify"
ROUNDS = 60
PACE_S = 0.3
BURST = 2000
PER_PUBLISH = 50
GATEWAY = "benchgw"
FIELD = f"{GATEWAY}.1.1.V_TEMP"


def _publish(gateway: str, lines: list[str], sequence: int) -> tuple[bytes, int]:
    now = int(time.time() * 1000)
    envelopes = []
    for line in lines:
        sequence += 1
        envelopes.append(Envelope(gateway, "mysensors_v2", now, sequence, uuid.uuid4().hex, line))
    return encode_publish(envelopes).encode(), sequence


def _latency_samples(twin: CloudTwin, device: MqttDevice, topic: str, rounds: int, sequence: int
                     ) -> tuple[list[float], int]:
    """Device publish to websocket event, in ms, ``rounds`` times (after 3 rounds that warm the functions up)."""
    from websockets.sync.client import connect

    samples: list[float] = []
    with connect(f"{twin.info['ws']}?access_token={twin.token}", open_timeout=30) as socket:
        socket.send(json.dumps({"type": "subscribe", "id": "b", "filter": {"quickIds": [f"field:{FIELD}"]}}))
        json.loads(socket.recv(timeout=30))
        for index in range(rounds + 3):  # the first rounds warm the functions up
            value = f"{21 + index * 0.01:.2f}"
            body, sequence = _publish(GATEWAY, [f"1;1;1;0;0;{value}"], sequence)
            sent = time.perf_counter()
            device.publish(topic, body)
            while True:
                message = json.loads(socket.recv(timeout=60))
                entity = (message.get("data") or {}).get("entity") or {}
                current = (entity.get("current") or {}).get("value")
                if message.get("type") == "event" and isinstance(current, int | float) and \
                        abs(current - float(value)) < 1e-9:
                    break
            if index >= 3:
                samples.append((time.perf_counter() - sent) * 1000)
            time.sleep(PACE_S)
    return samples, sequence


def _burst(twin: CloudTwin, device: MqttDevice, topic: str, burst: int, sequence: int) -> tuple[int, float]:
    """``burst`` messages in publishes of ``PER_PUBLISH``; the messages sent and the seconds until the last value
    is read back through the REST API."""
    started = time.perf_counter()
    last = "0"
    sent_messages = 0
    while sent_messages < burst:
        lines = []
        for _ in range(min(PER_PUBLISH, burst - sent_messages)):
            sent_messages += 1
            last = f"{30 + sent_messages * 0.001:.3f}"
            lines.append(f"1;1;1;0;0;{last}")
        body, sequence = _publish(GATEWAY, lines, sequence)
        device.publish(topic, body)
    wait_until(lambda: f"{twin.ok('GET', f'/api/field/field:{FIELD}')['current']['value']:.3f}" == last,
               300, "the burst's last value", interval=0.2)
    return sent_messages, time.perf_counter() - started


def twin_path(status: dict[str, Any]) -> str:
    """What the ingest path did, from the twin's status: publishes through Basic Ingest, the IoT rules' matches,
    the ingest's invocations by the rule (and the batches of its queue's mapping, when it has a window), the
    notifier's invocations, refusals."""
    functions = status.get("functions") or {}
    mapping = (status.get("mappings") or {}).get(INGEST_MAPPING) or {}
    iot = status.get("iot") or {}
    parts = [f"device publishes {iot.get('device_publishes', 0)} ({iot.get('basic_ingest', 0)} by basic ingest)",
             f"rule matches {iot.get('rule_matches', 0)}, rule errors {iot.get('rule_errors', 0)}",
             f"ingest invocations {int((functions.get(INGEST_FUNCTION) or {}).get('invocations', 0))}"]
    if mapping.get("batches"):
        parts.append(f"ingest queue batches {mapping['batches']}")
    parts.append(f"notifier invocations {int((functions.get(NOTIFIER) or {}).get('invocations', 0))}")
    parts.append(f"refusals {len(status.get('refusals') or [])}")
    return "path: " + ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--template", type=Path, help="a template (default: this checkout's, built now)")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--burst", type=int, default=BURST)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-twin-") as tmp:
        work = Path(tmp)
        template = args.template or build_template(work / "build")
        started = time.perf_counter()
        twin = CloudTwin(template, work / "twin", stack="mc-bench")
        try:
            print(f"twin started in {time.perf_counter() - started:.1f} s", flush=True)
            twin.login()
            thing = Device(twin, "bench-edge", work)
            device = MqttDevice(twin, thing.dir / "certificate.pem.crt", thing.dir / "private.pem.key", "bench-edge")
            rule = (thing.config.get("uplink") or {}).get("ingest_rule")
            topic = f"$aws/rules/{rule}/mc/bench-edge/up" if rule else "mc/bench-edge/up"
            print(f"device publishes to {topic}", flush=True)
            sequence = 0
            body, sequence = _publish(GATEWAY, ["1;255;0;0;17;2.3.2", "1;1;0;0;6;temperature", "1;1;1;0;0;20.0"],
                                      sequence)
            device.publish(topic, body)
            wait_until(lambda: twin.api("GET", f"/api/field/field:{FIELD}")[0] == 200, 60, "the bench field")
            samples, sequence = _latency_samples(twin, device, topic, args.rounds, sequence)
            samples.sort()
            p50 = statistics.median(samples)
            p99 = samples[min(len(samples) - 1, round(0.99 * (len(samples) - 1)))]
            print(f"latency over {len(samples)} rounds: p50 {p50:.0f} ms, p99 {p99:.0f} ms", flush=True)

            sent_messages, elapsed = _burst(twin, device, topic, args.burst, sequence)
            rate = sent_messages / elapsed
            device.close()
            status = twin.status()
            print(twin_path(status), flush=True)
        finally:
            twin.stop()
    print(f"twin device-to-websocket: p50 {p50:.0f} ms, p99 {p99:.0f} ms; chain {rate:.0f} msg/s "
          f"({sent_messages} messages in {elapsed:.1f} s)")


if __name__ == "__main__":
    main()
