"""Ingest benchmark: MySensors traffic through the processor, as the ingest queue would deliver it.

100 nodes x 5 sensors present themselves, then at least 200,000 set messages with random values and a
realistic share of internal messages (battery, heartbeat, time requests) follow. The edge packs envelopes
into publishes of at most 5 KB; SQS hands the ingest function ``INGEST_BATCH_PUBLISHES`` (100) publishes a
batch, as its event source is set up to (``--publishes-per-batch`` for others). Each batch is decoded and
processed with the memory repository and the embedded (SQLite file) metric store, end to end; and the same again
with the SQLite repository, the local stack's default (WAL, each batch's records one fsync'd transaction, the
seen marks one more without its own fsync), unless ``--storage`` names one.

Prints ``ingest (sqlite): …`` and then, as its last line, the memory figure:
``ingest: <N> msg/s, <W> repo writes/1000 msgs, <E> events/1000 msgs, peak RSS <M> MB``
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chalicelib.adapters.metrics_embedded import EmbeddedMetricStore
from chalicelib.adapters.repository_memory import MemoryRepository
from chalicelib.adapters.repository_sqlite import SqliteRepository
from chalicelib.core.processor import Processor
from chalicelib.core.publish_reader import INGEST_BATCH_PUBLISHES, decode_publish
from chalicelib.runtime import tune_gc
from mycontroller_protocol.envelope import Envelope, encode_publish

SENSORS = [  # child id, S_ type, V_ type, value generator
    (1, 6, 0, lambda r: f"{r.uniform(-10, 35):.1f}"),  # S_TEMP / V_TEMP
    (2, 7, 1, lambda r: f"{r.uniform(20, 90):.0f}"),  # S_HUM / V_HUM
    (3, 16, 23, lambda r: str(r.randint(0, 1000))),  # S_LIGHT_LEVEL / V_LIGHT_LEVEL
    (4, 3, 2, lambda r: str(r.randint(0, 1))),  # S_BINARY / V_STATUS
    (5, 13, 17, lambda r: f"{r.uniform(0, 2500):.1f}"),  # S_POWER / V_WATT
]
MAX_PUBLISH_BYTES = 5_000
PUBLISHES_PER_BATCH = INGEST_BATCH_PUBLISHES


def presentation_lines(nodes: int) -> list[str]:
    lines: list[str] = []
    for node in range(1, nodes + 1):
        lines += [f"{node};255;0;0;17;2.3.2", f"{node};255;3;0;11;Bench node {node}", f"{node};255;3;0;12;1.0"]
        lines += [f"{node};{child};0;0;{s_type};sensor {child}" for child, s_type, _, _ in SENSORS]
    return lines


def traffic_lines(nodes: int, count: int, rng: random.Random) -> list[str]:
    lines: list[str] = []
    for _ in range(count):
        node = rng.randint(1, nodes)
        roll = rng.random()
        if roll < 0.02:
            lines.append(f"{node};255;3;0;0;{rng.randint(0, 100)}")  # I_BATTERY_LEVEL
        elif roll < 0.03:
            lines.append(f"{node};255;3;0;22;{rng.randint(0, 100000)}")  # I_HEARTBEAT_RESPONSE
        elif roll < 0.035:
            lines.append(f"{node};255;3;0;1;")  # I_TIME request, answered by the controller
        else:
            child, _, v_type, gen = SENSORS[rng.randrange(len(SENSORS))]
            lines.append(f"{node};{child};1;0;{v_type};{gen(rng)}")
    return lines


def pack(lines: list[str], gateway: str, t0: int, seq0: int) -> list[str]:
    """Envelope every line and pack them into publishes of at most MAX_PUBLISH_BYTES, as the edge does."""
    publishes: list[str] = []
    current: list[Envelope] = []
    size = 20
    for i, line in enumerate(lines):
        seq = seq0 + i
        envelope = Envelope(gateway, "mysensors_v2", t0 + i, seq, f"bench-{gateway}-{seq}", line)
        item = len(line) + len(gateway) * 2 + 70
        if current and size + item > MAX_PUBLISH_BYTES:
            publishes.append(encode_publish(current))
            current, size = [], 20
        current.append(envelope)
        size += item
    if current:
        publishes.append(encode_publish(current))
    return publishes


def run(nodes: int, messages: int, seed: int, repeat: int, per_batch: int = PUBLISHES_PER_BATCH,
        storage: str = "memory") -> None:
    rng = random.Random(seed)
    t0 = int(time.time() * 1000)
    setup = pack(presentation_lines(nodes), "bench", t0, 1)
    publishes = pack(traffic_lines(nodes, messages, rng), "bench", t0 + 1_000_000, 1_000_000)
    batches = [publishes[i:i + per_batch] for i in range(0, len(publishes), per_batch)]
    rates: list[float] = []
    for attempt in range(1, repeat + 1):  # each on fresh storage; the best run is the figure (timeit does the same)
        with tempfile.TemporaryDirectory() as tmp:
            repo: MemoryRepository | SqliteRepository = (
                SqliteRepository(Path(tmp) / "repository.sqlite3") if storage == "sqlite"
                else MemoryRepository(Path(tmp) / "storage", dump_interval_s=3600))
            metrics = EmbeddedMetricStore(Path(tmp) / "metrics.sqlite")
            processor = Processor(repo, metrics)
            for body in setup:
                presented, _ = decode_publish(body)
                processor.acknowledge(processor.process(presented))
            writes = events = failures = processed = downlinks = 0
            tune_gc()  # what a warm Lambda (app.py) and the local stack do after start-up
            started = time.perf_counter()
            for batch in batches:
                envelopes: list[Envelope] = []
                for body in batch:
                    good, _bad = decode_publish(body)
                    envelopes.extend(good)
                result = processor.process(envelopes)
                processor.acknowledge(result)
                writes += result.repo_writes
                events += len(result.events)
                failures += len(result.failures)
                downlinks += len(result.downlinks)
                processed += len(envelopes)
            metrics.flush()  # every point on disk before the clock stops
            elapsed = time.perf_counter() - started
            repo.close()
            metrics.close()
        rates.append(processed / elapsed)
        msgs_per_batch = processed / max(1, len(batches))
        print(f"run {attempt} ({storage}): nodes {nodes}, fields {nodes * len(SENSORS)}, messages {processed}, batches "
              f"{len(batches)} of {per_batch} publishes (~{msgs_per_batch:.0f} msgs each), failures {failures}, "
              f"downlinks {downlinks}, {elapsed:.2f} s, {rates[-1]:,.0f} msg/s")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"best of {repeat} runs")
    label = "ingest" if storage == "memory" else f"ingest ({storage})"
    print(f"{label}: {max(rates):,.0f} msg/s, {writes * 1000 / processed:.0f} repo writes/1000 msgs, "
          f"{events * 1000 / processed:.0f} events/1000 msgs, peak RSS {peak_mb:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5, help="runs of the same traffic; the best one is printed")
    parser.add_argument("--publishes-per-batch", type=int, default=PUBLISHES_PER_BATCH,
                        help="publishes a batch (the ingest queue's batch size)")
    parser.add_argument("--storage", choices=("both", "memory", "sqlite"), default="both",
                        help="the repository: both (SQLite first, the memory figure last), memory or sqlite")
    args = parser.parse_args()
    for storage in ("sqlite", "memory") if args.storage == "both" else (args.storage,):
        run(args.nodes, args.messages, args.seed, max(1, args.repeat), max(1, args.publishes_per_batch), storage)


if __name__ == "__main__":
    main()
