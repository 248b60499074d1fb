"""The ``repository`` fixture: every contract test runs against each adapter."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib.core.ports import Repository

_tables = itertools.count(1)


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
