"""edge.yaml: the reference's gateway shape is accepted as written, mistakes are named, secrets stay hidden."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from edge.__main__ import EXIT_CONFIG, EXIT_NO_STATUS, JsonFormatter, format_status, main
from edge.config import EdgeConfigError, load_config, parse_config

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "edge"


def _minimal(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"edge": {"id": "pi"}, "uplink": {"type": "mqtt", "host": "127.0.0.1"}, "gateways": []}
    data.update(overrides)
    return data


def test_the_full_example_keeps_the_reference_shape_and_applies_defaults() -> None:
    config = load_config(FIXTURES / "edge.yaml")
    assert config.edge.id == "pi-garage"
    assert config.edge.data_dir == (FIXTURES / "data").resolve(), "relative paths follow the config file"
    assert config.spool_path == config.edge.data_dir / "spool.sqlite"
    assert config.uplink.address == ("127.0.0.1", 1883)
    assert config.uplink.max_publish_bytes == 5000 and config.uplink.linger_ms == 50
    assert config.client_id == "pi-garage"
    serial = config.gateways[0].plugin_config()
    assert serial["provider"]["protocol"] == {"type": "serial", "portname": "/dev/ttyUSB0", "baudRate": 115200,
                                              "transmitPreDelay": "10ms"}
    assert serial["provider"]["enableInternalMessageAck"] is True, "keys the schema does not know reach the plugin"
    assert serial["reconnectDelay"] == "10s" and serial["labels"] == {"location": "garage"}
    assert config.gateways[1].plugin_config()["provider"]["protocol"]["password"] == "s3cret-gateway"
    assert [g.id for g in config.enabled_gateways()] == ["mysensors-serial", "tasmota"]


def test_aws_iot_defaults_to_8883_and_resolves_certificate_paths() -> None:
    config = load_config(FIXTURES / "aws_iot.yaml")
    assert config.uplink.address == ("abcdefghij1234-ats.iot.eu-west-1.amazonaws.com", 8883)
    assert config.uplink.tls is not None
    assert config.uplink.tls.key == (FIXTURES / "certs" / "private.pem.key").resolve()
    assert config.edge.data_dir == Path("/var/lib/mycontroller-edge")


def test_every_mistake_is_reported_with_the_key_that_holds_it() -> None:
    with pytest.raises(EdgeConfigError) as caught:
        load_config(FIXTURES / "bad.yaml")
    message = str(caught.value)
    assert "3 problem(s)" in message
    assert "uplink.linger: unknown key" in message
    assert "gateways[0](id=ms-serial).provider.protocol.baudRate: Input should be a valid integer" in message
    assert "gateways[1](id=ms-serial-2).provider.protocol: protocol type 'serial' needs 'portname'" in message


@pytest.mark.parametrize(("data", "expected"), [
    (_minimal(uplink={"type": "aws_iot", "endpoint": "x.iot.amazonaws.com"}), "uplink.tls.cert and uplink.tls.key"),
    (_minimal(uplink={"type": "aws_iot"}), "uplink.endpoint is required"),
    (_minimal(uplink={"type": "mqtt"}), "uplink.host is required"),
    (_minimal(uplink={"type": "mqtt", "host": "h", "max_publish_bytes": 200_000}), "uplink.max_publish_bytes"),
    (_minimal(uplink={"type": "mqtt", "host": "h", "tls": {"cert": "c.pem"}}), "tls.cert and tls.key go together"),
    (_minimal(uplink={"type": "kafka"}), "uplink.type"),
    (_minimal(edge={"id": "pi.garage"}), "edge id 'pi.garage'"),
    (_minimal(edge={"id": "pi/+"}), "edge.id"),
    (_minimal(gateways=[{"id": "a", "provider": {"type": "x"}}, {"id": "a", "provider": {"type": "y"}}]),
     "gateway id 'a' appears twice"),
    (_minimal(gateways=[{"id": "a"}]), "gateways[0](id=a).provider: Field required"),
    (_minimal(gateways=[{"id": "e", "provider": {"type": "mysensors_v2", "protocol": {"type": "ethernet"}}}]),
     "needs 'server'"),
    (_minimal(spool={"max_messages": 5}), "spool.max_messages"),
    ([], "the top level must be a mapping"),
])
def test_invalid_configs_name_what_is_wrong(data: Any, expected: str) -> None:
    with pytest.raises(EdgeConfigError) as caught:
        parse_config(data)
    assert expected in str(caught.value)


def test_yaml_syntax_errors_give_the_line(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text("edge:\n  id: pi\nuplink: [unclosed\n")
    with pytest.raises(EdgeConfigError, match=r"not valid YAML at line \d+"):
        load_config(path)
    with pytest.raises(EdgeConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")


def test_environment_references_are_expanded_and_a_missing_one_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_TEST_PASSWORD", "from-env")
    config = parse_config(_minimal(uplink={"type": "mqtt", "host": "h", "password": "${EDGE_TEST_PASSWORD}"}))
    assert config.uplink.password is not None and config.uplink.password.get_secret_value() == "from-env"
    monkeypatch.delenv("EDGE_TEST_PASSWORD")
    with pytest.raises(EdgeConfigError, match="EDGE_TEST_PASSWORD"):
        parse_config(_minimal(uplink={"type": "mqtt", "host": "h", "password": "${EDGE_TEST_PASSWORD}"}))


def test_secrets_never_show_in_the_redacted_config_nor_in_a_log_line() -> None:
    config = load_config(FIXTURES / "edge.yaml")
    text = json.dumps(config.redacted())
    assert "s3cret" not in text and text.count('"***"') == 2
    assert "s3cret" not in repr(config.uplink), "the uplink password is a SecretStr"
    record = logging.LogRecord("edge", logging.INFO, __file__, 1, "connecting", (), None)
    record.__dict__.update({"host": "h", "password": "s3cret-uplink"})
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "connecting" and line["host"] == "h" and line["password"] == "***"


def test_the_cli_exits_2_on_a_bad_config_and_3_without_a_status(capsys: pytest.CaptureFixture[str],
                                                               tmp_path: Path) -> None:
    assert main(["--config", str(FIXTURES / "bad.yaml")]) == EXIT_CONFIG
    assert "uplink.linger: unknown key" in capsys.readouterr().err
    path = tmp_path / "edge.yaml"
    path.write_text("edge: {id: pi, data_dir: data}\nuplink: {type: mqtt, host: 127.0.0.1}\n")
    assert main(["status", "--config", str(path)]) == EXIT_NO_STATUS
    assert "no status at" in capsys.readouterr().err
    assert main(["check", "--config", str(FIXTURES / "edge.yaml")]) == 0
    out = capsys.readouterr().out
    assert "pi-garage" in out and "s3cret" not in out


def test_status_text_says_what_an_operator_needs() -> None:
    status = {
        "edge_id": "pi", "pid": 42, "started_at": "2026-01-01T00:00:00Z", "updated_epoch": 0,
        "status_interval_s": 5, "stopped_at": None,
        "uplink": {"type": "aws_iot", "host": "x.iot", "port": 8883, "connected": False,
                   "last_error": "connect failed"},
        "sender": {"publishes": 3, "envelopes": 90, "in_flight": 1, "retries": 2},
        "spool": {"depth": 1200, "bytes": 2_000_000, "max_bytes": 256_000_000, "commands": 4, "oldest_age_s": 600,
                  "dropped_evicted_telemetry": 7, "dropped_refused_telemetry": 0, "rejected_oversize": 0},
        "gateways": {"ms": {"type": "mysensors_v2/serial", "enabled": True, "emitted": 90, "dropped": 0,
                            "state": {"status": "down", "message": "port gone"}},
                     "off": {"type": "tasmota/mqtt", "enabled": False}},
    }
    text = format_status(status)
    assert "NOT RUNNING?" in text, "a status file nobody updates any more is flagged"
    assert "DISCONNECTED" in text and "connect failed" in text
    assert "1200 waiting" in text and "oldest 10m" in text and "7 evicted telemetry" in text
    assert "down" in text and "port gone" in text and "disabled" in text


def test_status_shows_the_cloud_config_and_rejected_gateways() -> None:
    status = {"edge_id": "pi", "updated_epoch": 0, "stopped_at": "2026-11-27T00:00:00Z", "uplink": {}, "spool": {},
              "sender": {}, "gateways": {},
              "cloud_config": {"thing": "pi", "shadow": "mycontroller", "config_version": "v7",
                               "applied_at": "2026-11-27T00:00:00Z", "report_pending": True,
                               "last_error": None,
                               "applied": {"gw1": {"status": "running"}, "gw2": {"status": "rejected"}}}}
    text = format_status(status)
    assert "shadow mycontroller of pi" in text and "config version v7" in text
    assert "rejected: gw2" in text and "report pending" in text and "gw1" not in text.split("rejected:")[1]


def test_mysensors_mqtt_topics_are_prefixes_whether_written_with_a_wildcard_or_not() -> None:
    def protocol(subscribe: str, publish: str, provider: str = "mysensors_v2") -> dict[str, Any]:
        gateway = {"id": "gw", "provider": {"type": provider, "protocol": {
            "type": "mqtt", "broker": "tcp://127.0.0.1:1883", "subscribe": subscribe, "publish": publish}}}
        plugin = parse_config(_minimal(gateways=[gateway])).gateways[0].plugin_config()
        return dict(plugin["provider"]["protocol"])

    assert protocol("mygateway1-out", "mygateway1-in") | {"broker": ""} == {
        "type": "mqtt", "broker": "", "subscribe": "mygateway1-out/#", "publish": "mygateway1-in"}
    assert protocol("mygateway1-out/#", "mygateway1-in/#")["publish"] == "mygateway1-in"
    assert protocol("mygateway1-out/", "mygateway1-in/")["subscribe"] == "mygateway1-out/#"
    assert protocol("a-out, b/+/out/#", "a-in")["subscribe"] == "a-out/#,b/+/out/#"
    assert protocol("home/kitchen", "x", provider="generic")["subscribe"] == "home/kitchen", \
        "other providers' topics are topics: a generic MQTT gateway may subscribe to one exact topic"


def test_a_gateway_up_without_a_message_is_reported_silent_after_its_silence_warning() -> None:
    from edge.agent import SILENT_AFTER_S, _Context, _silent_after

    config = parse_config(_minimal(gateways=[
        {"id": "a", "provider": {"type": "tasmota"}},
        {"id": "b", "silenceWarning": "0", "provider": {"type": "tasmota"}},
        {"id": "c", "provider": {"type": "system_monitor"}},
        {"id": "d", "silenceWarning": "5m", "provider": {"type": "system_monitor"}}]))
    assert [_silent_after(g) for g in config.gateways] == [SILENT_AFTER_S, 0.0, 0.0, 300.0]

    class Agent:
        class spool:  # a stand-in for the agent's spool
            @staticmethod
            def append(*_args: Any, **_kwargs: Any) -> int:
                return 1

        @staticmethod
        def wake(urgent: bool = False) -> None:
            return None

    ctx = _Context(Agent(), "a", "tasmota", Path("."))  # type: ignore[arg-type]
    ctx.set_state("up", "connected")
    assert ctx.silence() == ""
    assert ctx.up_since is not None
    ctx.up_since -= 61
    assert ctx.silence() == "nothing received in the 61 s since it connected"
    ctx.emitted += 1
    assert ctx.silence() == "", "one message is enough"
    ctx.set_state("down", "gone")
    ctx.set_state("up", "back")
    assert ctx.up_since is not None
    ctx.up_since -= 200
    assert ctx.silence() == "nothing received in the 3 min since it connected", "counted again from each connect"
