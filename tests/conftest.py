"""Fixtures every test folder shares, and the rule that a CI run skips nothing.

Under CI (``CI=true``; ``.ci/run`` sets it) every installed service is there and every test must run: a skip, from
whatever cause (a missing binary, a ``skipif``, an ``importorskip``, a module-level skip), is turned into a failure
that carries the skip's reason. Outside CI a skip stays a skip, with its reason in the ``-ra`` summary.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

import pytest

from tests.integration.services import in_ci


def _no_skip_under_ci(report: Any) -> None:
    if report.skipped and not hasattr(report, "wasxfail") and in_ci():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, where every test must run: {reason}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    _no_skip_under_ci(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, Any]:
    report = yield
    _no_skip_under_ci(report)
    return report


@pytest.fixture(scope="module")
def aws_mock() -> Iterator[None]:
    """moto for one test module, with fake credentials; each test makes its own table or bus (cheaper than a
    fresh mock per test). botocore sessions are shared so that each repository's client does not reload the
    service models from disk. Module scope: the mock and the patches are gone before other modules run."""
    from botocore.session import Session
    from moto import mock_aws

    shared = Session()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
        }.items():
            patch.setenv(name, value)
        patch.delenv("AWS_PROFILE", raising=False)
        patch.setattr("pynamodb.connection.base.get_session", lambda: shared)
        with mock_aws():
            yield
