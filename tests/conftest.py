"""Fixtures every test folder shares."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


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
