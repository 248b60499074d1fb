"""The web console in a real browser (Debian's headless Chromium driven by Playwright) against `make run`.

One local stack (own port, temporary data directory, auth on with MC_ADMIN_PASSWORD) serves the built console at
``/``. The tests log in, watch a simulated temperature reach a dashboard chart without a reload, toggle a switch
and see the simulated device echo it, build, save and reopen a dashboard, and create a task in the editor.
Screenshots of the main pages go to ``tests/e2e/screenshots/`` (paths printed; run with ``-s`` to see them).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.script_errors import ScriptErrors
from tests.e2e.stack import ROOT, free_port, wait_for
from tests.integration.services import unavailable

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
PASSWORD = "browser-test-Pa55!"
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage"]
TIMEOUT_MS = 20_000


def refused(path: str, status: int) -> str:
    """The console error Chromium logs when a request to ``path`` (a regex) is answered with ``status``."""
    return f"{path}: Failed to load resource: the server responded with a status of {status} "


AUTH_PROBE = refused(r"/api/gateway\?limit=1", 401)
"""The console opened without a token asks the API whether it needs one (App.tsx useAuth): 401 means log in."""



@pytest.fixture(scope="module", autouse=True)
def sync_api() -> Any:
    """Playwright's sync API, and Debian's Chromium for it to drive; checked before the stack is built. Either
    missing: the tests skip with the reason, or fail under CI."""
    if not Path(CHROMIUM).exists():
        unavailable(f"{CHROMIUM} is missing (apt-get install chromium); the browser tests need it")
    try:
        return importlib.import_module("playwright.sync_api")
    except ImportError:
        unavailable("the playwright package is not installed (requirements-dev.txt)")


class Api:
    """The REST API with a bearer token, for setting up and checking what the browser did."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.token = ""

    def call(self, path: str, body: Any = None, method: str | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"content-type": "application/json"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base + path, data=data, headers=headers,
                                     method=method or ("POST" if body is not None else "GET"))
        with urllib.request.urlopen(req, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def login(self) -> None:
        self.token = self.call("/api/user/login", {"username": "admin", "password": PASSWORD})["token"]

    def field_value(self, field_id: str) -> Any:
        return self.call(f"/api/field/{field_id}")["current"]["value"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    if shutil.which("npm") is None:
        pytest.fail("npm is needed to build the console (frontend/)")
    built = subprocess.run(["make", "--no-print-directory", "frontend"], cwd=ROOT, capture_output=True, text=True,
                           timeout=900)
    assert built.returncode == 0, built.stdout + built.stderr
    assert (ROOT / "frontend" / "dist" / "index.html").exists()
    data_dir = tmp_path_factory.mktemp("browser") / "data"
    data_dir.mkdir()
    port = free_port()
    env = {**os.environ, "MC_PORT": str(port), "DATA_DIR": str(data_dir), "MC_ADMIN_PASSWORD": PASSWORD}
    log = (data_dir.parent / "stack.log").open("wb")
    process = subprocess.Popen(["make", "--no-print-directory", "run"], cwd=ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    api = Api(f"http://127.0.0.1:{port}")
    try:
        wait_for(lambda: api.call("/api/status")["status"] == "ok", 180, "/api/status")
        api.login()
        wait_for(lambda: {"sim.1.1.V_TEMP", "sim.1.3.V_STATUS"} <= {
            f["id"] for f in api.call("/api/field?limit=0")["data"]}, 60, "the simulated fields")
        yield api
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


class WatchedBrowser:
    """The launched Chromium, whose every new context (and so every tab) reports its script errors."""

    def __init__(self, browser: Any, script_errors: ScriptErrors) -> None:
        self.browser = browser
        self.script_errors = script_errors

    def new_context(self, **options: Any) -> Any:
        return self.script_errors.watch(self.browser.new_context(**options))


@pytest.fixture(scope="module")
def browser(sync_api: Any, stack: Api, script_errors: ScriptErrors) -> Iterator[WatchedBrowser]:
    # Playwright gives a non-persistent launch a fresh temporary profile (it refuses --user-data-dir here).
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        script_errors.allow(AUTH_PROBE, always=True)
        try:
            yield WatchedBrowser(instance, script_errors)
        finally:
            instance.close()


@pytest.fixture(scope="module")
def page(browser: WatchedBrowser, stack: Api) -> Iterator[Any]:
    """One logged-in tab for the tests after the login test (the token lives in this tab's sessionStorage)."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    log_in(tab, stack.base)
    yield tab
    context.close()


def wait_in(tab: Any, expression: str, timeout: float = TIMEOUT_MS) -> None:
    """``tab.wait_for_function`` without evaluating a string in the page: the console's Content-Security-Policy
    (no ``'unsafe-eval'``) refuses Playwright's string predicates, while ``evaluate`` goes through the DevTools
    protocol, which the policy does not govern. So the console keeps its real policy in these tests."""
    deadline = time.monotonic() + timeout / 1000
    while True:
        try:
            if tab.evaluate(expression):
                return
        except Exception as error:  # the element is not there yet
            if "Content Security Policy" in str(error):
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout / 1000:.0f} s waiting for {expression}")
        tab.wait_for_timeout(100)


def shot(tab: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    tab.evaluate("window.scrollTo(0, 0)")  # a scrolled page draws the sticky top bar mid-way in a full-page shot
    tab.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def log_in(tab: Any, base: str) -> None:
    tab.goto(base + "/")
    tab.wait_for_url("**/login**")
    tab.get_by_label("Username").fill("admin")
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Sign in").click()
    tab.get_by_role("heading", name="Overview", level=1).wait_for()  # the landing page


def test_login_refuses_a_wrong_password_then_lets_the_admin_in(browser: WatchedBrowser, stack: Api,
                                                               script_errors: ScriptErrors) -> None:
    script_errors.allow(refused("/api/user/login", 401))  # the wrong password, on purpose
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    try:
        tab.goto(stack.base + "/gateways")
        tab.wait_for_url("**/login?next=%2Fgateways")
        shot(tab, "01-login")
        tab.get_by_label("Password").fill("not-the-password")
        tab.get_by_role("button", name="Sign in").click()
        assert tab.get_by_role("alert").inner_text(timeout=TIMEOUT_MS)
        assert "/login" in tab.url
        tab.get_by_label("Password").fill(PASSWORD)
        tab.get_by_role("button", name="Sign in").click()
        tab.wait_for_url("**/gateways")  # back where the user wanted to go
        tab.locator("tr[data-id='sim']").wait_for()
        token = tab.evaluate("sessionStorage.getItem('mc.token')")
        assert token and token.count(".") == 2
        tab.get_by_role("button", name="Log out").click()
        tab.wait_for_url("**/login**")
        assert tab.evaluate("sessionStorage.getItem('mc.token')") is None
    finally:
        context.close()


def test_device_lists_filter_sort_and_page(page: Any, stack: Api) -> None:
    page.goto(stack.base + "/gateways")
    row = page.locator("tr[data-id='sim']")
    row.wait_for()
    assert "mysensors_v2" in row.inner_text()
    page.locator(".live[data-state='open']").wait_for()  # the websocket is up
    shot(page, "02-gateways")

    page.goto(stack.base + "/nodes")
    page.locator("tr[data-id='sim.1']").wait_for()
    page.get_by_label("filter").fill("kitchen")
    page.get_by_role("button", name="Filter").click()
    wait_in(page, "document.querySelectorAll('tbody tr[data-id]').length === 1")
    assert "Kitchen" in page.locator("tbody tr[data-id]").inner_text()

    page.goto(stack.base + "/fields?sort=-id&limit=10")
    page.locator("tbody tr[data-id]").first.wait_for()
    ids = page.locator("tbody tr[data-id]").evaluate_all("rows => rows.map(r => r.dataset.id)")
    assert ids == sorted(ids, reverse=True) and len(ids) == 10
    assert "page 1 of" in page.locator(".pager").inner_text()
    page.get_by_role("button", name="Next").click()
    page.wait_for_url("**offset=10**")
    # the URL changes before the next page's rows arrive: wait for them, then check they are the next ten
    wait_in(page, f"!{json.dumps(ids)}.includes(document.querySelector('tbody tr[data-id]')?.dataset.id ?? '')"
                  " && document.querySelector('tbody tr[data-id]') !== null")
    after = page.locator("tbody tr[data-id]").evaluate_all("rows => rows.map(r => r.dataset.id)")
    assert after and not set(after) & set(ids) and after == sorted(after, reverse=True) and max(after) < min(ids)


def test_node_and_field_pages_show_live_values_and_a_metrics_chart(page: Any, stack: Api) -> None:
    page.goto(stack.base + "/nodes/sim.1/")
    page.locator("tr[data-id='sim.1.1.V_TEMP']").wait_for()
    page.get_by_role("button", name="Heartbeat").click()
    page.get_by_text("Heartbeat: sent").wait_for()
    wait_in(page, "Number(document.querySelector('.chart')?.dataset.points) > 0")
    shot(page, "03-node")
    # the white nav column reaches the bottom of a page longer than the window (it used to stop at 100vh)
    nav, main, window = page.evaluate("""[document.querySelector('nav.sidebar').getBoundingClientRect().bottom,
        document.querySelector('main.content').getBoundingClientRect().bottom, window.innerHeight]""")
    assert main > window and nav >= main

    page.goto(stack.base + "/fields/sim.1.1.V_TEMP/")
    wait_in(page, "Number(document.querySelector('.chart')?.dataset.points) > 0")
    page.get_by_label("range").select_option("-15m")
    wait_in(page, "Number(document.querySelector('.chart')?.dataset.points) > 0")
    assert page.locator(".chart canvas").count() == 1
    shot(page, "04-field-chart")


def test_a_dashboard_chart_gets_new_temperature_points_without_a_reload(page: Any, stack: Api) -> None:
    stack.call("/api/dashboard", {
        "id": "live", "title": "Live", "widgets": [
            {"id": "t", "title": "Temperature", "type": "line_chart", "layout": {"x": 0, "y": 0, "w": 8, "h": 4},
             "config": {"resources": ["field:sim.1.1.V_TEMP"], "duration": "-15m", "window": "none"}},
            {"id": "g", "title": "Now", "type": "gauge", "layout": {"x": 8, "y": 0, "w": 4, "h": 4},
             "config": {"resource": "field:sim.1.1.V_TEMP", "min": 0, "max": 40}},
            {"id": "g2", "title": "Saved without a range", "type": "gauge", "layout": {"x": 0, "y": 4, "w": 4, "h": 4},
             "config": {"resource": "field:sim.1.1.V_TEMP"}},
        ]})
    page.goto(stack.base + "/dashboards/live")
    limits = page.locator("[data-widget-id='g2'] .gauge-limit")
    limits.first.wait_for()
    assert limits.evaluate_all("els => els.map(e => e.textContent)") == ["-10", "40"]  # a temperature, not 0 to 100
    chart = page.locator("[data-widget-id='t'] .chart")
    wait_in(page, "Number(document.querySelector(\"[data-widget-id='t'] .chart\")?.dataset.points) > 0")
    page.evaluate("window.__notReloaded = true")
    before = int(chart.get_attribute("data-points") or 0)
    wait_in(page,
        f"Number(document.querySelector(\"[data-widget-id='t'] .chart\").dataset.points) > {before}",
        timeout=30_000)
    assert page.evaluate("window.__notReloaded") is True
    assert page.locator(".live").get_attribute("data-state") == "open"
    shot(page, "05-dashboard-live")


def test_a_switch_widget_drives_the_simulated_device(page: Any, stack: Api) -> None:
    stack.call("/api/dashboard", {
        "id": "switches", "title": "Switches", "widgets": [
            {"id": "s", "title": "Living room switch", "type": "switch", "layout": {"x": 0, "y": 0, "w": 3, "h": 2},
             "config": {"resource": "field:sim.1.3.V_STATUS"}}]})
    before = bool(stack.field_value("sim.1.3.V_STATUS"))
    page.goto(stack.base + "/dashboards/switches")
    widget = page.locator("[data-widget-id='s'] .widget-switch")
    widget.wait_for()
    assert widget.get_attribute("data-value") == str(before).lower()
    page.get_by_role("switch", name="switch").click()
    # The stored value (and so the widget) only changes when the simulated node echoes the set.
    wait_in(page,
        "document.querySelector(\"[data-widget-id='s'] .widget-switch\").dataset.value === "
        f"'{str(not before).lower()}'", timeout=20_000)
    assert stack.field_value("sim.1.3.V_STATUS") is (not before)
    page.get_by_role("switch", name="switch").click()
    wait_in(page,
        "document.querySelector(\"[data-widget-id='s'] .widget-switch\").dataset.value === "
        f"'{str(before).lower()}'", timeout=20_000)
    assert stack.field_value("sim.1.3.V_STATUS") is before


def configure(page: Any, widget_type: str, fill: dict[str, str]) -> None:
    page.get_by_label("widget type").select_option(widget_type)
    page.get_by_role("button", name="Add widget").click()
    dialog = page.get_by_role("dialog", name="widget settings")
    for label, value in fill.items():
        dialog.get_by_label(label, exact=True).fill(value)
    dialog.get_by_role("button", name="Done").click()


def test_build_save_reload_and_reopen_a_dashboard(page: Any, stack: Api) -> None:
    page.goto(stack.base + "/dashboards/new")
    page.get_by_label("dashboard id").fill("built")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("a title is required").wait_for()  # checked before anything is sent
    page.get_by_label("dashboard title").fill("Built in the browser")
    configure(page, "switch", {"widget title": "Lamp", "Field": "sim.2.3.V_STATUS"})
    configure(page, "line_chart", {"widget title": "Bedroom", "Add a field": "sim.3.1.V_TEMP"})
    configure(page, "gauge", {"widget title": "Humidity", "Field": "sim.1.2.V_HUM"})
    configure(page, "light", {"widget title": "Dimmer", "Power field (on/off)": "sim.1.4.V_STATUS",
                              "Brightness field": "sim.1.4.V_PERCENTAGE"})
    page.get_by_label("widget type").select_option("key_value_table")
    page.get_by_role("button", name="Add widget").click()
    dialog = page.get_by_role("dialog", name="widget settings")
    dialog.get_by_label("widget title").fill("Kitchen")
    dialog.get_by_role("button", name="Add row").click()
    dialog.get_by_label("row 1 label").fill("Temperature")
    dialog.get_by_label("row 1 field").fill("sim.2.1.V_TEMP")
    dialog.get_by_role("button", name="Done").click()
    # drag the gauge's title bar one row down
    title = page.locator("[data-widget-type='gauge'] .widget-title")
    box = title.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 20, box["y"] + 10)
    page.mouse.down()
    page.mouse.move(box["x"] + 20, box["y"] + 90, steps=5)
    page.mouse.up()
    shot(page, "06-dashboard-editor")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/dashboards/built")
    page.get_by_role("button", name="Edit").wait_for()

    stored = stack.call("/api/dashboard/built")
    assert stored["title"] == "Built in the browser"
    by_type = {w["type"]: w for w in stored["widgets"]}
    assert set(by_type) == {"switch", "line_chart", "gauge", "light", "key_value_table"}
    assert by_type["switch"]["config"]["resource"] == "field:sim.2.3.V_STATUS"
    assert by_type["light"]["config"]["brightness"] == "field:sim.1.4.V_PERCENTAGE"
    assert by_type["key_value_table"]["config"]["items"][0]["resource"] == "field:sim.2.1.V_TEMP"
    assert by_type["gauge"]["layout"]["y"] >= 1

    page.reload()
    page.goto(stack.base + "/dashboards")
    page.get_by_role("link", name="Built in the browser").click()
    page.wait_for_url("**/dashboards/built")
    page.locator("[data-widget-type='gauge'] svg.gauge").wait_for()
    assert page.locator("[data-widget-id]").count() == 5
    page.locator("[data-widget-type='key_value_table'] td").filter(has_text="°C").wait_for()
    wait_in(page,
        "Number(document.querySelector(\"[data-widget-type='line_chart'] .chart\")?.dataset.points) > 0")
    shot(page, "07-dashboard-saved")


def test_create_a_task_in_the_editor(page: Any, stack: Api) -> None:
    """A task made with the form (the entity picked by name, a condition row) is one that runs: the list shows its
    last run. (The old hint, {"entity.id": …} as a filter, made a task that never evaluated.)"""
    page.goto(stack.base + "/automation/task")
    page.get_by_role("link", name="New task").click()
    page.wait_for_url("**/automation/task/new")
    page.get_by_label("Id", exact=True).fill("hot-living-room")
    page.get_by_label("Description").fill("Too warm in the living room")
    page.get_by_label("Which entity").fill("sim.1.1.V_TEMP")
    page.get_by_text("Living room · Temperature").wait_for()  # the picker names what the id is
    page.get_by_role("button", name="Add condition").click()
    assert page.get_by_label("condition 1 variable").input_value() == "entity.current.value"
    page.get_by_label("condition 1 operator").select_option("gt")
    page.get_by_label("condition 1 value").fill("26")
    page.get_by_label("Labels").fill("room=living")
    shot(page, "08-task-editor")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/automation/task/hot-living-room")
    page.get_by_role("status").filter(has_text="Saved").wait_for()

    task = stack.call("/api/task/hot-living-room")
    assert task["description"] == "Too warm in the living room"
    assert task["eventFilter"]["entityTypes"] == ["field"]
    assert task["eventFilter"]["filters"] == {"id": "sim.1.1.V_TEMP"}
    condition = task["evaluationConfig"]["rule"]["conditions"][0]
    assert (condition["variable"], condition["operator"], condition["value"]) == ("entity.current.value", "gt", 26)
    assert task["labels"] == {"room": "living"}
    wait_for(lambda: stack.call("/api/task/hot-living-room")["state"].get("lastEvaluation"), 30,
             "the task to evaluate on the living room's temperature")

    page.goto(stack.base + "/automation/task")
    row = page.locator("tr[data-id='hot-living-room']")
    row.locator(".outcome[data-status='ok']").wait_for()  # its last run, and how it went
    assert "triggered" in row.inner_text()
    shot(page, "08b-task-list")
    row.get_by_role("button", name="Disable").click()
    wait_for(lambda: stack.call("/api/task/hot-living-room")["enabled"] is False, 10, "the task to be disabled")


def test_a_task_with_an_impossible_hint_is_flagged_before_it_is_saved(page: Any, stack: Api) -> None:
    stack.call("/api/handler", {"id": "quiet-hook", "type": "webhook", "spec": {"url": "https://example.org/hook"}})
    page.goto(stack.base + "/automation/task/new")
    page.get_by_label("Id", exact=True).fill("never-runs")
    page.get_by_text("Advanced: event filters as JSON").click()
    page.get_by_label("Event filters").fill('{"entity.id": "sim.1.1.V_TEMP"}')
    page.get_by_role("button", name="Add condition").click()
    page.get_by_label("condition 1 variable").fill("value.current.value")
    page.get_by_label("Run handlers quiet-hook").check()
    warnings = page.get_by_role("list", name="before you save")
    warnings.wait_for()
    text = warnings.inner_text()
    assert 'write "id"' in text  # filters apply to the entity itself
    assert '"value.current.value" is not a variable' in text
    assert "gets no webhook parameter" in text
    page.get_by_label("webhook Body").fill("Living room: {{ entity.current.value }} °C")
    page.get_by_text("preview: Living room:").wait_for()  # rendered with the field's current value
    assert "gets no webhook parameter" not in warnings.inner_text()


def test_the_console_fits_a_phone(browser: WatchedBrowser, stack: Api) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    try:
        log_in(tab, stack.base)
        tab.goto(stack.base + "/dashboards/live")
        tab.locator("[data-widget-id='t'] .chart canvas").wait_for()
        nav = tab.get_by_role("navigation", name="main")
        nav_box = nav.bounding_box()
        assert nav_box is not None and nav_box["x"] + nav_box["width"] <= 0  # the drawer is closed
        width = tab.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page is {width}px wide on a 390px screen"
        chart_box = tab.locator("[data-widget-id='t']").bounding_box()
        assert chart_box is not None and chart_box["width"] > 300  # one column: the chart takes the width
        shot(tab, "09-phone-dashboard")
        tab.get_by_role("button", name="menu").click()
        nav.get_by_role("link", name="Gateways").click()
        tab.wait_for_url("**/gateways")
        tab.locator("tr[data-id='sim']").wait_for()
        wait_in(tab, "document.querySelector('nav.sidebar').getBoundingClientRect().right <= 0")
        shot(tab, "10-phone-gateways")
    finally:
        context.close()


def test_handler_schedule_and_forward_payload_editors(page: Any, stack: Api, script_errors: ScriptErrors) -> None:
    script_errors.allow(refused("/api/forwardpayload", 400))  # the looping payload, on purpose
    page.goto(stack.base + "/automation/handler/new")
    page.get_by_label("Id", exact=True).fill("hook")
    page.get_by_label("Type").select_option("webhook")
    page.get_by_label("URL", exact=True).fill("http://127.0.0.1:9/hook")
    page.get_by_label("Password").fill("s3cret-pw")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/automation/handler/hook")
    handler = stack.call("/api/handler/hook")
    assert handler["spec"]["url"] == "http://127.0.0.1:9/hook"
    assert "s3cret-pw" not in json.dumps(handler)
    wait_in(page, "document.querySelector('textarea[aria-label=Spec]').value.includes('********')")
    assert "s3cret-pw" not in page.get_by_label("Spec").input_value()  # the editor shows what the API returns

    # JSON that does not parse blocks Save: the server keeps what it had, and the page says why
    page.get_by_text("Advanced: spec as JSON").click()
    page.get_by_label("Spec").fill('{"url": "https://elsewhere.example/hook", ')
    page.get_by_role("button", name="Save").click()
    page.get_by_role("alert").filter(has_text="not valid JSON").first.wait_for()
    assert page.get_by_role("status").filter(has_text="Saved").count() == 0
    assert stack.call("/api/handler/hook")["spec"]["url"] == "http://127.0.0.1:9/hook"
    page.get_by_label("Spec").fill('{"url": "https://elsewhere.example/hook", "method": "PUT"}')
    assert page.get_by_label("URL", exact=True).input_value() == "https://elsewhere.example/hook"  # form in step
    page.get_by_role("button", name="Save").click()
    page.get_by_role("status").filter(has_text="Saved").wait_for()
    assert stack.call("/api/handler/hook")["spec"]["method"] == "PUT"

    page.goto(stack.base + "/automation/schedule/new")
    page.get_by_label("Id", exact=True).fill("every-minute")
    page.get_by_label("Type").select_option("repeat")
    page.get_by_label("Every", exact=True).fill("1m")
    page.get_by_label("Run handlers hook").check()
    page.get_by_label("webhook Body").fill("tick")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/automation/schedule/every-minute")
    schedule = stack.call("/api/schedule/every-minute")
    assert schedule["spec"]["interval"] == "1m" and schedule["handlers"] == ["hook"]
    assert schedule["handlerParameters"] == {"webhook": {"type": "webhook", "body": "tick"}}
    stack.call("/api/schedule/disable", ["every-minute"])

    page.goto(stack.base + "/automation/forwardpayload/new")
    page.get_by_label("Id", exact=True).fill("mirror")
    page.get_by_label("Source field").fill("field:sim.1.3.V_STATUS")
    page.get_by_label("Destination field").fill("field:sim.1.3.V_STATUS")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("alert").filter(has_text="loop").wait_for()  # forwarded to its own field: refused, and said so
    assert "/new" in page.url
    page.get_by_label("Destination field").fill("field:sim.2.3.V_STATUS")
    page.get_by_text("Kitchen · Pendant light · status").wait_for()
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/automation/forwardpayload/mirror")
    assert stack.call("/api/forwardpayload/mirror")["dstFieldId"] == "field:sim.2.3.V_STATUS"
    stack.call("/api/forwardpayload/disable", ["mirror"])


def test_a_handler_that_made_no_call_says_why_in_the_list(page: Any, stack: Api) -> None:
    stack.call("/api/handler", {"id": "silent-hook", "type": "webhook", "spec": {"url": "https://example.org/hook"}})
    stack.call("/api/schedule", {"id": "silent-run", "type": "repeat", "spec": {"interval": "1h"}, "enabled": False,
                                 "handlers": ["silent-hook"]})
    stack.call("/api/schedule/run", ["silent-run"])
    wait_for(lambda: "0 call" in stack.call("/api/handler/silent-hook")["state"].get("message", ""), 20,
             "the handler to run")
    page.goto(stack.base + "/automation/handler?q=silent")
    row = page.locator("tr[data-id='silent-hook']")
    row.locator(".outcome[data-status='warn']").filter(has_text="made no call").wait_for()
    assert "gave no webhook parameter" in row.inner_text()
    page.goto(stack.base + "/automation/schedule/silent-run")
    page.get_by_role("list", name="before you save").filter(has_text="gets no webhook parameter").wait_for()


def test_firmware_upload_and_server_backup_show_progress(page: Any, stack: Api, tmp_path: Path) -> None:
    import hashlib

    firmware = tmp_path / "door.hex"
    firmware.write_bytes(b":100000000C945C000C946E000C946E000C946E00CA\n" * 20_000)  # ~900 KB
    checksum = "sha256:" + hashlib.sha256(firmware.read_bytes()).hexdigest()
    page.goto(stack.base + "/firmware")
    page.get_by_label("Firmware id").fill("door")
    page.get_by_label("ms_type_id").fill("10")
    page.get_by_label("ms_version_id").fill("3")
    page.get_by_label("Firmware file").set_input_files(str(firmware))
    page.get_by_role("button", name="Upload").click()
    page.get_by_role("status").filter(has_text="uploaded door.hex").wait_for()
    assert page.get_by_role("progressbar").get_attribute("aria-valuenow") == "100"
    page.locator("code.checksum", has_text=checksum).wait_for()  # listed with the server's checksum
    stored = stack.call("/api/firmware/door")
    assert stored["file"] == {"name": "door.hex", "checksum": checksum, "size": firmware.stat().st_size}
    assert stored["labels"] == {"ms_type_id": "10", "ms_version_id": "3"}
    shot(page, "firmware")

    stack.call("/api/dashboard", {"id": "restore-me", "title": "Made before the backup"})
    page.goto(stack.base + "/backup")
    page.get_by_role("button", name="Run backup").click()
    page.get_by_role("status").filter(has_text="made").wait_for()
    assert page.get_by_role("progressbar").get_attribute("aria-valuenow") == "100"
    name = stack.call("/api/backup")["data"][0]["name"]
    page.locator(f"tr[data-backup='{name}']").wait_for()
    shot(page, "backup")

    stack.call("/api/dashboard", ["restore-me"], method="DELETE")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f"tr[data-backup='{name}']").get_by_role("button", name="Restore").click()
    page.get_by_role("status").filter(has_text="restored").wait_for()
    assert page.get_by_role("progressbar").get_attribute("aria-valuenow") == "100"
    assert stack.call("/api/dashboard/restore-me")["title"] == "Made before the backup"
    assert stack.call("/api/firmware/door")["file"]["checksum"] == checksum


def test_charts_say_metrics_are_off_when_the_server_keeps_none(browser: WatchedBrowser, stack: Api) -> None:
    """A server without a metric store (``METRICS=none``: a cloud stack without one) says so in ``/api/status``; the
    console says so where its charts would be instead of drawing empty ones, and asks for no metrics. The status is
    rewritten in this tab only, so the stack keeps its metrics for the other tests."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    metric_queries: list[str] = []

    def metrics_off(route: Any) -> None:
        answer = route.fetch()
        route.fulfill(response=answer, json={**answer.json(), "metricsDBDisabled": True})

    context.route("**/api/status", metrics_off)
    context.on("request", lambda request: metric_queries.append(request.url) if "/api/metric" in request.url else None)
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    try:
        log_in(tab, stack.base)
        tab.goto(stack.base + "/fields/sim.1.1.V_TEMP/")
        tab.get_by_test_id("field-value").wait_for()
        tab.get_by_test_id("metrics-off").wait_for()
        assert "Metrics are off" in tab.get_by_test_id("metrics-off").inner_text()
        assert tab.locator(".chart").count() == 0 and metric_queries == []
        shot(tab, "field-metrics-off")
    finally:
        context.close()


def test_settings_page_saves_the_location_and_marks_the_field_the_server_refuses(
        page: Any, stack: Api, script_errors: ScriptErrors) -> None:
    script_errors.allow(refused("/api/settings/system", 400))  # latitude 123, on purpose
    page.goto(stack.base + "/settings")
    page.get_by_label("Location name").fill("Browser Test Town")
    page.get_by_label("Latitude").fill("123")
    page.get_by_label("Longitude").fill("-9.14")
    page.get_by_role("button", name="Save").click()
    # in plain words (no "geoLocation.latitude"), once, at the input it concerns
    page.get_by_role("alert").filter(has_text="latitude must be at most 90").wait_for()
    assert page.get_by_role("alert").count() == 1
    assert "geoLocation" not in page.get_by_role("alert").inner_text()
    assert page.get_by_label("Latitude").get_attribute("aria-invalid") == "true"
    assert page.get_by_label("Longitude").get_attribute("aria-invalid") is None
    assert stack.call("/api/settings/system")["geoLocation"]["locationName"] != "Browser Test Town"

    page.get_by_label("Latitude").fill("38.72")
    page.get_by_label("Longitude").fill("")  # a rule over both coordinates: the server names "geoLocation"
    page.get_by_role("button", name="Save").click()
    page.get_by_role("alert").filter(has_text="longitude is required").wait_for()
    assert page.get_by_role("alert").count() == 1  # not once per input of the location
    assert page.get_by_label("Longitude").get_attribute("aria-invalid") == "true"
    page.get_by_label("Longitude").fill("-9.14")

    page.get_by_label("Latitude").fill("38.72")
    page.get_by_label("Inactive after").fill("20m")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("status").filter(has_text="Saved").wait_for()
    assert page.get_by_role("alert").count() == 0
    settings = stack.call("/api/settings/system")
    assert settings["geoLocation"]["locationName"] == "Browser Test Town"
    assert (settings["geoLocation"]["latitude"], settings["geoLocation"]["longitude"]) == (38.72, -9.14)
    assert settings["nodeStateJob"]["inactiveDuration"] == "20m"
    assert settings["nodeDiscoverJob"]["executionInterval"]  # the parts not touched are sent back as they were
    page.reload()
    assert page.get_by_label("Location name").input_value() == "Browser Test Town"
    shot(page, "11-settings")


OPERATOR_PASSWORD = "Olive-Pa55-one!"


def test_users_page_creates_a_user_who_logs_in_and_changes_their_password(
        page: Any, stack: Api, browser: WatchedBrowser, script_errors: ScriptErrors) -> None:
    script_errors.allow(refused("/api/user/operator", 404))  # the editor checks the username is free
    script_errors.allow(refused("/api/user/profile", 400))  # the wrong current password, on purpose
    page.goto(stack.base + "/users")
    page.locator("tr[data-id='admin']").wait_for()
    page.get_by_role("link", name="New user").click()
    page.wait_for_url("**/users/new")
    page.get_by_label("Username").fill("operator")
    page.get_by_label("Full name").fill("Olga Operator")
    page.get_by_label("E-mail").fill("olga@example.org")
    page.get_by_label("New password", exact=True).fill(OPERATOR_PASSWORD)
    page.get_by_label("Repeat new password").fill("something-else")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("alert").filter(has_text="differ").wait_for()  # checked before anything is sent
    page.get_by_label("Repeat new password").fill(OPERATOR_PASSWORD)
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/users/operator/")
    page.get_by_role("status").filter(has_text="Saved").wait_for()
    assert page.get_by_label("New password", exact=True).input_value() == ""  # never shown, not even our own

    stored = stack.call("/api/user/operator")
    assert (stored["fullName"], stored["email"]) == ("Olga Operator", "olga@example.org")
    assert "password" not in stored
    operator = Api(stack.base)
    operator.token = operator.call("/api/user/login", {"username": "operator", "password": OPERATOR_PASSWORD})["token"]
    assert operator.call("/api/user/profile")["username"] == "operator"

    page.goto(stack.base + "/users")
    page.locator("tr[data-id='operator']").wait_for()
    shot(page, "12-users")

    # my profile, as the new user: the current password is needed to set a new one
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    try:
        tab.goto(stack.base + "/login?next=%2Fprofile")
        tab.get_by_label("Username").fill("operator")
        tab.get_by_label("Password").fill(OPERATOR_PASSWORD)
        tab.get_by_role("button", name="Sign in").click()
        tab.wait_for_url("**/profile")
        tab.get_by_label("Current password").fill("not-my-password")
        tab.get_by_label("New password", exact=True).fill("Olive-Pa55-two!")
        tab.get_by_label("Repeat new password").fill("Olive-Pa55-two!")
        tab.get_by_role("button", name="Save").click()
        tab.get_by_role("alert").filter(has_text="current password does not match").wait_for()
        assert tab.get_by_label("Current password").get_attribute("aria-invalid") == "true"
        tab.get_by_label("Current password").fill(OPERATOR_PASSWORD)
        tab.get_by_role("button", name="Save").click()
        tab.get_by_role("status").filter(has_text="new password").wait_for()
        tab.goto(stack.base + "/nodes")  # the tab signed in again: the old token ended with the old password
        tab.locator("tr[data-id='sim.1']").wait_for()
        assert "/login" not in tab.url
    finally:
        context.close()
    with pytest.raises(urllib.error.HTTPError) as error:
        operator.call("/api/user/profile")
    assert error.value.code == 401
    with pytest.raises(urllib.error.HTTPError):
        operator.call("/api/user/login", {"username": "operator", "password": OPERATOR_PASSWORD})
    assert operator.call("/api/user/login", {"username": "operator", "password": "Olive-Pa55-two!"})["token"]


def test_a_service_token_is_shown_once_works_as_bearer_and_stops_when_deleted(page: Any, stack: Api) -> None:
    page.goto(stack.base + "/tokens")
    page.get_by_label("Name", exact=True).fill("browser-script")
    page.get_by_label("Never expire").check()
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_label("token secret").input_value()
    token_id, _, part = secret.partition("_")
    assert token_id and part, secret
    assert "shown this once" in page.get_by_role("region", name="new service token").inner_text()
    page.locator(f"tr[data-id='{token_id}']").wait_for()
    shot(page, "13-tokens")

    script = Api(stack.base)
    script.token = secret
    assert "data" in script.call("/api/node")  # 200 with the token as the bearer
    listed = stack.call("/api/servicetoken?limit=0")["data"]
    assert [t["neverExpire"] for t in listed if t["id"] == token_id] == [True]
    assert part not in json.dumps(listed)  # the list never carries the secret
    page.get_by_role("button", name="I have copied it").click()
    assert page.get_by_label("token secret").count() == 0  # gone for good

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f"tr[data-id='{token_id}']").get_by_role("button", name="Delete").click()
    page.locator(f"tr[data-id='{token_id}']").wait_for(state="detached")
    with pytest.raises(urllib.error.HTTPError) as error:
        script.call("/api/node")
    assert error.value.code == 401


def test_an_expired_session_goes_back_to_the_login_page(browser: WatchedBrowser, stack: Api,
                                                         script_errors: ScriptErrors) -> None:
    script_errors.allow(refused(r"/api/[a-z/]+(\?\S*)?", 401))  # the forged token
    context = browser.new_context()
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    try:
        tab.goto(stack.base + "/login")
        tab.evaluate("sessionStorage.setItem('mc.token', 'forged.token.value')")
        tab.goto(stack.base + "/nodes")
        tab.wait_for_url("**/login?next=%2Fnodes")
        tab.get_by_role("button", name="Sign in").wait_for()
        assert tab.evaluate("sessionStorage.getItem('mc.token')") is None, "the refused token is forgotten"
    finally:
        context.close()


def test_the_script_error_watch_sees_every_tab(browser: WatchedBrowser, stack: Api,
                                              script_errors: ScriptErrors) -> None:
    """The watch itself: an uncaught exception and a console.error in a second tab of a new context are recorded
    (and taken here, so that this test passes only if they were)."""
    context = browser.new_context()
    try:
        context.new_page().goto(stack.base + "/login")
        tab = context.new_page()
        tab.goto(stack.base + "/login")
        tab.evaluate("console.error('probe: console.error'); setTimeout(() => { throw new Error('probe: uncaught'); })")
        found: list[str] = []

        def both() -> bool:
            found.extend(script_errors.take())
            return len(found) >= 2

        wait_for(both, 10, "the two probe errors")
    finally:
        context.close()
    assert len(found) == 2, found
    assert found[0].startswith("console.error at ") and found[0].endswith(": probe: console.error"), found
    assert found[1].startswith("uncaught exception at ") and "probe: uncaught" in found[1], found


def test_the_api_refuses_the_console_without_a_token(stack: Api) -> None:
    with pytest.raises(urllib.error.HTTPError) as error:
        Api(stack.base).call("/api/dashboard")
    assert error.value.code == 401


VIEWER_PASSWORD = "Lilac-Horizon-Tide-3"


def test_a_viewer_sees_no_menu_entry_or_control_for_what_their_role_cannot_do(
        stack: Api, browser: WatchedBrowser, script_errors: ScriptErrors) -> None:
    stack.call("/api/user", {"username": "vivi", "password": VIEWER_PASSWORD, "role": "viewer"})
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    try:
        tab.goto(stack.base + "/login?next=%2Fnodes%2Fsim.1%2F")
        tab.get_by_label("Username").fill("vivi")
        tab.get_by_label("Password").fill(VIEWER_PASSWORD)
        tab.get_by_role("button", name="Sign in").click()
        tab.wait_for_url("**/nodes/sim.1/")
        menu = tab.get_by_role("navigation", name="main")
        menu.get_by_role("link", name="Gateways").wait_for()
        shown = menu.get_by_role("link").all_inner_texts()
        assert "Dashboards" in shown and "Tasks" in shown
        assert not {"Users", "Backup", "Settings", "Firmware", "Service tokens"} & set(shown), shown
        assert tab.locator("[data-role='viewer']").count() == 1
        switch = tab.get_by_role("switch", name="toggle Ceiling light · status")
        switch.wait_for()
        assert switch.is_disabled()  # seen, not set
        assert tab.get_by_role("button", name="Reboot").count() == 0
        tab.goto(stack.base + "/users")
        tab.get_by_role("alert").filter(has_text="for the admin role; yours is viewer").wait_for()
        tab.goto(stack.base + "/automation/task")
        tab.get_by_role("heading", name="Tasks").wait_for()
        assert tab.get_by_role("link", name="New task").count() == 0
    finally:
        context.close()


EXAMPLES = json.loads((ROOT / "frontend" / "src" / "automation" / "examples.json").read_text())


def test_every_example_the_automation_editors_show_is_accepted_and_a_task_built_from_them_runs(stack: Api) -> None:
    """The hints and placeholders of the automation editors come from examples.json: each is sent to the API here
    (specs, parameters, schedules, durations, time zone, forward payload), and a task made of the event filter,
    condition, variables and expression examples evaluates on the simulated field without an error."""
    for kind, spec in EXAMPLES["handlerSpecs"].items():
        stack.call("/api/handler", {"id": f"example-{kind}", "type": kind, "spec": spec, "enabled": False})
    for kind, spec in EXAMPLES["scheduleSpecs"].items():
        stack.call("/api/schedule", {"id": f"example-{kind}", "type": kind, "spec": spec, "enabled": False,
                                     "timezone": EXAMPLES["timezone"]})
    stack.call("/api/handler", {"id": "example-sink", "type": "noop"})
    base = {"eventFilter": {"eventTypes": ["updated"], "entityTypes": ["field"], "filters": EXAMPLES["eventFilters"]},
            "variables": EXAMPLES["variables"], "handlers": ["example-sink"],
            "handlerParameters": dict(EXAMPLES["handlerParameters"]), "reEnable": True,
            "reEnableDuration": EXAMPLES["duration"],
            "dampening": {"type": "active_duration", "activeDuration": EXAMPLES["duration"]}}
    stack.call("/api/task", {**base, "id": "example-rule",
                             "evaluationConfig": {"rule": {"matchAll": True, "conditions": [EXAMPLES["condition"]]}}})
    stack.call("/api/task", {**base, "id": "example-expression", "evaluationType": "expression",
                             "evaluationConfig": {"expression": EXAMPLES["expression"]}})
    stack.call("/api/task", {"id": "example-interval", "enabled": False, "triggerOnEvent": False,
                             "executionInterval": EXAMPLES["interval"]})
    forward = EXAMPLES["forward"]
    stack.call("/api/forwardpayload", {"id": "example-forward", "enabled": False, **forward})
    for task_id in ("example-rule", "example-expression"):
        wait_for(lambda task_id=task_id: stack.call(f"/api/task/{task_id}")["state"].get("lastEvaluation"), 30,
                 f"{task_id} to evaluate on {EXAMPLES['entityId']}")
        message = stack.call(f"/api/task/{task_id}")["state"].get("message", "")
        assert "failed" not in message and "error" not in message, (task_id, message)
    stack.call("/api/task/disable", ["example-rule", "example-expression"])


# ------------------------------------------------------------------------------------ issue #20, page by page

AXE = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
"""axe-core from npm (frontend/package.json), injected into each page under test."""

AXE_RUN = """async () => (await axe.run(document, { resultTypes: ['violations'] })).violations
  .filter((v) => v.impact === 'serious' || v.impact === 'critical')
  .map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                 nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }))"""

CONSOLE_PAGES = [
    ("/", "Overview"), ("/events", "Event log"), ("/dashboards", "Dashboards"), ("/gateways", "Gateways"),
    ("/gateways/sim", None), ("/nodes", "Nodes"), ("/nodes/sim.1/", None), ("/sources", "Sources"),
    ("/fields", "Fields"), ("/fields/sim.1.1.V_TEMP/", None), ("/automation/task", None),
    ("/automation/task/new", None), ("/automation/schedule", None), ("/automation/schedule/new", None),
    ("/automation/handler", None), ("/automation/handler/new", None), ("/automation/forwardpayload", None),
    ("/automation/forwardpayload/new", None), ("/dashboards/new", None), ("/firmware", None), ("/backup", None),
    ("/users", None), ("/users/new", None), ("/profile", None), ("/tokens", None), ("/settings", "Settings"),
]
"""Every route of frontend/src/App.tsx (with an h1 to expect where it is fixed)."""


def axe_violations(tab: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now. The script goes in through the
    DevTools protocol (``evaluate``), which the console's Content-Security-Policy does not govern."""
    if not tab.evaluate("typeof window.axe === 'object'"):
        tab.evaluate(AXE.read_text(encoding="utf-8"))
    return list(tab.evaluate(AXE_RUN))


def settle(tab: Any) -> None:
    """The page's h1 is there and nothing says loading any more."""
    tab.locator("main h1, .login-card h1").first.wait_for()
    wait_in(tab, "!document.querySelector('main')?.textContent?.includes('loading…')")


def test_every_page_has_an_h1_a_title_a_skip_link_and_no_serious_axe_violation(
        browser: WatchedBrowser, stack: Api, script_errors: ScriptErrors) -> None:
    """Issue #20 item 5: each page has its h1 and its own tab title, the skip link is the first stop of the
    keyboard and lands in the page, and axe-core finds no serious or critical violation (sign-in page, every
    route, a dashboard in edit mode with the widget settings dialog open, a phone's closed drawer)."""
    assert AXE.exists(), "axe-core is a dev dependency of frontend/ (npm ci)"
    script_errors.allow(refused(r"/api/user/login", 401))
    found: dict[str, list[dict[str, Any]]] = {}
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    try:
        tab.goto(stack.base + "/login")
        settle(tab)
        found["/login"] = axe_violations(tab)
        log_in(tab, stack.base)
        titles = set()
        for path, heading in CONSOLE_PAGES:
            tab.goto(stack.base + path)
            settle(tab)
            h1 = tab.locator("main h1")
            assert h1.count() == 1, (path, h1.all_inner_texts())
            if heading:
                assert h1.inner_text().strip() == heading, path
            titles.add(tab.title())
            found[path] = axe_violations(tab)
        assert len(titles) >= len(CONSOLE_PAGES) - 3, titles  # the tab title follows the page (lists of a kind share)

        # the skip link: the first Tab stop, and Enter moves focus into the page
        tab.goto(stack.base + "/gateways")
        settle(tab)
        tab.keyboard.press("Tab")
        assert tab.evaluate("document.activeElement.textContent") == "Skip to content"
        assert tab.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"  # a visible focus
        tab.keyboard.press("Enter")
        assert tab.evaluate("document.activeElement.id") == "main"

        # a dashboard being edited, its widget settings dialog open
        stack.call("/api/dashboard", {"id": "axe", "title": "Axe check", "widgets": [
            {"id": "g", "title": "Humidity", "type": "gauge", "layout": {"x": 0, "y": 0, "w": 3, "h": 3},
             "config": {"resource": "field:sim.1.2.V_HUM", "min": 0, "max": 100}}]})
        tab.goto(stack.base + "/dashboards/axe")
        settle(tab)
        found["/dashboards/axe"] = axe_violations(tab)
        tab.get_by_role("button", name="Edit").click()
        tab.get_by_role("button", name="configure Humidity").click()
        tab.get_by_role("dialog", name="widget settings").wait_for()
        found["/dashboards/axe (editing, dialog open)"] = axe_violations(tab)
        tab.keyboard.press("Escape")
    finally:
        context.close()

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    tab = phone.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    try:
        log_in(tab, stack.base)
        settle(tab)
        found["/ (phone)"] = axe_violations(tab)
    finally:
        phone.close()
    serious = {path: violations for path, violations in found.items() if violations}
    assert not serious, json.dumps(serious, indent=1)


def test_the_overview_counts_devices_links_into_the_lists_and_the_event_log_follows_the_socket(
        page: Any, stack: Api) -> None:
    """Issue #20 item 1: the landing page counts gateways and nodes up and down with links into the lists, lists
    low batteries, silent nodes and the nodes heard from last, keeps the favourite dashboard one click away; the
    event log shows events as the websocket brings them, filtered by entity type and by name."""
    stack.call("/api/dashboard", {"id": "fav", "title": "Favourite one", "favorite": True, "widgets": []})
    page.goto(stack.base + "/")
    page.get_by_role("heading", name="Overview", level=1).wait_for()
    assert page.title().startswith("Overview")
    nodes = page.locator(".card").filter(has=page.get_by_role("heading", name="Nodes"))
    wait_in(page, "document.querySelectorAll('.stat-value').length >= 6 && [...document.querySelectorAll("
                  "'.stat-value')].every((v) => /^\\d+$/.test(v.textContent)) && [...document.querySelectorAll("
                  "'[data-stat=\\'in all\\'] .stat-value')].every((v) => Number(v.textContent) > 0)")
    up = nodes.locator("[data-stat='up']")
    assert int(up.locator(".stat-value").inner_text()) >= 1
    assert "state.status" in (up.get_attribute("href") or "")  # a link into the list, filtered
    page.get_by_role("link", name=re.compile("Favourite one")).wait_for()
    page.get_by_test_id("recent-nodes").locator("li").first.wait_for()
    shot(page, "20-overview")
    page.get_by_role("link", name=re.compile("Favourite one")).click()
    page.wait_for_url("**/dashboards/fav")

    page.goto(stack.base + "/events")
    page.get_by_role("heading", name="Event log", level=1).wait_for()
    assert page.title().startswith("Event log")
    page.get_by_role("checkbox", name="field").check()
    page.get_by_role("checkbox", name="updated").check()
    assert "entity=field" in page.url and "type=updated" in page.url
    # the simulator reports temperatures every few seconds: rows arrive without a reload, by name
    table = page.get_by_test_id("event-table")
    table.locator("tr[data-entity^='field:sim.']").first.wait_for(timeout=30_000)
    page.get_by_role("searchbox", name="entity").fill("temperature")
    wait_in(page, "[...document.querySelectorAll('[data-testid=event-table] tbody tr')].length > 0 && "
                  "[...document.querySelectorAll('[data-testid=event-table] tbody tr')].every("
                  "(tr) => /temperature/i.test(tr.textContent))", timeout=30_000)
    shot(page, "21-event-log")


def test_fields_are_shown_by_name_with_controls_that_fit_them(page: Any, stack: Api) -> None:
    """Issue #20 item 2: the fields list names each field by its node and source, a sensor is read-only, a switch
    is a switch labelled by name, a dimmer a slider over its range."""
    page.goto(stack.base + "/fields")
    page.get_by_role("heading", name="Fields", level=1).wait_for()
    row = page.locator("tr[data-id='sim.1.1.V_TEMP']")
    row.wait_for()
    assert "·" in row.inner_text() and "V_TEMP" not in row.locator("td").first.inner_text()
    assert row.get_by_role("button", name="Set").count() == 0  # a sensor: read-only
    switch = page.locator("tr[data-id='sim.1.3.V_STATUS']").get_by_role("switch")
    assert switch.get_attribute("aria-label").startswith("toggle ") and "V_STATUS" not in switch.get_attribute(
        "aria-label")
    slider = page.locator("tr[data-id='sim.1.4.V_PERCENTAGE']").get_by_role("slider")
    assert (slider.get_attribute("min"), slider.get_attribute("max")) == ("0", "100")
    shot(page, "22-fields-by-name")


def test_the_live_indicator_says_live_after_each_login(browser: WatchedBrowser, stack: Api) -> None:
    """Issue #20 item 4: the indicator read and subscribed as one (useSyncExternalStore) says "live" every time,
    not "connecting" in one login of three."""
    for _ in range(3):
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        tab = context.new_page()
        tab.set_default_timeout(TIMEOUT_MS)
        try:
            log_in(tab, stack.base)
            tab.locator(".live[data-state='open']").wait_for(timeout=10_000)
            assert tab.locator(".live").inner_text().strip().endswith("live")
        finally:
            context.close()


def test_widgets_resize_by_keyboard_and_the_settings_dialog_is_modal(page: Any, stack: Api) -> None:
    """Issue #20 items 5, 6: the resize handle is a button, arrow keys resize by a cell and the new size is
    announced; the widget settings dialog is modal (aria-modal, focus inside, Escape closes it)."""
    stack.call("/api/dashboard", {"id": "keys", "title": "Keyboard", "widgets": [
        {"id": "g", "title": "Humidity", "type": "gauge", "layout": {"x": 0, "y": 0, "w": 3, "h": 3},
         "config": {"resource": "field:sim.1.2.V_HUM", "min": 0, "max": 100}}]})
    page.goto(stack.base + "/dashboards/keys")
    page.get_by_role("button", name="Edit").click()
    handle = page.get_by_role("button", name="resize Humidity")
    handle.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    page.get_by_text("Humidity: column 1, row 1, 4 wide, 4 high").wait_for()
    page.get_by_role("button", name="move Humidity", exact=True).focus()
    page.keyboard.press("ArrowRight")
    page.get_by_text("Humidity: column 2, row 1, 4 wide, 4 high").wait_for()

    page.get_by_role("button", name="configure Humidity").click()
    dialog = page.get_by_role("dialog", name="widget settings")
    dialog.wait_for()
    assert dialog.get_attribute("aria-modal") == "true"
    for _ in range(30):  # Tab goes round inside the dialog
        page.keyboard.press("Tab")
        assert page.evaluate("!!document.activeElement.closest('[role=dialog]')")
    page.keyboard.press("Escape")
    dialog.wait_for(state="detached")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("button", name="Edit").wait_for()
    stored = stack.call("/api/dashboard/keys")["widgets"][0]["layout"]
    assert (stored["x"], stored["w"], stored["h"]) == (1, 4, 4)


def test_a_myc_v2_dashboard_is_drawn_and_kept_as_sent(page: Any, stack: Api) -> None:
    """Issue #18 through #20: the reference's widget types are drawn with this console's widgets (a charts panel
    of the fields its filter selects, a control panel of switches by name, a utilization panel as a gauge, a
    foreign image linked) and an edit in this console keeps their config as sent."""
    calls = json.loads((ROOT / "tests" / "fixtures" / "reference" / "console_calls.json").read_text())["calls"]
    body = next(c["body"] for c in calls if c["route"] == "POST /api/dashboard" and c["body"].get("widgets"))
    widgets = []
    for widget in body["widgets"]:
        config = json.loads(json.dumps(widget["config"]).replace("gw1.1.1.V_STATUS", "sim.1.3.V_STATUS")
                            .replace("gw1.1.2.V_TEMP", "sim.1.1.V_TEMP"))
        widgets.append({**widget, "config": config})
    stack.call("/api/dashboard", {**body, "id": "reference", "title": "Reference", "favorite": False,
                                  "widgets": widgets})
    page.goto(stack.base + "/dashboards/reference")
    page.get_by_role("heading", name="Reference", level=1).wait_for()
    control = page.locator("[data-widget-type='widget_control_panel']")
    control.get_by_role("switch").first.wait_for()
    assert "V_STATUS" not in (control.get_by_role("switch").first.get_attribute("aria-label") or "")
    page.locator("[data-widget-type='widget_utilization_panel'] svg.gauge").wait_for()
    page.locator("[data-widget-type='widget_light_panel'] [role=switch]").wait_for()
    assert page.locator("[data-widget-type='widget_image_panel'] a").get_attribute("href") == \
        "https://example.com/cam.jpg"
    wait_in(page, "Number(document.querySelector(\"[data-widget-type='widget_charts_panel'] .chart\")"
                  "?.dataset.points) > 0", timeout=30_000)
    shot(page, "23-reference-dashboard")

    page.get_by_role("button", name="Edit").click()
    page.get_by_label("dashboard title").fill("Reference, renamed")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("button", name="Edit").wait_for()
    stored = stack.call("/api/dashboard/reference")
    assert stored["title"] == "Reference, renamed"
    assert [(w["type"], w["config"]) for w in stored["widgets"]] == [(w["type"], w["config"]) for w in widgets]


def test_forms_send_once_and_say_what_is_wrong_before_sending(page: Any, stack: Api) -> None:
    """Issue #20 item 6: forms on the one submit path (react-hook-form + zod): a value the schema refuses is said
    at its input and nothing is sent; pressing Save twice sends once."""
    posts: list[str] = []
    page.on("request", lambda request: posts.append(request.url)
            if request.method == "POST" and request.url.endswith("/api/settings/system") else None)
    page.goto(stack.base + "/settings")
    page.get_by_label("Latitude").fill("north")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("alert").filter(has_text="is not a number").wait_for()
    assert page.get_by_label("Latitude").get_attribute("aria-invalid") == "true"
    assert posts == []
    page.get_by_label("Latitude").fill("38.7")
    page.get_by_label("Longitude").fill("-9.1")
    page.evaluate("(() => { const f = document.querySelector('main form'); f.requestSubmit(); f.requestSubmit(); })()")
    page.get_by_role("status").filter(has_text="Saved").wait_for()
    assert len(posts) == 1, posts
    shot(page, "24-settings-form")
