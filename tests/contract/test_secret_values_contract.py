"""The secret values contract: a secret's current text by name or ARN (Secrets Manager, on moto), read once per
process; a missing secret or one without text is ``SecretError``, naming the secret and never showing a value.
What the InfluxDB store makes of the text is ``influxdb_credentials``'s (tests/unit/test_metrics_cloud.py)."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.core.ports import SecretError, SecretValues
from tests.contract.conftest import AWS, REGION, unique


@pytest.fixture(params=[pytest.param("secretsmanager", marks=AWS)])
def store(request: pytest.FixtureRequest) -> tuple[SecretValues, Any]:
    """The adapter and a client to put secrets with."""
    request.getfixturevalue("aws_mock")
    import boto3

    from chalicelib.adapters.secret_values_secretsmanager import SecretsManagerValues

    client = boto3.client("secretsmanager", region_name=REGION)
    return SecretsManagerValues(client=client), client


def test_a_secret_is_read_by_name_or_arn(store: tuple[SecretValues, Any]) -> None:
    values, client = store
    name = unique("mc/influxdb-token")
    arn = client.create_secret(Name=name, SecretString='{"token": "t0ken"}')["ARN"]

    assert values.read(name) == '{"token": "t0ken"}'
    assert values.read(arn) == '{"token": "t0ken"}'


def test_a_secret_is_read_once_per_process(store: tuple[SecretValues, Any]) -> None:
    values, client = store
    name = unique("mc/rotated")
    client.create_secret(Name=name, SecretString="first")
    assert values.read(name) == "first"

    client.put_secret_value(SecretId=name, SecretString="second")

    assert values.read(name) == "first"  # a rotation reaches the functions with their next cold start


def test_missing_or_binary_secrets_are_secret_errors_that_show_no_value(store: tuple[SecretValues, Any]) -> None:
    values, client = store
    binary = unique("mc/binary")
    client.create_secret(Name=binary, SecretBinary=b"\x00secret-bytes")

    with pytest.raises(SecretError, match="mc/absent"):
        values.read("mc/absent")
    with pytest.raises(SecretError) as refused:
        values.read(binary)
    assert "secret-bytes" not in str(refused.value)
