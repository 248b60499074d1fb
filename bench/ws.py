"""Websocket benchmark, in the local stack: field change → websocket client latency with 100 subscribed clients.

100 websocket clients (a separate process, one thread reading all their sockets) connect to
``/api/ws`` and subscribe to one field's quick id. Each round hands an edge publish changing that field to the
in-process ingest queue (ingest → processor → bus → notify → each client's send queue → socket); every client
notes when the new value arrives (``perf_counter`` is the system-wide monotonic clock, so the two processes
agree). A second series publishes the domain event on the bus directly: the websocket part alone. The bench
accepts its own token (and keeps its session valid when sessions are re-checked), so the figure is the push path,
not the token check made once per connect.

Prints, as its last line:
``ws field-change-to-client: p50 <a> ms, p99 <b> ms (100 clients; all 100 received: p50 <c> ms, p99 <d> ms)``
"""

from __future__ import annotations

import json
import multiprocessing
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chalicelib.core.identity import LOCAL_EDGE, ingest_body
from chalicelib.core.model import Kind, event
from chalicelib.core.ports import bus_event
from mycontroller_protocol.envelope import Envelope, encode_publish

CLIENTS = 100
ROUNDS = 100
PACE_S = 0.12
"""Time between changes: long enough for every client to have the previous one (no queueing in the figure)."""
FIELD = "bench.7.1.V_TEMP"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


# --------------------------------------------------------------------------------------------- the clients' process


def run_clients(url: str, count: int, pipe: Connection) -> None:
    """Connect and subscribe ``count`` clients, say so, record arrivals until told to stop, send them back.

    One thread reads every client's socket (wsproto, ``selectors``), as ``count`` browsers would each in their own
    process: the figure is the server's, not 100 client threads contending for this process's interpreter."""
    import selectors
    from urllib.parse import urlsplit

    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, Message, Request, TextMessage

    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    selector = selectors.DefaultSelector()
    arrivals: list[dict[Any, float]] = [{} for _ in range(count)]
    clients: list[tuple[socket.socket, WSConnection, list[str]]] = []
    for index in range(count):
        sock = socket.create_connection((host, port), timeout=30)
        ws = WSConnection(ConnectionType.CLIENT)
        sock.sendall(ws.send(Request(host=f"{host}:{port}", target=f"{parts.path}?access_token=bench")))
        accepted = False
        while not accepted:
            ws.receive_data(sock.recv(65536))
            accepted = any(isinstance(e, AcceptConnection) for e in ws.events())
        sock.sendall(ws.send(Message(data=json.dumps({"type": "subscribe", "id": f"c{index}",
                                                      "filter": {"quickIds": [f"field:{FIELD}"]}}))))
        sock.setblocking(False)
        clients.append((sock, ws, []))
        selector.register(sock, selectors.EVENT_READ, index)
    subscribed = 0
    stop = False

    def read() -> None:
        nonlocal subscribed
        for key, _ in selector.select(0.05):
            index = key.data
            sock, ws, text = clients[index]
            try:
                data = sock.recv(1 << 20)
            except BlockingIOError:
                continue
            arrived = time.perf_counter()
            ws.receive_data(data or None)
            for received in ws.events():
                if not isinstance(received, TextMessage):
                    continue
                text.append(received.data)
                if not received.message_finished:
                    continue
                message = json.loads("".join(text))
                text.clear()
                if message.get("type") == "subscribed":
                    subscribed += 1
                elif message.get("type") == "event":
                    value = ((message["data"].get("entity") or {}).get("current") or {}).get("value")
                    arrivals[index].setdefault(value, arrived)

    deadline = time.monotonic() + 60
    while subscribed < count and time.monotonic() < deadline:
        read()
    pipe.send("ready" if subscribed == count else f"only {subscribed} subscribed")
    while not stop:
        read()
        stop = pipe.poll()
    pipe.recv()
    for sock, _, _ in clients:
        sock.close()
    pipe.send(arrivals)


# --------------------------------------------------------------------------------------------- the stack's process


def measure(sent: dict[float, float], arrivals: list[dict[Any, float]]) -> tuple[list[float], list[float], int]:
    """Every client's latency, the slowest client's per change, deliveries missing."""
    latencies: list[float] = []
    slowest: list[float] = []
    missing = 0
    for value, started in sent.items():
        got = [seen[value] - started for seen in arrivals if value in seen]
        missing += len(arrivals) - len(got)
        latencies.extend(seconds * 1000 for seconds in got)
        if len(got) == len(arrivals):
            slowest.append(max(got) * 1000)
    return latencies, slowest, missing


def rounds(change: Callable[[int, float], float], base: float) -> dict[float, float]:
    sent: dict[float, float] = {}
    for i in range(1, ROUNDS + 1):
        value = base + i / 1000
        sent[value] = change(i + int(base) * 1000, value)
        time.sleep(PACE_S)
    return sent


def main() -> None:
    port = free_port()
    url = f"ws://127.0.0.1:{port}/api/ws"
    context = multiprocessing.get_context("spawn")  # before any thread of the stack exists
    ours, theirs = context.Pipe()
    clients = context.Process(target=run_clients, args=(url, CLIENTS, theirs), daemon=True)

    from chalicelib.local.stack import LocalStack

    with tempfile.TemporaryDirectory() as tmp:
        stack = LocalStack("127.0.0.1", port, Path(tmp), gateways=[])
        websocket = stack.server.websocket
        websocket.authenticate = lambda token: {"sub": "bench"} if token == "bench" else None
        websocket.check_sessions = lambda principals: [None] * len(principals)  # its session never ends
        stack.start()
        try:
            t0 = int(time.time() * 1000)

            def change(i: int, value: float) -> float:
                envelope = Envelope("bench", "mysensors_v2", t0 + i, 10_000 + i, f"bench-ws-{t0}-{i}",
                                    f"7;1;1;0;0;{value}")
                started = time.perf_counter()
                stack.queue.send(ingest_body(LOCAL_EDGE, encode_publish([envelope])))
                return started

            def bus_change(i: int, value: float) -> float:
                record = stack.container.repository.get(Kind.FIELD, FIELD) or {}
                started = time.perf_counter()
                stack.container.bus.publish([bus_event(event("updated", Kind.FIELD, {
                    **record, "current": {**record.get("current", {}), "value": value}}))])
                return started

            change(0, 0.5)  # the field exists before the clients subscribe
            stack.queue.drain(10)
            clients.start()
            if not ours.poll(120) or ours.recv() != "ready":
                raise SystemExit("the websocket clients did not connect")
            sent_ingest = rounds(change, 10)
            sent_bus = rounds(bus_change, 20)
            time.sleep(0.5)
            ours.send("stop")
            arrivals: list[dict[Any, float]] = ours.recv()
            clients.join(30)
        finally:
            stack.stop()
    latencies, slowest, missing = measure(sent_ingest, arrivals)
    bus_latencies, bus_slowest, bus_missing = measure(sent_bus, arrivals)
    print(f"ws: {CLIENTS} clients, {ROUNDS} field changes, {len(latencies)} deliveries, {missing + bus_missing} "
          f"missing; bus event → client alone: p50 {percentile(bus_latencies, 50):.1f} ms, "
          f"p99 {percentile(bus_latencies, 99):.1f} ms (all received: p50 {percentile(bus_slowest, 50):.1f} ms)")
    print(f"ws field-change-to-client: p50 {percentile(latencies, 50):.1f} ms, p99 {percentile(latencies, 99):.1f} ms "
          f"({CLIENTS} clients; all {CLIENTS} received: p50 {percentile(slowest, 50):.1f} ms, "
          f"p99 {percentile(slowest, 99):.1f} ms)")


if __name__ == "__main__":
    main()
