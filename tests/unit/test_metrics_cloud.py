"""Metrics in the cloud: the InfluxDB credentials come from a secret (a token, or the user and password Timestream
for InfluxDB keeps for an instance it creates), never from a plain environment value; a session is renewed before
InfluxDB expires it; and without a metric store ``/api/status`` says metrics are off."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from chalicelib.adapters.metrics_influxdb import (
    SESSION_RENEW_S,
    InfluxCredentials,
    InfluxDBMetricStore,
    influxdb_credentials,
)
from chalicelib.api.status import status
from chalicelib.api.web import ApiRequest
from chalicelib.bootstrap import Container
from chalicelib.core.ports import SecretError
from chalicelib.settings import Settings, SettingsError

CLOUD = {"METRICS": "influxdb", "INFLUXDB_URL": "https://influx.example:8086", "INFLUXDB_ORG": "mycontroller",
         "INFLUXDB_BUCKET": "mycontroller", "INFLUXDB_TOKEN_SECRET": "arn:aws:secretsmanager:eu-west-1:1:secret:x"}


class Secrets:
    """``SecretValues`` over a dict, counting reads."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.reads: list[str] = []

    def read(self, name: str) -> str:
        self.reads.append(name)
        if name not in self.values:
            raise SecretError(f"secret {name!r} could not be read: ResourceNotFoundException")
        return self.values[name]


@pytest.mark.parametrize(("text", "expected"), [
    ("plain-token ", InfluxCredentials(token="plain-token")),
    ('{"token": "t0k", "engine": "timestream-influxdb"}', InfluxCredentials(token="t0k")),
    ('{"username": "mc", "password": "pw", "organization": "o", "bucket": "b"}',
     InfluxCredentials(username="mc", password="pw")),
    ('{"token": "t0k", "username": "mc", "password": "pw"}', InfluxCredentials(token="t0k")),
])
def test_a_secret_holds_a_token_or_a_user(text: str, expected: InfluxCredentials) -> None:
    assert influxdb_credentials(text) == expected


@pytest.mark.parametrize("text", ["", "  ", "{not json", '{"username": "mc"}', '{"token": ""}', '{"token": 5}'])
def test_a_secret_without_usable_credentials_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        influxdb_credentials(text)


def test_the_container_reads_the_token_from_the_secret(tmp_path: Path) -> None:
    settings = Settings.from_env({**CLOUD, "DATA_DIR": str(tmp_path)})
    secrets = Secrets({CLOUD["INFLUXDB_TOKEN_SECRET"]: '{"token": "from-the-secret"}'})
    container = Container(settings, secret_values=secrets)

    store = container.metrics

    assert isinstance(store, InfluxDBMetricStore)
    assert store._client.token == "from-the-secret"
    assert secrets.reads == [CLOUD["INFLUXDB_TOKEN_SECRET"]]
    assert "from-the-secret" not in repr(settings)
    container.close()


def test_the_container_signs_in_with_an_instances_user(tmp_path: Path) -> None:
    settings = Settings.from_env({**CLOUD, "DATA_DIR": str(tmp_path)})
    container = Container(settings, secret_values=Secrets(
        {CLOUD["INFLUXDB_TOKEN_SECRET"]: '{"username": "mycontroller", "password": "s3cret"}'}))

    store = container.metrics

    assert isinstance(store, InfluxDBMetricStore)
    assert (store._client.conf.username, store._client.conf.password) == ("mycontroller", "s3cret")
    assert store._client.auth_header_value is None  # a session cookie, not a token header
    container.close()


def test_an_unusable_or_missing_secret_stops_the_start_naming_the_setting(tmp_path: Path) -> None:
    settings = Settings.from_env({**CLOUD, "DATA_DIR": str(tmp_path)})
    with pytest.raises(SettingsError, match="INFLUXDB_TOKEN_SECRET"):
        _ = Container(settings, secret_values=Secrets({CLOUD["INFLUXDB_TOKEN_SECRET"]: '{"user": "x"}'})).metrics
    with pytest.raises(SecretError):
        _ = Container(settings, secret_values=Secrets({})).metrics


def test_a_session_is_dropped_before_influxdb_expires_it() -> None:
    store = InfluxDBMetricStore("http://127.0.0.1:9", None, "o", "b", username="mc", password="pw")
    try:
        store._client.api_client.cookie = "influxdb-oss-session=abc"
        store._renew_session()
        assert store._client.api_client.cookie == "influxdb-oss-session=abc"  # still young

        store._session_started = time.monotonic() - SESSION_RENEW_S - 1
        store._renew_session()

        assert store._client.api_client.cookie is None  # the next call signs in again
    finally:
        store.close()


@pytest.mark.parametrize(("metrics", "disabled"), [("none", True), ("embedded", False), ("influxdb", False)])
def test_status_says_whether_metrics_are_kept(tmp_path: Path, metrics: str, disabled: bool) -> None:
    settings = Settings.from_env({**CLOUD, "METRICS": metrics, "DATA_DIR": str(tmp_path)})
    answer = status(ApiRequest("GET", "/api/status", container=Container(settings)))

    assert answer["metricsDBDisabled"] is disabled
