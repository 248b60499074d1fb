"""API benchmark, in the local stack (the Chalice routes behind Chalice's local HTTP server).

1. List latency: 10,000 fields in the memory repository; GET /api/field filtered by a label, sorted and paged,
   over HTTP; p50 and p99.
2. Ingest-to-API-visible latency: an edge publish handed to the in-process ingest queue until GET
   /api/field/{id} shows the new value; p50 and p99.

Prints, as its last lines:
``api list: p50 <a> ms, p99 <b> ms (10,000 fields, filtered, sorted, paged)``
``api ingest-to-visible: p50 <c> ms, p99 <d> ms``
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chalicelib.core.identity import LOCAL_EDGE, ingest_body
from chalicelib.core.model import FieldModel, Kind, MetricType, Node, Source, iso_from_ms
from chalicelib.local.stack import LocalStack
from mycontroller_protocol.envelope import Envelope, encode_publish

ROOMS = ["kitchen", "living", "bedroom", "garage", "garden", "office", "bath", "attic", "cellar", "hall"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


HEADERS: dict[str, str] = {}
"""Sent with every GET: the login token once ``login`` ran (every API route but status and login needs one)."""
BENCH_PASSWORD = "bench-admin-password"


def get(url: str) -> Any:
    with urllib.request.urlopen(urllib.request.Request(url, headers=HEADERS), timeout=10) as response:
        return json.loads(response.read())


def login(url: str) -> None:
    body = json.dumps({"username": "admin", "password": os.environ["MC_ADMIN_PASSWORD"]}).encode()
    request = urllib.request.Request(f"{url}/api/user/login", data=body, method="POST",
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        HEADERS["Authorization"] = f"Bearer {json.loads(response.read())['token']}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def seed_fields(repository: Any, count: int) -> None:
    nodes, sources, fields = [], [], []
    for node in range(count // 20):
        nodes.append(Node(gateway_id="bench", node_id=str(node), name=f"node {node}").record())
        for source in range(4):
            sources.append(Source(gateway_id="bench", node_id=str(node), source_id=str(source)).record())
            for field in range(5):
                record = FieldModel(gateway_id="bench", node_id=str(node), source_id=str(source),
                                    field_id=f"F{field}", name=f"field {node}-{source}-{field}",
                                    metric_type=MetricType.GAUGE_FLOAT, unit="°C",
                                    labels={"room": ROOMS[(node + source) % len(ROOMS)]}).record()
                record["current"] = {"value": float(field), "isReceived": True,
                                     "timestamp": iso_from_ms(1_767_225_600_000), "sequence": 1}
                fields.append(record)
    repository.put_many(Kind.NODE, nodes)
    repository.put_many(Kind.SOURCE, sources)
    repository.put_many(Kind.FIELD, fields)


def list_latency(url: str, requests: int = 300) -> list[float]:
    latencies = []
    for i in range(requests):
        query = urllib.parse.urlencode({
            "filter": json.dumps([{"k": "labels.room", "o": "eq", "v": ROOMS[i % len(ROOMS)]}]),
            "sortBy": json.dumps([{"f": "name", "o": "desc"}]),
            "limit": 50,
            "offset": (i * 50) % 1000,
        })
        started = time.perf_counter()
        page = get(f"{url}/api/field?{query}")
        latencies.append((time.perf_counter() - started) * 1000)
        assert page["count"] == 1000 and len(page["data"]) == 50, page["count"]
    return latencies


def ingest_latency(stack: LocalStack, rounds: int = 100) -> list[float]:
    latencies = []
    t0 = int(time.time() * 1000)
    for i in range(rounds):
        value = 10 + i / 10
        envelope = Envelope("bench", "mysensors_v2", t0 + i, 10_000 + i, f"bench-api-{t0}-{i}", f"7;1;1;0;0;{value}")
        started = time.perf_counter()
        stack.queue.send(ingest_body(LOCAL_EDGE, encode_publish([envelope])))
        while True:
            try:
                field = get(f"{stack.url}/api/field/bench.7.1.V_TEMP")
                if field["current"]["value"] == value:
                    break
            except urllib.error.HTTPError:
                pass
            time.sleep(0.001)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("MC_ADMIN_PASSWORD", BENCH_PASSWORD)  # a fresh data dir: admin gets this one
        stack = LocalStack("127.0.0.1", free_port(), Path(tmp), gateways=[])
        stack.start()
        try:
            login(stack.url)
            seed_fields(stack.container.repository, 10_000)
            list_latency(stack.url, 20)  # warm up
            lists = list_latency(stack.url)
            ingests = ingest_latency(stack)
        finally:
            stack.stop()
    print(f"list requests {len(lists)}, mean {statistics.fmean(lists):.1f} ms; ingest rounds {len(ingests)}, "
          f"mean {statistics.fmean(ingests):.1f} ms")
    print(f"api list: p50 {percentile(lists, 50):.1f} ms, p99 {percentile(lists, 99):.1f} ms "
          "(10,000 fields, filtered, sorted, paged)")
    print(f"api ingest-to-visible: p50 {percentile(ingests, 50):.1f} ms, p99 {percentile(ingests, 99):.1f} ms")


if __name__ == "__main__":
    main()
