"""The end-to-end tests' mark, and the browser's script-error watch.

Every test collected under this folder is marked ``e2e`` here, so that a new file cannot forget it.

``script_errors`` records the console errors and uncaught exceptions of every tab of every browser context it
watches (the browser tests' ``browser`` fixture watches each context it makes). A test that uses it fails when
any was recorded while it ran, unless it said beforehand that it provokes that error
(``script_errors.allow(pattern)``, for the refusals the console logs when a test sends a wrong password on
purpose); errors that arrive between tests are charged to the next test, and any left at the end to the module.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.e2e.script_errors import ScriptErrors

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every item of this folder ``e2e`` (the hook sees the whole session: only ours are touched)."""
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="module")
def script_errors() -> Iterator[ScriptErrors]:
    """The module's recorder; what is left unchecked when the module ends fails its teardown."""
    recorder = ScriptErrors()
    yield recorder
    left = recorder.take()
    assert not left, "script errors after the module's last test:\n" + "\n".join(left)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """A test that watches script errors fails (in its call phase) when any was recorded while it ran."""
    result = yield  # a failure of the test itself propagates from here unchanged
    recorder = getattr(item, "funcargs", {}).get("script_errors")  # set up for it, or for a fixture it uses
    if isinstance(recorder, ScriptErrors):
        errors = recorder.take()
        if errors:
            pytest.fail("script errors in the browser during this test:\n" + "\n".join(errors), pytrace=False)
    return result
