"""The cloud twin for the session: the template ``infra.package`` writes for this checkout, run by ``infra.twin``.

The template is built fresh into the session's tmp dir (``python -m infra.package --template-only``), so the tests
run the template of the code under test, never a stale ``build/template.json`` (``TWIN_TEMPLATE=<path>`` runs
another one instead). The twin starts once (about 15 s);
each test provisions the things it needs under its own names.

Every test is also a check of the roles: ``no_refusal`` fails a test during which the twin refused anything (a
function's AWS call its role does not allow, a rule's action its role cannot do, an invocation no permission allows),
naming each refusal, unless the test provokes refusals on purpose (it asks for ``refusals_expected``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.twin.broker import dynsec_plugin
from tests.cloud.helpers import ROOT, CloudTwin, Webhook
from tests.integration.services import require_binary, unavailable


@pytest.fixture(scope="session")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudTwin]:
    require_binary("mosquitto", "/usr/sbin/mosquitto")
    require_binary("mosquitto_passwd", "/usr/bin/mosquitto_passwd")
    try:
        dynsec_plugin()
    except RuntimeError as error:
        unavailable(f"{error} (apt-get install mosquitto)")
    given = os.environ.get("TWIN_TEMPLATE")
    template = Path(given) if given else build_template(tmp_path_factory.mktemp("twin-build"))
    running = CloudTwin(template, tmp_path_factory.mktemp("twin"))
    try:
        running.login()
        yield running
        (running.workdir / "status.json").write_text(json.dumps(running.status(), indent=1))  # for a look after
    finally:
        running.stop()


def build_template(build: Path) -> Path:
    """The template of this checkout, as ``make package`` writes it (without the code package)."""
    result = subprocess.run([sys.executable, "-m", "infra.package", "--template-only", "--build-dir", str(build)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(f"`python -m infra.package --template-only` failed:\n{result.stdout}\n{result.stderr}")
    return build / "template.json"


@pytest.fixture(autouse=True)
def no_refusal(request: pytest.FixtureRequest) -> Iterator[None]:
    if "twin" not in request.fixturenames:  # a test of the twin's parts: no twin started for it
        yield
        return
    twin: CloudTwin = request.getfixturevalue("twin")
    before = len(twin.refusals())
    yield
    if "refusals_expected" in request.fixturenames:
        return
    new = twin.refusals()[before:]
    assert not new, "the twin refused calls during this test:\n" + "\n".join(
        f"  {r['who']}: {r['what']}" for r in new)


@pytest.fixture
def refusals_expected() -> None:
    """A test that provokes refusals on purpose asks for this, and checks them itself."""


@pytest.fixture
def webhook(twin: CloudTwin) -> Iterator[Webhook]:
    """A local receiver, which the stack's outbound rules must be told to allow (loopback is refused by default)."""
    twin.ok("POST", "/api/settings/system", {"outbound": {"allow": ["127.0.0.1"]}})
    server = Webhook()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
