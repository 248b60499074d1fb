"""The first admin's password in AWS comes from the stack's Secrets Manager secret (``ADMIN_PASSWORD_SECRET``),
never from the function's environment; locally from ``MC_ADMIN_PASSWORD``."""

from __future__ import annotations

import boto3
import pytest

from chalicelib.bootstrap import Container
from chalicelib.settings import Settings


@pytest.mark.usefixtures("aws_mock")
def test_the_secret_gives_the_first_password_and_the_environment_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MC_ADMIN_PASSWORD", "from-the-environment")
    arn = boto3.client("secretsmanager").create_secret(Name="mc-admin", SecretString="from the secret")["ARN"]
    container = Container(Settings.from_env({"ADMIN_PASSWORD_SECRET": arn}))
    assert container.admin_password() == "from the secret"
    assert "from the secret" not in repr(container.settings)


def test_without_a_secret_the_environment_gives_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MC_ADMIN_PASSWORD", "from-the-environment")
    assert Container(Settings.from_env({})).admin_password() == "from-the-environment"
    assert Container(Settings.from_env({}), admin_password=lambda: "given").admin_password() == "given"
