"""MySensors MQTT topics as a user writes them (issue #19): a prefix or a filter both work, and a gateway whose
topics match nothing says so in ``python -m edge status`` and in the log instead of "up, connected" alone."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from mycontroller_protocol.envelope import Downlink, encode_downlinks
from tests.integration.edge_helpers import PYTHON, REPO, AgentProcess, Broker, Collector, wait_until, write_config


def _mysensors_mqtt(gateway_id: str, broker: Broker, subscribe: str, publish: str, **extra: str) -> dict[str, object]:
    return {"id": gateway_id, **extra, "provider": {"type": "mysensors_v2", "protocol": {
        "type": "mqtt", "broker": broker.url, "subscribe": subscribe, "publish": publish}}}


def test_a_prefix_and_a_filter_both_receive_and_a_gateway_receiving_nothing_says_so(
        broker: Broker, tmp_path: Path) -> None:
    config = write_config(tmp_path / "edge.yaml", port=broker.port, gateways=[
        _mysensors_mqtt("as-prefix", broker, "mygateway1-out", "mygateway1-in"),  # the README's example
        _mysensors_mqtt("as-filter", broker, "mygateway2-out/#", "mygateway2-in/#"),
        _mysensors_mqtt("wrong-topic", broker, "mygateway3-out", "mygateway3-in", silenceWarning="2s"),
    ])
    up = Collector(broker.host, broker.port, ["mc/edge-test/up"], client_id="topics-collector").start()
    device = Collector(broker.host, broker.port, ["mygateway1-in/#", "mygateway2-in/#"], client_id="device").start()
    agent = AgentProcess(config).start()
    try:
        wait_until(lambda: (agent.status() or {}).get("gateways", {}).get("as-prefix", {}).get("state", {})
                   .get("status") == "up", 20, "the gateways up")
        wait_until(lambda: all(gw.get("state", {}).get("status") == "up"
                               for gw in (agent.status() or {})["gateways"].values()), 20, "every gateway up")
        device.publish("mygateway1-out/4/1/1/0/0", "21.5")
        device.publish("mygateway2-out/5/1/1/0/0", "22.5")
        device.publish("elsewhere-out/6/1/1/0/0", "23.5")  # the third gateway's devices publish elsewhere
        raws = wait_until(lambda: {(e.gateway_id, e.raw) for e in up.envelopes() if e.provider == "mysensors_v2"}
                          >= {("as-prefix", "4;1;1;0;0;21.5"), ("as-filter", "5;1;1;0;0;22.5")} and up.envelopes(),
                          20, "both gateways' readings up")
        assert not [e for e in raws if e.gateway_id == "wrong-topic" and e.provider == "mysensors_v2"]

        status = wait_until(lambda: (s := agent.status()) and s["gateways"]["wrong-topic"].get("silent") and s,
                            20, "the silent gateway flagged")
        assert "silent" not in status["gateways"]["as-prefix"] and "silent" not in status["gateways"]["as-filter"]
        assert status["gateways"]["wrong-topic"]["plugin"]["connected"] is True
        text = subprocess.run([PYTHON, "-m", "edge", "status", "--config", str(config)], cwd=REPO,
                              capture_output=True, text=True, check=True).stdout
        line = next(line for line in text.splitlines() if "wrong-topic" in line)
        assert "up" in line and "SILENT: nothing received in the" in line and "since it connected" in line
        assert "mygateway3-out/#" in line, line
        assert "SILENT" not in next(line for line in text.splitlines() if "as-prefix" in line)

        # publish given as a filter works too: a command goes to mygateway2-in/…, not to mygateway2-in/#/…
        up.publish("mc/edge-test/down", encode_downlinks([Downlink("as-filter", "mysensors_v2", "5;3;1;0;2;1",
                                                                   node_id="5")]))
        wait_until(lambda: ("mygateway2-in/5/3/1/0/2", b"1") in device.messages, 20, "the command on mygateway2-in")
    finally:
        assert agent.terminate() == 0
        up.stop()
        device.stop()
    warnings = [json.loads(line) for line in agent.log.read_text().splitlines() if line.startswith("{")]
    silent = [w for w in warnings if w.get("msg") == "gateway receives nothing"]
    assert [w["gateway"] for w in silent] == ["wrong-topic"], "one warning, for the silent gateway only"
    assert "mygateway3-out/#" in silent[0]["detail"]
