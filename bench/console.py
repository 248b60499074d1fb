"""Console benchmark: what a browser downloads and how soon it shows a page, on the local stack (`make run`, its
simulated gateway) in headless Chromium, each page opened cold (a fresh profile: nothing cached) and again warm
(the same tab: the hashed assets come from the cache, only the API is asked).

Pages: the overview (the landing page), the fields list (no chart on it: the chart code must not load), and a
dashboard with a line chart and a gauge. For each: the JavaScript and CSS sent (as sent: gzip-compressed; and
uncompressed), the requests made, and the time from navigation until the page shows its data (p50 of five cold
and five warm loads).

Prints, as its last lines:
``console <page>: cold <a> KB sent (<b> KB JS+CSS uncompressed, chart code: yes|no), shown in p50 <c> ms; warm <d> ms``
``console: first visit <x> KB sent for the fields list, chart code only where a chart is: yes|no``
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.stack import Stack, request, token, wait_for  # noqa: E402 - after the path set-up

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
RUNS = 5

# Which page, where, and the script that is true once it shows its data.
PAGES: list[tuple[str, str, str]] = [
    ("overview", "/", "document.querySelector('h1')?.textContent === 'Overview' && "
                      "document.querySelectorAll('a[href^=\"/gateways\"]').length > 1"),
    ("fields", "/fields", "document.querySelectorAll('tbody tr[data-id]').length > 0"),
    ("dashboard", "/dashboards/bench",
     "Number(document.querySelector(\"[data-widget-id='t'] .chart\")?.dataset.points) > 0"
     " && document.querySelector(\"[data-widget-id='g'] [data-value]\") !== null"),
]
RESOURCES = """() => performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'))
  .map(e => ({name: e.name, sent: e.transferSize, size: e.decodedBodySize}))"""


def shown(tab: Any, ready: str, timeout_s: float = 30.0) -> float:
    """Milliseconds from the navigation's start until ``ready`` holds (polled through DevTools: the console's
    Content-Security-Policy refuses Playwright's string predicates)."""
    deadline = time.monotonic() + timeout_s
    while not tab.evaluate(f"() => Boolean({ready})"):
        if time.monotonic() > deadline:
            raise SystemExit(f"the page {tab.url} did not show its data within {timeout_s:.0f} s")
        tab.wait_for_timeout(10)
    return float(tab.evaluate("() => performance.now()"))


def assets(entries: list[dict[str, Any]]) -> tuple[int, int, bool, int]:
    """Bytes sent and uncompressed of the JS and CSS, whether the chart code came, and the requests made."""
    code = [e for e in entries if "/assets/" in e["name"] and e["name"].endswith((".js", ".css"))]
    chart = any("/assets/Chart-" in e["name"] for e in code)
    return sum(e["sent"] for e in code), sum(e["size"] for e in code), chart, len(entries)


def measure(browser: Any, base: str, token: str) -> list[tuple[str, dict[str, Any]]]:
    results = []
    for name, path, ready in PAGES:
        cold_ms: list[float] = []
        warm_ms: list[float] = []
        first: tuple[int, int, bool, int] | None = None
        for _ in range(RUNS):
            context = browser.new_context(viewport={"width": 1280, "height": 860})
            context.add_init_script(f"sessionStorage.setItem('mc.token', {json.dumps(token)});")
            tab = context.new_page()
            tab.goto(base + path)
            cold_ms.append(shown(tab, ready))
            tab.wait_for_load_state("networkidle")
            first = first or assets(tab.evaluate(RESOURCES))
            tab.goto(base + path)
            warm_ms.append(shown(tab, ready))
            context.close()
        assert first is not None
        sent, size, chart, requests = first
        results.append((name, {"sent_kb": sent / 1024, "size_kb": size / 1024, "chart": chart, "requests": requests,
                               "cold_ms": statistics.median(cold_ms), "warm_ms": statistics.median(warm_ms)}))
    return results


def main() -> None:
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    if shutil.which("npm"):
        subprocess.run(["make", "--no-print-directory", "frontend"], cwd=ROOT, check=True, capture_output=True)
    work = Path(tempfile.mkdtemp(prefix="mc-bench-console-"))
    (work / "data").mkdir()
    stack = Stack(work / "data")  # `make run`: the API, the console and the simulated gateway
    try:
        base = stack.base
        wait_for(lambda: "sim.1.1.V_TEMP" in {f["id"] for f in request(base, "/api/field?limit=0")["data"]}, 60,
                 "the simulated fields")
        request(base, "/api/dashboard", {"id": "bench", "title": "Bench", "widgets": [
            {"id": "t", "title": "Temperature", "type": "line_chart", "layout": {"x": 0, "y": 0, "w": 8, "h": 4},
             "config": {"resources": ["field:sim.1.1.V_TEMP"], "duration": "-15m", "window": "none"}},
            {"id": "g", "title": "Now", "type": "gauge", "layout": {"x": 8, "y": 0, "w": 4, "h": 4},
             "config": {"resource": "field:sim.1.1.V_TEMP", "min": 0, "max": 40}}]})
        time.sleep(3)  # a few points for the chart
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
            try:
                results = measure(browser, base, token(base))
            finally:
                browser.close()
    finally:
        stack.stop()
        shutil.rmtree(work, ignore_errors=True)

    for name, r in results:
        print(f"console {name}: cold {r['sent_kb']:.0f} KB sent ({r['size_kb']:.0f} KB JS+CSS uncompressed, "
              f"chart code: {'yes' if r['chart'] else 'no'}, {r['requests']} requests), shown in p50 "
              f"{r['cold_ms']:.0f} ms; warm {r['warm_ms']:.0f} ms")
    by_name = dict(results)
    only_where_charts = not by_name["fields"]["chart"] and not by_name["overview"]["chart"] and \
        by_name["dashboard"]["chart"]
    print(f"console: first visit {by_name['fields']['sent_kb']:.0f} KB sent for the fields list, chart code only "
          f"where a chart is: {'yes' if only_where_charts else 'no'}")


if __name__ == "__main__":
    main()
