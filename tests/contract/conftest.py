"""The ``repository`` fixture: every contract test runs against each adapter."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib.core.ports import Repository

_tables = itertools.count(1)


@pytest.fixture(scope="module")
def aws_mock() -> Iterator[None]:
    """moto for one test module, with fake credentials; each test gets its own table (cheaper than a fresh
    mock per test). botocore sessions are shared so that each repository's client does not reload the service
    models from disk. Module scope: the mock and the patches are gone before other modules run."""
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


@pytest.fixture(params=["memory", "dynamodb"])
def repository(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Repository]:
    """A fresh, empty repository: memory (persisting to a temp dir) or DynamoDB (moto, a table per test)."""
    if request.param == "memory":
        from chalicelib.adapters.repository_memory import MemoryRepository

        memory = MemoryRepository(tmp_path / "store", dump_interval_s=0)
        yield memory
        memory.close()
        return

    from chalicelib.adapters.repository_dynamodb import DynamoDBRepository

    request.getfixturevalue("aws_mock")
    dynamo = DynamoDBRepository(f"mc-contract-{next(_tables)}", write_concurrency=4)
    dynamo.create_table()
    yield dynamo
    dynamo.close()
