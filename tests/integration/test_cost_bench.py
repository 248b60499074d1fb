"""``bench/cost.py`` end to end, small: the real functions over moto through the template, priced; its last line is
the one ``make bench`` and the README quote, and what it counts follows the levers (a home's publishes carry
several messages, the notifier runs only for the dashboard's fields and the consumers only for what they want, the
IoT rule invokes the ingest, an idle stack polls one queue)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAST_LINE = re.compile(r"^cost: home \$(\d+\.\d{3}) per million msgs, idle \$(\d+\.\d\d) per month$")


def test_the_cost_bench_prices_a_home_and_an_idle_site() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "POWERTOOLS_"))}
    done = subprocess.run([sys.executable, "bench/cost.py", "--profile", "home", "--profile", "idle",
                           "--seconds", "30"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    match = LAST_LINE.match(lines[-1])
    assert match, lines[-1]
    home, idle = float(match.group(1)), float(match.group(2))
    assert 0 < home < 10 and 0 < idle < 3
    counts = next(line for line in lines if line.strip().startswith("per 1000 msgs:"))
    figures = {name.strip(): float(value) for name, value in re.findall(r"([a-zA-Z_ ]+) (\d+\.\d+)", counts)}
    assert figures["publishes"] == 200  # 5 messages a publish: the edge's 1 s window at 5 msg/s
    assert figures["websocket_notify invocations"] < figures["ingest invocations"] / 2  # only watched batches
    # a batch's events: one entry, and only when somebody wants one of them (the dashboard, a task, a mapping)
    assert 0 < figures["EventBridge events"] < figures["ingest invocations"] / 2
    assert figures.get("tasks invocations", 0) < figures["EventBridge events"]  # three tasks want few batches
    assert figures["SQS requests"] == 0  # the IoT rule invokes the ingest: no ingest queue
    assert "X-Ray" not in done.stdout  # tracing is off unless asked for
    assert "sqs.request [queue pollers (idle long polls)] $0.259" in done.stdout  # one polled queue (handlers)
