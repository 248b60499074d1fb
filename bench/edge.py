"""Edge agent benchmark: MySensors lines on a serial pty → gateway → spool → MQTT uplink → mosquitto.

A real agent process (``python -m edge``) reads a pseudo-terminal as its MySensors serial gateway (a pty has
no baud rate, so the first phase finds the agent's own ceiling), spools every line and publishes envelope
batches to a private mosquitto, where a subscriber counts them.

1. Max: ``--messages`` set messages written as fast as the pty takes them; messages/s from the first write
   until the subscriber has them all.
2. Steady: ``--rate`` messages/s (500: a serial gateway at 115200 baud is about there) for ``--seconds``,
   ``--runs`` times; publishes per 1,000 messages, and the agent's CPU % of one core (psutil; the lowest of the
   runs: on a shared machine a run is only ever slowed down by its neighbours) and RSS (the highest, after the
   max phase's burst).
3. Idle: nothing written for ``--idle-seconds``; the agent's CPU % (wakeups with nothing to do).

Prints, as its last line:
``edge: <N> msg/s max, <P> publishes/1000 msgs, at 500 msg/s: CPU <C>%, RSS <M> MB, idle CPU <I>%``
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import tty
from pathlib import Path
from typing import Any

import psutil
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.edge_helpers import Broker, Collector  # noqa: E402 - after the path set-up

PROVIDER = "mysensors_v2"


def _serial_plugin_available() -> bool:
    try:
        from edge.gateways.mysensors.gateway import MySensorsSerialGateway  # noqa: F401
    except ImportError:
        return False
    return True


class Pty:
    """The device end of the serial line; the agent opens the slave through a symlink, as it would /dev/ttyUSB0."""

    def __init__(self, link: Path) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.symlink(os.ttyname(self.slave), link)
        self.link = link
        self._closed = False
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        """Read what the gateway writes to the device (discover requests…) so that its writes never block."""
        while not self._closed:
            try:
                if not os.read(self.master, 4096):
                    return
            except OSError:
                return

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.master, view):]

    def close(self) -> None:
        self._closed = True
        os.close(self.master)
        os.close(self.slave)
        self.link.unlink(missing_ok=True)


def lines(count: int, rng: random.Random) -> list[bytes]:
    """Set messages from 50 nodes x 4 sensors: temperatures, humidities, switches, watts."""
    result: list[bytes] = []
    for i in range(count):
        node, child = 1 + i % 50, 1 + (i // 50) % 4
        value = (f"{rng.uniform(-10, 35):.1f}", f"{rng.uniform(20, 90):.0f}", str(rng.randint(0, 1)),
                 f"{rng.uniform(0, 2500):.1f}")[child - 1]
        result.append(f"{node};{child};1;0;{(0, 1, 2, 17)[child - 1]};{value}\n".encode())
    return result


def received(collector: Collector) -> int:
    return sum(1 for e in collector.envelopes() if e.provider == PROVIDER)


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.02)


def max_phase(pty: Pty, collector: Collector, process: psutil.Process, messages: int, rng: random.Random) -> float:
    """1. max throughput: ``messages`` written at once; the end-to-end rate in messages/s."""
    batch = lines(messages, rng)
    base, publishes_before = received(collector), len(collector.messages)
    process.cpu_percent(None)
    start = time.perf_counter()
    pty.write(b"".join(batch))
    wait_for(lambda: received(collector) - base >= messages, 120, "the max-phase messages")
    elapsed = time.perf_counter() - start
    max_cpu = process.cpu_percent(None)
    max_rate = messages / elapsed
    publishes = len(collector.messages) - publishes_before
    print(f"max: {messages} messages in {elapsed:.2f} s = {max_rate:,.0f} msg/s end to end, "
          f"{publishes} publishes ({messages / publishes:.1f} envelopes/publish), "
          f"agent CPU {max_cpu:.0f}%")
    return max_rate


def steady_phase(pty: Pty, collector: Collector, process: psutil.Process, rate: float, seconds: float,
                 rng: random.Random) -> tuple[float, float, float]:
    """2. steady rate: ``rate`` messages/s for ``seconds``; publishes per 1000 messages, agent CPU %, RSS MB."""
    total = int(rate * seconds)
    steady = lines(total, rng)
    base, publishes_before = received(collector), len(collector.messages)
    process.cpu_percent(None)
    tick = 0.01
    per_tick = max(1, round(rate * tick))
    start = time.perf_counter()
    for index in range(0, total, per_tick):
        pty.write(b"".join(steady[index:index + per_tick]))
        delay = start + (index + per_tick) / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    cpu = process.cpu_percent(None)
    rss_mb = process.memory_info().rss / 1e6
    wait_for(lambda: received(collector) - base >= total, 60, "the steady-phase messages")
    publishes = len(collector.messages) - publishes_before
    print(f"steady: {total} messages at {rate:.0f} msg/s in {publishes} publishes, "
          f"{total / publishes:.1f} envelopes/publish, agent CPU {cpu:.1f}%, RSS {rss_mb:.0f} MB")
    return publishes / total * 1000, cpu, rss_mb


def idle_phase(process: psutil.Process, seconds: float) -> float:
    """3. idle: the agent's CPU % of one core while nothing arrives (after a moment for the last publish)."""
    time.sleep(1.0)
    process.cpu_percent(None)
    time.sleep(seconds)
    idle = process.cpu_percent(None)
    print(f"idle: agent CPU {idle:.2f}% over {seconds:.0f} s")
    return idle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=30_000, help="messages in the max-throughput phase")
    parser.add_argument("--rate", type=float, default=500.0, help="messages/s in the steady phase")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the steady phase")
    parser.add_argument("--runs", type=int, default=3, help="steady phases run (the lowest CPU is printed)")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="length of the idle phase")
    parser.add_argument("--max-publishes-per-s", type=float, default=50.0,
                        help="the agent's publish rate limit (50 by default: AWS IoT Core allows about 100)")
    args = parser.parse_args()
    if not _serial_plugin_available():
        raise SystemExit("bench: edge/gateways/mysensors (the serial gateway plugin) is not available")

    with tempfile.TemporaryDirectory(prefix="edge-bench-") as tmp:
        work = Path(tmp)
        broker = Broker(work / "mosquitto", persistent=False)
        broker.start()
        pty = Pty(work / "ttyBENCH")
        collector = Collector(broker.host, broker.port, ["mc/edge-bench/up"], client_id="bench-collector").start()
        config = work / "edge.yaml"
        config.write_text(yaml.safe_dump({
            "edge": {"id": "edge-bench", "data_dir": "data"},
            "uplink": {"type": "mqtt", "host": broker.host, "port": broker.port,
                       "max_publishes_per_s": args.max_publishes_per_s},
            "gateways": [{"id": "serial", "provider": {"type": PROVIDER, "protocol": {
                "type": "serial", "portname": str(pty.link), "baudRate": 115200}}}],
        }))
        agent = subprocess.Popen([sys.executable, "-m", "edge", "--config", str(config)], cwd=ROOT,
                                 stdout=subprocess.DEVNULL, stderr=open(work / "agent.log", "wb"))  # noqa: SIM115
        try:
            process = psutil.Process(agent.pid)
            wait_for(lambda: any(e.provider == "edge" and '"up"' in e.raw for e in collector.envelopes()), 30,
                     "the serial gateway to come up")
            rng = random.Random(7)
            max_rate = max_phase(pty, collector, process, args.messages, rng)
            runs = [steady_phase(pty, collector, process, args.rate, args.seconds, rng)
                    for _ in range(max(1, args.runs))]
            per_thousand, cpu, rss_mb = (max(run[0] for run in runs), min(run[1] for run in runs),
                                         max(run[2] for run in runs))
            idle = idle_phase(process, args.idle_seconds)
        finally:
            agent.terminate()
            try:
                agent.wait(20)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait(5)
            collector.stop()
            pty.close()
            broker.stop()
    print(f"edge: {max_rate:,.0f} msg/s max, {per_thousand:.0f} publishes/1000 msgs, at {args.rate:.0f} msg/s: "
          f"CPU {cpu:.1f}%, RSS {rss_mb:.0f} MB, idle CPU {idle:.2f}%")


if __name__ == "__main__":
    main()
