"""Settings: read and checked from the environment, naming the variable at fault; one reference of them, generated
from the code and held to it."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from chalicelib.settings import Settings, SettingsError, reference

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_VARIABLES = {"AWS_LAMBDA_FUNCTION_NAME", "AWS_CHALICE_CLI_MODE", "AWS_DEFAULT_REGION", "AWS_REGION",
                     "POWERTOOLS_LOG_LEVEL", "LOG_LEVEL"}
"""Set by the Lambda runtime, Chalice or Powertools' own conventions: not ours to document."""


def test_the_configuration_reference_is_generated_from_the_settings() -> None:
    out = io.StringIO()
    reference(out.write)
    assert (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8") == out.getvalue(), (
        "docs/configuration.md is stale: python -m chalicelib.settings > docs/configuration.md")


def test_every_variable_the_code_reads_is_in_the_reference() -> None:
    documented = set(re.findall(r"^\| `([A-Z_0-9]+)`", (ROOT / "docs" / "configuration.md").read_text(), re.M))
    read: set[str] = set()
    for path in [ROOT / "app.py", *(ROOT / "chalicelib").rglob("*.py")]:
        read |= set(re.findall(r"environ(?:\.get)?\(?\[?\"([A-Z][A-Z_0-9]+)\"", path.read_text(encoding="utf-8")))
    assert read - RUNTIME_VARIABLES - documented == set()
    assert {"STORAGE", "METRICS", "BUS", "MC_ADMIN_PASSWORD", "MC_PORT"} <= documented


def test_values_are_read_and_checked() -> None:
    settings = Settings.from_env({"STORAGE": " DynamoDB ", "MAX_BODY_BYTES": "2048", "DUMP_INTERVAL_S": "0.5",
                                  "LOG_LEVEL": "debug", "DATA_DIR": "/srv/mc", "AWS_DEFAULT_REGION": "eu-west-1",
                                  "SHADOW_NAME": ""})
    assert (settings.storage, settings.max_body_bytes, settings.dump_interval_s, settings.log_level) == (
        "dynamodb", 2048, 0.5, "DEBUG")
    assert settings.data_dir == Path("/srv/mc") and settings.aws_region == "eu-west-1" and settings.shadow_name == ""
    assert Settings.from_env({"AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "eu-west-1"}).aws_region == "us-west-2"
    assert Settings.from_env({}).shadow_name == "mycontroller"


@pytest.mark.parametrize(("env", "message"), [
    ({"STORAGE": "mongodb"}, "STORAGE='mongodb' is not one of sqlite, memory, dynamodb"),
    ({"MAX_BODY_BYTES": "lots"}, "MAX_BODY_BYTES='lots' is not a number"),
    ({"MAX_BODY_BYTES": "0"}, "MAX_BODY_BYTES='0' must be at least 1"),
    ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL='LOUD' is not one of DEBUG"),
    ({"BLOBS": "s3"}, "BLOBS=s3 needs BLOB_BUCKET"),
    ({"SCHEDULER": "eventbridge", "SCHEDULER_ROLE_ARN": "r"}, "SCHEDULER=eventbridge needs SCHEDULER_TARGET_ARN"),
    ({"METRICS": "influxdb", "INFLUXDB_URL": "http://x"}, "METRICS=influxdb needs INFLUXDB_ORG, INFLUXDB_BUCKET"),
])
def test_a_bad_setting_names_its_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env)
    assert str(raised.value).startswith(message)
